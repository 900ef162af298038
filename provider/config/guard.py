"""What a reload may not do silently: drop every authority, every store or the client-certificate checks.

A config file that lost its body (truncated write, a ConfigMap key emptied by mistake) can still be valid
YAML. Loaded as is, it would admit every image unverified or let any client in. So a new config that no
longer has something protective the serving one had is refused unless the file says so with the key itself:
`authorities: []`, `stores: []`, `clientCA: null`, `clientNames: []`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provider.config.model import ConfigError

if TYPE_CHECKING:
    from provider.config.model import Config

GUARDED = ("authorities", "stores", "server.tls.clientCA", "server.tls.clientNames")


def declared_keys(data: Any) -> frozenset[str]:
    """The guarded keys present in a parsed config mapping, whatever their value."""
    present = set()
    for dotted in GUARDED:
        node = data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            present.add(dotted)
    return frozenset(present)


def check_replacement(serving: Config, new: Config) -> None:
    """Raise ConfigError when `new` drops protection `serving` has without writing the key that drops it."""
    tls_old, tls_new = serving.server.tls, new.server.tls
    dropped = {
        "authorities": bool(serving.authorities) and not new.authorities,
        "stores": "stores" in serving.declared and bool(serving.stores),
        "server.tls.clientCA": tls_old.client_ca is not None and tls_new.client_ca is None,
        "server.tls.clientNames": bool(tls_old.client_names) and not tls_new.client_names,
    }
    example = {"authorities": "authorities: []", "stores": "stores: []", "server.tls.clientCA": "clientCA: null",
               "server.tls.clientNames": "clientNames: []"}
    for key, lost in dropped.items():
        if lost and key not in new.declared:
            raise ConfigError(new.path, key, f"the serving config has {key} and this one does not mention it; "
                                             f"write `{example[key]}` to remove it on purpose")
