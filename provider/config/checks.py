"""What `config check` adds to loading: the checks `serve` makes before it starts, and advice.

Loading already validates every field and reads the trust material. `check_serve` refuses what the server would
refuse, so `config check` (which checks for `serve` by default) and `serve` can never disagree.
"""

from __future__ import annotations

import ssl

from provider.config.model import Config, ConfigError
from provider.policy.patterns import config_pattern_warnings


def check_serve(config: Config) -> None:
    """Raise ConfigError for anything that would stop `serve`: no TLS, an unreadable or mismatched key/cert,
    an unusable client CA."""
    from provider.server.tls import build_server_context

    tls = config.server.tls
    if tls.cert is None or tls.key is None:
        raise ConfigError(config.path, "server.tls", "cert and key are required to serve (TLS only)")
    try:
        build_server_context(tls)
    except (OSError, ssl.SSLError, ValueError) as exc:
        detail = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise ConfigError(config.path, "server.tls", f"cannot build the TLS context from {tls.cert}, {tls.key}"
                          f"{f', {tls.client_ca}' if tls.client_ca else ''}: {detail}") from None


def config_warnings(config: Config) -> list[str]:
    """Settings that load but are probably not what the operator meant."""
    warnings = []
    if not config.authorities:
        warnings.append("no authorities: no image can ever be verified")
    for index, store in enumerate(config.stores):
        if "*" in store.match and (store.auth.static or store.auth.docker_config):
            warnings.append(f"stores[{index}] matches every registry (*) and has credentials: they may be sent "
                            "to any registry a Pod names; list the registries they belong to in match")
    warnings.extend(str(w) for w in config_pattern_warnings(config))
    warnings.extend(identity_regexp_warnings(config))
    tls = config.server.tls
    if tls.client_ca is not None and not tls.client_names:
        warnings.append("server.tls.clientCA without clientNames: any certificate that CA signed may call the "
                        "provider; pin Gatekeeper's name with clientNames")
    if config.server.workers > 1 and config.verification.cache.redis is None:
        warnings.append(f"server.workers is {config.server.workers} without verification.cache.redis: each worker "
                        "keeps its own cache and verifies every image again; set a shared cache")
    for authority in config.authorities:
        keyless = authority.cosign.keyless if authority.cosign else None
        if keyless is not None and not keyless.ct_keys:
            warnings.append(f"authority {authority.name}: keyless has no CT log keys (ctLogKeys, or ctlogs in the "
                            "trustedRoot), so no certificate's SCT is checked; cosign refuses certificates without a "
                            "verified SCT unless told to ignore it")
    return warnings


OPEN_ENDS = {("start", "end"): "anywhere inside a longer URL or email too",
             ("start",): "also after any text, such as another host's URL that ends with it",
             ("end",): "also in any value that merely starts with it"}


def identity_regexp_warnings(config: Config) -> list[str]:
    """Identity regexps that are not pinned at both ends. cosign searches anywhere in the SAN or issuer, and so
    does sigwarden; a user who expected a whole-value match may trust more identities than meant."""
    warnings = []
    for index, authority in enumerate(config.authorities):
        cosign = authority.cosign
        for kind, trust in (("keyless", cosign.keyless if cosign else None), ("pki", cosign.pki if cosign else None)):
            for number, identity in enumerate(trust.identities if trust else ()):
                for key, regexp in (("subjectRegExp", identity.subject_regexp),
                                    ("issuerRegExp", identity.issuer_regexp)):
                    if regexp is not None and regexp.open_ends:
                        where = " and ".join(f"at the {end}" for end in regexp.open_ends)
                        warnings.append(
                            f"authorities[{index}] ({authority.name}).cosign.{kind}.identities[{number}].{key} "
                            f"{regexp.pattern!r} is not anchored {where}: as in cosign, it is a search and "
                            f"matches wherever it occurs in a value ({OPEN_ENDS[regexp.open_ends]}); write ^…$ "
                            "to match whole values")
    return warnings
