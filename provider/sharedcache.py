"""Verification results shared between workers and replicas through Redis, authenticated and bounded.

Anyone who can write to Redis must not be able to make an image verified, so every entry carries an HMAC
(SHA-256, key from a Secret) over the key prefix, the trust-configuration fingerprint, the cache key, the expiry
and the value: an entry cannot be forged, copied to another image, replayed under another configuration or used
after it expired. Values are JSON, size-checked in Redis before they are read (a script answers with the value
only when it is small) and parsed only after the MAC matches. Redis being down, slow or full never changes an
answer: every failure is a miss (counted, logged at most once a minute) and the caller verifies locally; after a
failure Redis is left alone for a short while so requests do not each wait for a timeout.

Cross-replica single-flight: the first replica to ask about a cold image takes a short lock and verifies; the
others poll for its result until a bounded wait ends, then verify themselves. A stuck or hostile lock holder
costs latency, never an answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from provider.config import RedisConfig

log = logging.getLogger("sigwarden.sharedcache")

FORMAT = b"sw1"
MIN_KEY_BYTES = 32
# Once Redis failed, it is not asked again for this long (a down Redis must not cost every request a timeout).
BACKOFF_SECONDS = 5.0
LOG_EVERY_SECONDS = 60.0
# The wait for another replica's result polls first after 20 ms, then ever less often, 250 ms apart at most.
POLL_FIRST_SECONDS = 0.02
POLL_MAX_SECONDS = 0.25
MAX_ENTRY_BYTES = 256 * 1024
# The stored blob is `sw1.<64 hex MAC>.<payload>`: at most this much beyond the payload limit.
BLOB_OVERHEAD_BYTES = 100
# Read an entry only if it is small: a value anyone with Redis access wrote can be hundreds of MiB, and a plain
# GET would carry all of it into this process before any check. Replies: the value, nil (no entry), the
# length of an oversize value, or -1 for a key that is not a string.
_GET_BOUNDED = """
local size = redis.pcall('STRLEN', KEYS[1])
if type(size) ~= 'number' then return -1 end
if size > tonumber(ARGV[1]) then return size end
return redis.call('GET', KEYS[1])
"""


@dataclass(frozen=True)
class SharedEntry:
    """An authenticated entry: `value` (facts or a pinned reference) or `error` (`CODE`, message)."""

    value: Any
    error: tuple[str, str] | None
    expires_at: float

    @property
    def ttl(self) -> float:
        return max(0.0, self.expires_at - time.time())


def trust_fingerprint(config_files: Iterable[Path]) -> str:
    """SHA-256 over the contents of every file a config was built from: the config itself, keys, certificates,
    trust policies. Replicas on different generations never share entries, and a reload starts afresh."""
    digest = hashlib.sha256()
    for path in sorted(set(config_files), key=str):
        try:
            content = path.read_bytes()
        except OSError:
            content = b"\x00unreadable"
        digest.update(hashlib.sha256(str(path).encode()).digest())
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()


def read_hmac_key(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the shared-cache HMAC key: {exc.strerror or exc}") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{path}: the shared-cache HMAC key must have at least {MIN_KEY_BYTES} bytes "
                         f"(has {len(key)}); generate one with `openssl rand -hex 32`")
    return key


class SharedCache:
    """get/put/lead/wait for one trust-configuration generation."""

    def __init__(self, settings: RedisConfig, fingerprint: str, *, lead_wait: float = 1.0,
                 max_entry_bytes: int = MAX_ENTRY_BYTES,
                 count: Callable[[str], None] | None = None, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.fingerprint = fingerprint
        self.lead_wait = lead_wait  # how long others wait for the replica verifying a cold image
        self.max_entry_bytes = max_entry_bytes
        self._key = read_hmac_key(settings.hmac_key_file)
        self._count = count or (lambda _event: None)
        self._down_until = 0.0
        self._last_log = 0.0
        self._redis = client or _connect(settings)
        self._get_bounded = self._redis.register_script(_GET_BOUNDED)

    @property
    def max_blob_bytes(self) -> int:
        """The most bytes one read from Redis may carry."""
        return self.max_entry_bytes + BLOB_OVERHEAD_BYTES

    def close(self) -> None:
        self._redis.close()

    # --- entries --------------------------------------------------------------------------------------

    def get(self, kind: str, cache_key: str) -> SharedEntry | None:
        name = self._name(kind, cache_key)
        blob = self._call(lambda: self._get_bounded(keys=[name], args=[self.max_blob_bytes]))
        if blob is None:
            self._count("miss")
            return None
        if not isinstance(blob, bytes):  # oversize or not a string: never transferred
            self._count("rejected")
            return None
        entry = self._open(kind, cache_key, blob)
        self._count("hit" if entry is not None else "rejected")
        return entry

    def put(self, kind: str, cache_key: str, value: Any, error: tuple[str, str] | None, ttl: float) -> None:
        if ttl <= 0:
            return
        payload = json.dumps({"exp": time.time() + ttl, "value": value, "error": list(error) if error else None},
                             separators=(",", ":")).encode()
        if len(payload) > self.max_entry_bytes:
            self._count("oversize")
            return
        blob = b".".join((FORMAT, self._mac(kind, cache_key, payload).encode(), payload))
        if self._call(lambda: self._redis.set(self._name(kind, cache_key), blob, px=max(1, int(ttl * 1000)))):
            self._count("stored")

    # --- single flight across replicas ----------------------------------------------------------------

    def lead(self, kind: str, cache_key: str, hold: float) -> str | None:
        """A token when this process should verify (it holds the lock for `hold` seconds), else None."""
        token = secrets.token_hex(16)
        taken = self._call(lambda: self._redis.set(self._lock_name(kind, cache_key), token, nx=True,
                                                   px=max(1, int(hold * 1000))))
        return token if taken else None

    def release(self, kind: str, cache_key: str, token: str) -> None:
        name = self._lock_name(kind, cache_key)
        # Only the holder's own lock is removed (it may have expired and been taken by another replica).
        self._call(lambda: self._redis.eval(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
            1, name, token))

    def wait(self, kind: str, cache_key: str, until: float) -> SharedEntry | None:
        """Poll for the entry another replica is producing, until the monotonic time `until`."""
        until = min(until, time.monotonic() + self.lead_wait)
        pause = POLL_FIRST_SECONDS
        while time.monotonic() < until and self.available:
            entry = self.get(kind, cache_key)
            if entry is not None:
                return entry
            time.sleep(max(0.0, min(pause, until - time.monotonic())))
            pause = min(pause * 2, POLL_MAX_SECONDS)
        self._count("wait_expired")
        return None

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    # --- internals ------------------------------------------------------------------------------------

    def _name(self, kind: str, cache_key: str) -> str:
        # The cache key is attacker-chosen (a reference from a Pod spec): hashed, it has a fixed size.
        return f"{self.settings.prefix}:{self.fingerprint[:32]}:{kind}:{hashlib.sha256(cache_key.encode()).hexdigest()}"

    def _lock_name(self, kind: str, cache_key: str) -> str:
        return self._name(kind, cache_key) + ":lead"

    def _mac(self, kind: str, cache_key: str, payload: bytes) -> str:
        message = b"\x00".join((FORMAT, self.settings.prefix.encode(), self.fingerprint.encode(), kind.encode(),
                                cache_key.encode(), payload))
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _open(self, kind: str, cache_key: str, blob: bytes) -> SharedEntry | None:
        if len(blob) > self.max_blob_bytes:
            return None
        parts = blob.split(b".", 2)
        if len(parts) != 3 or parts[0] != FORMAT:
            return None
        mac, payload = parts[1], parts[2]
        if not hmac.compare_digest(mac, self._mac(kind, cache_key, payload).encode()):
            return None
        try:
            data = json.loads(payload)
            expires_at = float(data["exp"])
            error = data["error"]
            error = (str(error[0]), str(error[1])) if error is not None else None
        except (ValueError, KeyError, TypeError, IndexError):
            return None
        if expires_at <= time.time():
            return None
        return SharedEntry(data.get("value"), error, expires_at)

    def _call(self, operation: Callable[[], Any]) -> Any:
        if not self.available:
            self._count("skipped")
            return None
        try:
            return operation()
        except (redis.RedisError, OSError) as exc:
            self._down_until = time.monotonic() + BACKOFF_SECONDS
            self._count("error")
            now = time.monotonic()
            if now - self._last_log >= LOG_EVERY_SECONDS:
                self._last_log = now
                log.warning("shared cache unavailable (%s); verifying locally for the next %.0fs",
                            type(exc).__name__, BACKOFF_SECONDS)
            return None


def _connect(settings: RedisConfig) -> redis.Redis:
    password = None
    if settings.password_file is not None:
        password = settings.password_file.read_text().strip()
    # No retries: a failed call is a cache miss, and the deadline belongs to the request.
    options: dict[str, Any] = {"password": password, "socket_timeout": settings.timeout,
                               "socket_connect_timeout": settings.timeout, "retry": Retry(NoBackoff(), 0),
                               "health_check_interval": 0}
    if settings.url.startswith("rediss://") and settings.ca is not None:
        options["ssl_ca_certs"] = str(settings.ca)
    return redis.Redis.from_url(settings.url, **options)
