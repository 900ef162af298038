"""What the engine's cache holds, and how it travels through the shared cache.

A job's outcome is a `Result`: serialised facts, a tag's digest, or an error reason, each with its TTL. The
engine keeps results in `Entries`, a TLRU cache bounded in bytes that also exposes what it holds as a plain
dict, so the warm index can check that an answer still stands on the very entries it was built from. With a
Redis cache configured (provider.sharedcache), results are written there too and read back by other workers
and replicas: `to_shared` and `from_shared` convert between the two, and a malformed shared entry is a miss.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cachetools import Cache, TLRUCache

from provider.config import Config
from provider.errors import ItemError
from provider.metrics import Metrics
from provider.serialised import SerialisedFacts

if TYPE_CHECKING:
    from provider.sharedcache import SharedCache, SharedEntry

# Bytes a cache entry costs beyond its value and error text: key tuple and strings, the entry object and
# cachetools' bookkeeping (measured by tests/benchmarks/bench_cache.py, rounded up).
ENTRY_OVERHEAD = 860
MAX_ERROR_CHARS = 1024

# ("facts", name, digest): facts or an error; ("tag", name, tag): a digest (tagTtl) or a resolution error;
# ("verify-tag", name, tag): an error met before the tag's digest was known.
CacheKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Result:
    """What one job produced: facts (serialised), a digest, or an error reason (never a traceback)."""

    value: bytes | str | None
    error: str
    ttl: float
    digest: str = ""
    serialised: SerialisedFacts | None = None  # facts, ready to be spliced into responses
    shared: bool = False  # read from the shared cache: the answer says `cached` although this process is cold
    transient: bool = False  # says nothing about the image (never started: its share of the pool was busy)

    @classmethod
    def failed(cls, error: ItemError, ttl: float) -> Result:
        return cls(None, str(error)[:MAX_ERROR_CHARS], ttl)

    @property
    def size(self) -> int:
        serialised = len(self.serialised.members) + 96 if self.serialised is not None else 0
        return len(self.value or b"") + serialised + len(self.error) + len(self.digest) + ENTRY_OVERHEAD


class Entries(TLRUCache):  # type: ignore[type-arg]
    """The facts cache, with `held`: what it holds now, key to (result, expiry), as a plain dict.

    Every insertion makes a new tuple, so `held.get(key) is seen` says that the entry under `key` is still the
    very one seen, neither replaced, evicted nor expired and purged; the warm index checks its answers so.
    """

    def __init__(self, maxsize: int) -> None:
        self.held: dict[CacheKey, tuple[Result, float]] = {}
        self._expires = 0.0
        super().__init__(maxsize=maxsize, ttu=self._ttu, getsizeof=lambda result: result.size)

    def _ttu(self, _key: CacheKey, result: Result, now: float) -> float:
        self._expires = now + result.ttl  # read back by __setitem__ (always under the engine lock)
        return self._expires

    def __setitem__(self, key: CacheKey, value: Result) -> None:
        self.held.pop(key, None)
        super().__setitem__(key, value)
        if Cache.__contains__(self, key):  # not stored when already expired
            self.held[key] = (value, self._expires)

    def __delitem__(self, key: CacheKey) -> None:
        self.held.pop(key, None)
        super().__delitem__(key)

    def expire(self, time: float | None = None) -> list[tuple[CacheKey, Result]]:
        expired = super().expire(time)
        for key, _ in expired:
            self.held.pop(key, None)
        return expired

    def clear(self) -> None:
        super().clear()
        self.held.clear()


def shared_cache(config: Config, metrics: Metrics) -> SharedCache | None:
    """The Redis cache of this config generation (None when none is configured)."""
    redis_config = config.verification.cache.redis
    if redis_config is None:
        return None
    from provider.sharedcache import SharedCache, trust_fingerprint  # imports redis

    # The trust files (keys, certificates, policies) by content, and every config section but `server`.
    files = trust_fingerprint(config.sources[1:])
    fingerprint = hashlib.sha256(f"{config.trust_digest}:{files}".encode()).hexdigest()
    # Waiting for another replica must leave time to verify locally after it.
    return SharedCache(redis_config, fingerprint, lead_wait=0.4 * config.server.request_deadline,
                       count=lambda event: metrics.shared_cache.labels(event).inc())


def shared_key(key: CacheKey) -> str:
    return f"{key[1]} {key[2]}"  # a space never occurs in a normalised name, tag or digest


def to_shared(result: Result) -> dict[str, Any]:
    """The value a result is stored under in the shared cache (its error is stored beside it)."""
    if result.serialised is not None:
        facts: str | None = "{" + result.serialised.members.decode() + "}"
    else:
        facts = result.value.decode() if isinstance(result.value, bytes) else None
    return {"v": facts, "d": result.digest}


def from_shared(key: CacheKey, entry: SharedEntry | None) -> Result | None:
    """An authenticated shared entry as a local result; a malformed one (never written by us) is a miss."""
    if entry is None or not isinstance(entry.value, dict):
        return None
    value, digest = entry.value.get("v"), entry.value.get("d")
    if not isinstance(digest, str) or not (value is None or isinstance(value, str)):
        return None
    if entry.error is not None:
        return Result(None, f"{entry.error[0]}: {entry.error[1]}"[:MAX_ERROR_CHARS], entry.ttl, digest,
                       shared=True)
    if key[0] == "facts" and value is None:
        return None
    if key[0] != "facts" and not digest:
        return None
    if value is None:
        return Result(None, "", entry.ttl, digest, shared=True)
    try:
        serialised = SerialisedFacts.from_json(value.encode())
    except ValueError:
        return None
    return Result(None, "", entry.ttl, digest, serialised, shared=True)
