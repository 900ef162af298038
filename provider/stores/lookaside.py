"""containers-image "lookaside" signature storage: `<base>/<repository>@<algo>=<hex>/signature-N`.

Signatures are numbered from 1 and read until the first one that does not exist. The base is an
`http(s)://` or `file://` URL from the authority's config.
"""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

from provider.errors import ErrorCode, ItemError
from provider.reference import Reference
from provider.stores.egress import EgressPolicy
from provider.stores.fetch import FetchFailed, Outbound


class LookasideStore:
    def __init__(self, max_signatures: int = 16, max_bytes: int = 1024 * 1024,
                 outbound: Outbound | None = None) -> None:
        self.max_signatures = max_signatures
        self.max_bytes = max_bytes
        self.outbound = outbound
        # The lookaside URL comes from the config, so its host counts as named explicitly; the networks are
        # those of the store the image came from.
        self._by_host: dict[tuple[str, EgressPolicy], Outbound] = {}
        self._lock = threading.Lock()

    def _outbound(self, netloc: str, egress: Outbound | None) -> Outbound:
        if self.outbound is not None:
            return self.outbound
        policy = (egress.policy if egress is not None else EgressPolicy()).naming(netloc)
        with self._lock:
            if (netloc, policy) not in self._by_host:
                self._by_host[(netloc, policy)] = (egress.with_policy(policy) if egress is not None
                                                   else Outbound(policy))
            return self._by_host[(netloc, policy)]

    def signatures(self, base: str, reference: Reference, digest: str, deadline: float,
                   egress: Outbound | None = None) -> list[bytes]:
        """The signatures under `base` for the image; `egress` is the store's (its networks and limits)."""
        algorithm, encoded = digest.split(":", 1)
        prefix = f"{base.rstrip('/')}/{reference.repository}@{algorithm}={encoded}"
        found = []
        for index in range(1, self.max_signatures + 1):
            data = self._get(f"{prefix}/signature-{index}", deadline, egress)
            if data is None:
                break
            found.append(data)
        return found

    def _get(self, url: str, deadline: float, egress: Outbound | None) -> bytes | None:
        parsed = urlparse(url)
        if parsed.scheme == "file":
            path = Path(unquote(parsed.path))
            if not path.is_file():
                return None
            with path.open("rb") as handle:
                data = handle.read(self.max_bytes + 1)
        elif parsed.scheme in ("http", "https"):
            try:
                response = self._outbound(parsed.netloc, egress).fetch("GET", url, deadline, self.max_bytes + 1,
                                               what=f"lookaside {parsed.netloc}")
            except FetchFailed as exc:
                raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, exc.message) from None
            if response.status == 404:
                return None
            if response.status != 200:
                raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE,
                                f"lookaside {parsed.netloc} answered {response.status} for {parsed.path}")
            data = response.body
        else:
            raise ItemError(ErrorCode.INTERNAL, f"lookaside URL scheme {parsed.scheme!r} is not supported")
        if len(data) > self.max_bytes:
            raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, f"lookaside signature {url} is over {self.max_bytes} bytes")
        return data
