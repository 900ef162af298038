"""One verification per distinct image for the whole audit.

Images are verified in batches before any Rego runs; every `external_data` call during evaluation is then
answered from this memo, so thousands of objects sharing images cost one verification per distinct image.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

from provider.policy.external import ExternalData, gatekeeper_shape

BATCH = 100
PROVIDER = "sigwarden"


class MemoExternalData:
    """Answers `external_data` from one verification per distinct key (a bounded set: the images audited)."""

    def __init__(self, upstream: ExternalData, batch: int = BATCH) -> None:
        self.upstream = upstream
        self.batch = batch  # keys per request: at most the provider's server.maxKeys, or it refuses the request
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.system_errors: dict[str, str] = {}
        self.verifications = 0

    def prefetch(self, provider: str, keys: Iterable[str], progress: bool = False) -> None:
        missing = sorted({k for k in keys if (provider, k) not in self.items})
        batches = [missing[i:i + self.batch] for i in range(0, len(missing), self.batch)]
        for batch in tqdm(batches, desc="verifying images", unit="batch", disable=not progress or None,
                          leave=False):
            self._fetch(provider, batch)

    def _fetch(self, provider: str, keys: list[str]) -> None:
        answer = self.upstream({"provider": provider, "keys": keys})
        self.verifications += len(keys)
        if answer.get("system_error"):
            for key in keys:
                self.system_errors[key] = answer["system_error"]
            return
        for key, value in answer.get("responses") or []:
            self.items[(provider, key)] = {"key": key, "value": value}
        for key, error in answer.get("errors") or []:
            self.items[(provider, key)] = {"key": key, "error": error}

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        provider = str(request.get("provider", ""))
        keys = list(dict.fromkeys(str(k) for k in request.get("keys") or []))
        missing = [k for k in keys if (provider, k) not in self.items and k not in self.system_errors]
        if missing:
            self._fetch(provider, missing)
        errors = [self.system_errors[k] for k in keys if k in self.system_errors]
        if errors:
            return gatekeeper_shape([], errors[0], 0)
        return gatekeeper_shape([self.items[(provider, k)] for k in keys if (provider, k) in self.items])

    def answer(self, image: str) -> tuple[dict[str, Any] | None, str]:
        """The facts for an image and, when there are none, why (an item error, a system error, not checked)."""
        item = self.items.get((PROVIDER, image))
        if item is None:
            return None, self.system_errors.get(image, "")
        if "error" in item:
            return None, str(item["error"])
        return item["value"], ""
