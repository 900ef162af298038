"""containers-image "lookaside" signature storage: `<base>/<repository>@<algo>=<hex>/signature-N`.

Signatures are numbered from 1 and read until the first one that does not exist. The base is an
`http(s)://` or `file://` URL from the authority's config.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests

from provider.errors import ErrorCode, ItemError
from provider.reference import Reference


class LookasideStore:
    def __init__(self, max_signatures: int = 16, max_bytes: int = 1024 * 1024) -> None:
        self.max_signatures = max_signatures
        self.max_bytes = max_bytes
        self.session = requests.Session()
        self.session.trust_env = False

    def signatures(self, base: str, reference: Reference, digest: str, deadline: float) -> list[bytes]:
        algorithm, encoded = digest.split(":", 1)
        prefix = f"{base.rstrip('/')}/{reference.repository}@{algorithm}={encoded}"
        found = []
        for index in range(1, self.max_signatures + 1):
            data = self._get(f"{prefix}/signature-{index}", deadline)
            if data is None:
                break
            found.append(data)
        return found

    def _get(self, url: str, deadline: float) -> bytes | None:
        parsed = urlparse(url)
        if parsed.scheme == "file":
            path = Path(unquote(parsed.path))
            if not path.is_file():
                return None
            with path.open("rb") as handle:
                data = handle.read(self.max_bytes + 1)
        elif parsed.scheme in ("http", "https"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ItemError(ErrorCode.TIMEOUT, f"lookaside {parsed.netloc} did not answer in time")
            try:
                response = self.session.get(url, timeout=(min(remaining, 5.0), remaining), stream=True)
                if response.status_code == 404:
                    return None
                if response.status_code != 200:
                    raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE,
                                    f"lookaside {parsed.netloc} answered {response.status_code} for {parsed.path}")
                data = response.raw.read(self.max_bytes + 1, decode_content=True)
            except requests.exceptions.Timeout:
                raise ItemError(ErrorCode.TIMEOUT, f"lookaside {parsed.netloc} did not answer in time") from None
            except requests.exceptions.RequestException as exc:
                raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE,
                                f"cannot reach lookaside {parsed.netloc}: {type(exc).__name__}") from None
        else:
            raise ItemError(ErrorCode.INTERNAL, f"lookaside URL scheme {parsed.scheme!r} is not supported")
        if len(data) > self.max_bytes:
            raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, f"lookaside signature {url} is over {self.max_bytes} bytes")
        return data
