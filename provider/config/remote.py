"""Trust material kept in cloud key stores (KMS public keys, Key Vault and Alibaba Cloud KMS certificates):
fetched when a config that names it loads, and refreshed every `REFRESH_INTERVAL` seconds by the config watcher.

A config load takes the material of one snapshot (`RemoteTrust.snapshot`), so a config generation never mixes
material from two refreshes. A refresh fetches every reference again and swaps the whole snapshot; a
reference that fails keeps its last good material and is counted. When anything changed, `generation` moves
on, which the config watcher sees as a change and reloads: the new generation verifies with the new keys.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

LOAD_BUDGET = 30.0
REFRESH_INTERVAL = 300.0


@dataclass(frozen=True)
class RemoteRef:
    """A KMS key URI (`kind` "kms"), a Key Vault certificate (`kind` "keyVault": vault URI, name, version), or
    an Alibaba Cloud KMS certificate (`kind` "alibabaKms": region as `uri`, certificate id as `name`)."""

    kind: str
    uri: str
    name: str = ""
    version: str = ""

    def __str__(self) -> str:
        if self.kind == "kms":
            return self.uri
        if self.kind == "alibabaKms":
            return f"Alibaba Cloud KMS {self.uri} certificate {self.name}"
        return f"{self.uri} certificate {self.name}" + (f" version {self.version}" if self.version else "")


Snapshot = dict[RemoteRef, tuple[bytes, ...]]


class RemoteTrust:
    """The process's remote trust material by reference (PEM blobs: one public key, or certificate chains)."""

    def __init__(self) -> None:
        self._snapshot: Snapshot = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()
        self._stores: Any = None
        self.generation = 0
        self.last_error = ""

    def snapshot(self) -> Snapshot:
        with self._lock:
            return dict(self._snapshot)

    def fetch(self, ref: RemoteRef, deadline: float) -> tuple[bytes, ...]:
        """Fetch `ref` now (raises TrustFetchError) and add it to the current snapshot."""
        material = self._fetch(ref, deadline)
        with self._lock:
            snapshot = dict(self._snapshot)
            snapshot[ref] = material
            self._snapshot = snapshot
            if not self._fetched_at:
                self._fetched_at = time.monotonic()
        return material

    def refresh_if_due(self, metrics: Any = None, now: float | None = None) -> bool:
        """Fetch everything again when the interval has passed; True when any material changed."""
        from provider.stores.cloud.keys import TrustFetchError

        now = time.monotonic() if now is None else now
        with self._lock:
            if not self._snapshot or now - self._fetched_at < REFRESH_INTERVAL:
                return False
            old, self._fetched_at = dict(self._snapshot), now
        fresh: Snapshot = {}
        self.last_error = ""
        for ref, material in old.items():
            try:
                fresh[ref] = self._fetch(ref, time.monotonic() + LOAD_BUDGET)
                result = "success"
            except TrustFetchError as exc:
                fresh[ref] = material  # the last good material keeps serving
                self.last_error = str(exc)
                result = "failure"
            if metrics is not None:
                metrics.trust_refreshes.labels(result).inc()
        changed = fresh != old
        with self._lock:
            self._snapshot = fresh
            if changed:
                self.generation += 1
        return changed

    def _fetch(self, ref: RemoteRef, deadline: float) -> tuple[bytes, ...]:
        from provider.stores.cloud.keys import KeyStores
        from provider.stores.cloud.transport import SdkTransport
        from provider.stores.fetch import Outbound

        with self._lock:
            if self._stores is None:
                self._stores = KeyStores(SdkTransport(Outbound()))
            stores = self._stores
        if ref.kind == "kms":
            return (stores.public_key_pem(ref.uri, deadline),)
        if ref.kind == "alibabaKms":
            return tuple(stores.alibaba_kms_certificates(ref.uri, ref.name, deadline))
        return tuple(stores.key_vault_certificates(ref.uri, ref.name, ref.version, deadline))


REMOTE_TRUST = RemoteTrust()
