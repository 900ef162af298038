"""The batch executor behind /verify and /mutate.

For each distinct key of a request: parse the reference, answer from the cache or join the work already
running for it, else start it on a bounded thread pool. Whatever is not finished by the request deadline is
answered `TIMEOUT`; that work carries on and fills this provider's cache. Gatekeeper (3.13 and later)
caches every item it receives, errors included, for its own TTL (3 min by default), so a `TIMEOUT` item is
only retried once that entry expires: such items are marked `transient`, so the front end can report them
as a system error (which Gatekeeper does not cache) instead, and the docs recommend a short Gatekeeper TTL.

The cache is bounded in bytes. Facts are kept once per (repository, digest) as compact JSON, whatever tag
or `tag@digest` spelling asked for them; a tag's digest is remembered separately, for `tagTtl` only, so a
re-pointed tag never rides on the verified facts of the digest it used to name.

A key answered from the cache once is answered after that from the warm index: the raw key string, as the
client sent it, to its answer (pre-serialised), checked against the very cache entries it was built from. A
key costs one dictionary lookup, an expiry comparison and an identity check per entry; the reference is parsed
and normalised only on a miss. The index belongs to one engine, that is to one config generation.

What one image's facts are is provider.verification's business; what a cache entry is and how it travels
through the shared (Redis) cache, provider.results'.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from provider.capacity import Capacity, Shares
from provider.config import Config
from provider.errors import ErrorCode, ItemError
from provider.exemptions import exempt
from provider.metrics import Metrics
from provider.reference import InvalidReference, Reference, parse_reference
from provider.results import CacheKey, Entries, Result, from_shared, shared_cache, shared_key, to_shared
from provider.serialised import ItemEnd, SerialisedFacts, dumps, item_head, quoted
from provider.stores import StoreRouter
from provider.stores.base import ResolvedImage, Store
from provider.verification import Verification
from provider.verifiers import default_verifiers
from provider.verifiers.base import Verifier

log = logging.getLogger("sigwarden.engine")

# How long background work may go on after its request was answered with TIMEOUT.
JOB_BUDGET_FACTOR = 4
# The warm index's share of `verification.cache.maxBytes` (the cache proper holds the rest), and what one
# index entry costs beyond its key and item head (measured by tests/benchmarks/bench_cache.py, rounded up).
WARM_SHARE = 8
WARM_OVERHEAD = 740
# A warm index hit refreshes the cache entries it stands on in the cache's recency order at most this often
# (seconds), so an image answered only from the index is not the first one evicted.
WARM_TOUCH_INTERVAL = 1.0



@dataclass(frozen=True)
class Item:
    """One answer of a provider response: a value, or an error string `CODE: message`.

    `transient` marks an answer that says nothing about the image (the work did not finish in time): a
    front end should not let Gatekeeper cache it (report it as a system error rather than an item).
    A facts item comes pre-serialised (`raw`, with `facts` for the metrics) and its `value` is parsed only
    when read; other values (a pinned reference) are `plain`.
    """

    key: str
    plain: Any = None
    error: str = ""
    transient: bool = False
    raw: bytes = b""
    facts: SerialisedFacts | None = None

    @cached_property
    def value(self) -> Any:
        return json.loads(self.raw)["value"] if self.raw else self.plain

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "error": self.error} if self.error else {"key": self.key, "value": self.value}

    def to_bytes(self) -> bytes:
        """This item as JSON, from its pre-serialised bytes when it has them."""
        return self.raw or dumps(self.to_json())

    @property
    def outcome(self) -> str:
        if self.error:
            return self.error.split(":", 1)[0]
        if self.facts is not None:
            return "verified" if self.facts.verified else "unverified"
        if isinstance(self.value, dict):
            return "verified" if self.value.get("verified") else "unverified"
        return "resolved"

    @property
    def vouched_by(self) -> tuple[str, ...]:
        """The authorities that verified this image (none when it is not verified)."""
        if self.facts is not None:
            return self.facts.authorities if self.facts.verified else ()
        if isinstance(self.value, dict) and self.value.get("verified"):
            return tuple(self.value.get("authorities") or ())
        return ()


def transient_system_error(items: Sequence[Item]) -> str:
    """A systemError sentence for the transient items of a response ("" when there are none)."""
    unfinished = [item.key for item in items if item.transient]
    if not unfinished:
        return ""
    shown = ", ".join(unfinished[:3]) + (f" (+{len(unfinished) - 3} more)" if len(unfinished) > 3 else "")
    return f"{ErrorCode.TIMEOUT}: not finished in time, retry shortly: {shown}"


# The cache entries one answer stood on: each key with the result the answer used (its expiry bounds the
# answer's), or None where the answer relied on the key's absence (a tag not resolved yet).
Seen = tuple[tuple[CacheKey, "Result | None"], ...]


@dataclass(slots=True)
class _Warm:
    """One warm index entry: the answer to one raw key while the cache entries in `held` are unchanged."""

    expires: float
    held: tuple[tuple[CacheKey, tuple[Result, float] | None], ...]
    item: Item | None  # the whole answer when it does not depend on the request (errors, pinned references)
    head: bytes  # else a facts answer up to its facts members (see provider.serialised.item_head)
    facts: SerialisedFacts | None
    hit: bool  # counted as a cache hit (answers that need no cache are not)
    touched: float
    size: int


def _unstarted_result(reference: Reference) -> Result:
    """A job that never ran: not cached, transient (it says nothing about the image)."""
    return Result(None, f"{ErrorCode.TIMEOUT}: {reference} did not get a verification thread: work for "
                         f"{reference.registry} already holds its share of the pool", 0.0, transient=True)


class Engine:
    """Verifies and resolves batches of image references under a deadline."""

    def __init__(self, config: Config, metrics: Metrics | None = None,
                 router: StoreRouter | None = None, verifiers: Sequence[Verifier] | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.router = router or StoreRouter.from_config(config, self.metrics)
        self.verifiers = tuple(verifiers if verifiers is not None else default_verifiers(config.verification))
        cache = config.verification.cache
        # maxBytes bounds the cache and the warm index together.
        self._warm_budget = cache.max_bytes // WARM_SHARE
        self._cache = Entries(cache.max_bytes - self._warm_budget)
        self._warm: dict[str, dict[str, _Warm]] = {"verify": {}, "resolve": {}}
        self._warm_bytes = 0
        self._inflight: dict[CacheKey, Future[Result]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=config.verification.concurrency,
                                        thread_name_prefix="sigwarden-verify")
        # Jobs reach the pool through their registry host's and store's share of it (see provider.capacity).
        self._capacity = Capacity(self._pool, Shares.of(config.verification.concurrency, len(self.router.routes)),
                                  max_wait=JOB_BUDGET_FACTOR * config.server.request_deadline)
        # The per-image work: what is attached to a digest, what the verifiers say (owns the platform pool).
        self._verification = Verification(config, self.verifiers, self.metrics)
        self._shared = shared_cache(config, self.metrics)

    # --- public API ----------------------------------------------------------------------------------

    def verify(self, keys: Sequence[str], trace_id: str, deadline: float | None = None,
               warm: bool = True) -> list[Item]:
        """Facts for every distinct key, in request order (`warm=False`: without the warm index)."""
        budget = self.config.server.request_deadline
        return self._run("verify", keys, trace_id, deadline, budget, warm)

    def resolve(self, keys: Sequence[str], trace_id: str, deadline: float | None = None,
                warm: bool = True) -> list[Item]:
        """Digest-pinned references for every distinct key, in request order (under `mutation.deadline`)."""
        return self._run("resolve", keys, trace_id, deadline, self.config.mutation.deadline, warm)

    def shutdown(self) -> None:
        """Stop taking work; running jobs finish in the background."""
        self._capacity.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._verification.shutdown()
        self.router.close()
        if self._shared is not None:
            self._shared.close()

    @property
    def cache_bytes(self) -> int:
        """What the cache holds, by its own accounting (bounded by `verification.cache.maxBytes`)."""
        with self._lock:
            return int(self._cache.currsize) + self._warm_bytes

    def cache_entries(self) -> int:
        """Cache entries (warm index entries not counted: each stands on cache entries or on none)."""
        with self._lock:
            return len(self._cache)

    def warm_entries(self) -> int:
        with self._lock:
            return sum(len(index) for index in self._warm.values())

    # --- batch machinery -----------------------------------------------------------------------------

    def _run(self, kind: str, keys: Sequence[str], trace_id: str, deadline: float | None,
             budget: float, warm: bool) -> list[Item]:
        now = time.monotonic()
        deadline = deadline if deadline is not None else now + budget
        answers: dict[str, Item] = {}
        pending: dict[str, tuple[Reference, Future[Result]]] = {}
        hits = 0
        end = ItemEnd.of(trace_id)  # the members every facts item ends with, encoded once for the request
        index = self._warm[kind] if warm else {}
        held = self._cache.held
        learnt: list[tuple[str, Item, Reference | None, Result | None, Seen]] = []
        for key in dict.fromkeys(keys):
            entry = index.get(key)
            if entry is not None and now < entry.expires:
                for cache_key, mark in entry.held:  # each entry it stands on is still the very one it saw
                    if held.get(cache_key) is not mark:
                        break
                else:
                    hits += entry.hit
                    answers[key] = entry.item or Item(key, raw=entry.head + entry.facts.members + end.cached,
                                                      facts=entry.facts)
                    if entry.hit and now - entry.touched > WARM_TOUCH_INTERVAL:
                        self._touch(entry, now)
                    continue
            if kind == "resolve" and not key.strip():
                # A blank image is a placeholder that names nothing to pin (docs/writing-policies.md).
                answers[key] = Item(key, plain=key)
                learnt.append((key, answers[key], None, None, ()))
                continue
            try:
                reference = parse_reference(key)
            except InvalidReference as exc:
                answers[key] = Item(key, error=f"{ErrorCode.INVALID_REFERENCE}: {exc}")
                learnt.append((key, answers[key], None, None, ()))
                continue
            if kind == "resolve" and (reference.digest or exempt(reference, self.config.mutation.exempt_images)):
                # Mutation must be idempotent: a pinned reference comes back exactly as sent. An exempt image
                # is left as it is too: the templates do not check it, so its registry need not answer.
                answers[key] = Item(key, plain=key)
                learnt.append((key, answers[key], None, None, ()))
                continue
            hit, future, seen = self._lookup(kind, reference)
            if hit is not None:
                hits += not hit.transient  # a job turned away is no cache hit
                answers[key] = self._item(kind, key, reference, hit, end.cached)
                if not hit.transient:
                    learnt.append((key, answers[key], reference, hit, seen))
            else:
                assert future is not None
                pending[key] = (reference, future)
        if learnt and warm:
            self._learn(kind, learnt)
        if hits:
            self.metrics.cache_hits.labels(kind).inc(hits)
        if pending:
            self.metrics.cache_misses.labels(kind).inc(len(pending))
            wait([f for _, f in pending.values()], timeout=max(0.0, deadline - time.monotonic()))
        for key, (reference, future) in pending.items():
            if future.done() and not future.cancelled():
                result = future.result()
                answers[key] = self._item(kind, key, reference, result, end.cached if result.shared else end.fresh)
            else:
                answers[key] = Item(key, error=f"{ErrorCode.TIMEOUT}: {kind} of {key} did not finish within "
                                               f"{budget:g}s; it goes on, and a request after it finished is "
                                               "answered from the provider's cache", transient=True)
        return [answers[key] for key in dict.fromkeys(keys)]

    def _lookup(self, kind: str, reference: Reference) -> tuple[Result | None, Future[Result] | None, Seen]:
        """A cached result and the entries it was found through, or the future of the job (running or newly
        started) that will produce it."""
        with self._lock:
            digest = reference.digest
            seen: Seen = ()
            if not digest:
                tag_key: CacheKey = ("tag", reference.name, reference.tag or "latest")
                tag = self._cached(tag_key)
                seen = ((tag_key, tag),)
                if tag is not None and (kind == "resolve" or tag.error):
                    return tag, None, seen
                digest = tag.digest if tag is not None else ""
            if kind == "resolve":
                key: CacheKey = ("tag", reference.name, reference.tag or "latest")
                job: Callable[[Reference], Result] = self._resolve_one
            elif digest:
                key = ("facts", reference.name, digest)
                hit = self._cached(key)
                if hit is not None:
                    return hit, None, (*seen, (key, hit))
                job = self._verify_one if reference.digest else self._verify_pinned(digest)
            else:
                key = ("verify-tag", reference.name, reference.tag or "latest")
                failed = self._cached(key)
                if failed is not None:
                    return failed, None, (*seen, (key, failed))
                job = self._verify_one
            future = self._inflight.get(key)
            if future is None:
                future = self._capacity.submit(self.router.lane(reference),
                                               lambda: self._job(key, reference, job),
                                               lambda: self._unstarted(key, reference))
                if future is None:  # its lane's queue is full: answered now, nothing remembered
                    return _unstarted_result(reference), None, ()
                self._inflight[key] = future
            return None, future, ()

    # --- the warm index: raw key to answer, while the cache entries it stands on are unchanged ---------

    def _learn(self, kind: str, learnt: Sequence[tuple[str, Item, Reference | None, Result | None, Seen]]) -> None:
        """Index the answers just given from the cache (or needing none), if what they stood on still holds."""
        index = self._warm[kind]
        with self._lock:
            held = self._cache.held
            now = time.monotonic()
            for key, item, reference, result, seen in learnt:
                marks = []
                expires = float("inf")
                for cache_key, used in seen:
                    mark = held.get(cache_key)
                    if used is None:
                        if mark is not None and now < mark[1]:
                            break  # an entry appeared since the lookup: the answer may differ now
                    elif mark is None or mark[0] is not used:
                        break  # replaced or gone since the lookup
                    else:
                        expires = min(expires, mark[1])
                    marks.append((cache_key, mark))
                else:
                    if item.raw and item.facts is not None and reference is not None:
                        key_json, text = quoted(key), str(reference)
                        head = item_head(key_json, key_json if text == key else quoted(text))
                        entry = _Warm(expires, tuple(marks), None, head, item.facts, result is not None, now,
                                      len(key) + len(head) + WARM_OVERHEAD)
                    else:
                        size = len(key) + len(item.error) + len(str(item.plain or "")) + WARM_OVERHEAD
                        entry = _Warm(expires, tuple(marks), item, b"", None, result is not None, now, size)
                    self._index(index, key, entry)

    def _index(self, index: dict[str, _Warm], key: str, entry: _Warm) -> None:
        """Store under the lock; the oldest entries of either index leave to keep both within the budget."""
        previous = index.pop(key, None)
        if previous is not None:
            self._warm_bytes -= previous.size
        if entry.size > self._warm_budget:
            return
        limit = self.config.verification.cache.max_entries
        while self._warm_bytes + entry.size > self._warm_budget or len(index) >= limit:
            fullest = max(self._warm.values(), key=len)
            if not fullest:
                return
            oldest = next(iter(fullest))
            self._warm_bytes -= fullest.pop(oldest).size
        index[key] = entry
        self._warm_bytes += entry.size

    def _touch(self, entry: _Warm, now: float) -> None:
        """Mark the cache entries under a warm answer as recently used (the cache evicts the least recent)."""
        with self._lock:
            entry.touched = now
            for cache_key, mark in entry.held:
                if mark is not None:
                    self._cached(cache_key)

    def _unstarted(self, key: CacheKey, reference: Reference) -> Result:
        """The answer of a job that waited its whole budget for its share of the pool (never under the lock)."""
        with self._lock:
            self._inflight.pop(key, None)
        return _unstarted_result(reference)

    def _cached(self, key: CacheKey) -> Result | None:
        """The live entry under `key`, under the lock (one lookup, where `get` would test and then fetch)."""
        try:
            return self._cache[key]
        except KeyError:  # absent or expired
            return None

    def _job(self, key: CacheKey, reference: Reference, job: Callable[[Reference], Result]) -> Result:
        try:
            if key[0] == "facts":
                return self._flight(key, lambda: self._attempt(key, reference, job))
            return self._shared_hit(key) or self._attempt(key, reference, job)
        finally:
            with self._lock:
                self._inflight.pop(key, None)

    def _attempt(self, key: CacheKey, reference: Reference, job: Callable[[Reference], Result]) -> Result:
        """Run the job; an error becomes a cached result (never a traceback)."""
        error_ttl = self.config.verification.cache.error_ttl
        try:
            result = job(reference)
        except ItemError as exc:
            result = Result.failed(exc, error_ttl)
        except Exception as exc:  # never let a bug become a 500 or an unanswered key
            log.exception("internal error while checking %s", reference)
            result = Result.failed(ItemError(ErrorCode.INTERNAL, f"{type(exc).__name__} while checking "
                                                                  f"{reference}"), error_ttl)
        if result.error:
            stored = [key]  # successes were stored by the job, under their digest
            with self._lock:
                self._remember(key, result)
                tag = self._cache.get(("tag", key[1], key[2])) if key[0] == "verify-tag" else None
                if tag is not None and tag.digest:
                    stored.append(("facts", key[1], tag.digest))  # the digest's check failed
                    self._remember(stored[-1], result)
            for name in stored:
                self._publish(name, result)
        return result

    # --- the shared cache (Redis): local cache first, then Redis, then one replica verifies for all ----

    def _shared_hit(self, key: CacheKey) -> Result | None:
        """A result another worker or replica stored, kept locally for the rest of its TTL."""
        if self._shared is None:
            return None
        result = from_shared(key, self._shared.get(key[0], shared_key(key)))
        if result is not None:
            with self._lock:
                self._remember(key, result)
        return result

    def _flight(self, key: CacheKey, compute: Callable[[], Result]) -> Result:
        """Compute a facts result once across replicas: wait (bounded) for a replica that is already at it."""
        shared = self._shared
        if shared is None:
            return compute()
        hit = self._shared_hit(key)
        if hit is not None:
            return hit
        token = shared.lead(key[0], shared_key(key), hold=JOB_BUDGET_FACTOR * self.config.server.request_deadline)
        if token is None and shared.available:
            entry = shared.wait(key[0], shared_key(key), until=time.monotonic() + shared.lead_wait)
            result = from_shared(key, entry)
            if result is not None:
                self.metrics.shared_cache.labels("waited").inc()
                with self._lock:
                    self._remember(key, result)
                return result
        elif token is not None:
            # The previous holder may have stored its result and released the lock since the lookup above.
            hit = self._shared_hit(key)
            if hit is not None:
                shared.release(key[0], shared_key(key), token)
                return hit
            self.metrics.shared_cache.labels("led").inc()
        try:
            return compute()
        finally:
            if token is not None:
                shared.release(key[0], shared_key(key), token)

    def _publish(self, key: CacheKey, result: Result) -> None:
        """Write a result to the shared cache with the TTL of its kind (never under the engine lock)."""
        if self._shared is None:
            return
        code, _, message = result.error.partition(": ")
        self._shared.put(key[0], shared_key(key), to_shared(result), (code, message) if result.error else None,
                         result.ttl)

    def _remember(self, key: CacheKey, result: Result) -> None:
        """Store under the lock, within both bounds: bytes (by the cache) and entries."""
        if result.size > self._cache.maxsize:
            return
        while len(self._cache) >= self.config.verification.cache.max_entries:
            self._cache.popitem()
        self._cache[key] = result

    def _item(self, kind: str, key: str, reference: Reference, result: Result, end: bytes) -> Item:
        """The item answering `key`; a facts item ends with `end` (an ItemEnd's cached or fresh bytes)."""
        if result.error:
            return Item(key, error=result.error, transient=result.transient)
        if kind == "resolve":
            pinned = reference.with_digest(result.digest, keep_tag=self.config.mutation.keep_tag)
            return Item(key, plain=str(pinned))
        facts = result.serialised
        if facts is None:
            assert isinstance(result.value, bytes)
            facts = SerialisedFacts.from_json(result.value)
        # facts are shared by every spelling of this digest: the reference asked for is spliced in (most keys
        # are already normalised, and then one encoding serves both)
        key_json, text = quoted(key), str(reference)
        return Item(key, raw=facts.spliced(key_json, key_json if text == key else quoted(text), end), facts=facts)

    def _job_deadline(self) -> float:
        return time.monotonic() + JOB_BUDGET_FACTOR * self.config.server.request_deadline

    # --- the jobs: resolve or verify one image (provider.verification), keeping what they learn --------

    def _resolve_image(self, reference: Reference, deadline: float) -> ResolvedImage:
        """Resolve through the store and remember a tag's digest for `tagTtl`."""
        image = self.router.select(reference).resolve(reference, deadline)
        if not reference.digest:
            key: CacheKey = ("tag", reference.name, reference.tag or "latest")
            result = Result(None, "", self.config.verification.cache.tag_ttl, image.digest)
            with self._lock:
                self._remember(key, result)
            self._publish(key, result)
        return image

    def _verify_pinned(self, digest: str) -> Callable[[Reference], Result]:
        """Verify a tag whose digest is known (and still trusted): fetch by digest, not by tag."""
        return lambda reference: self._verify_one(reference.with_digest(digest))

    def _verify_one(self, reference: Reference) -> Result:
        deadline = self._job_deadline()
        store = self.router.select(reference)
        image = self._resolve_image(reference, deadline)
        key: CacheKey = ("facts", image.reference.name, image.digest)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit  # another tag (or spelling) of this digest was verified already
        if reference.digest:
            return self._verify_image(image, store, deadline)  # the caller leads this digest's flight
        return self._flight(key, lambda: self._verify_image(image, store, deadline))

    def _verify_image(self, image: ResolvedImage, store: Store, deadline: float) -> Result:
        """Verify one digest (provider.verification) and keep its facts, here and in the shared cache."""
        facts = self._verification.facts(image, store, deadline)
        cache = self.config.verification.cache
        # Kept once, serialised: the per-request members are spliced in when answering.
        result = Result(None, "", cache.ttl if facts["verified"] else cache.unverified_ttl, image.digest,
                         SerialisedFacts.of(facts))
        key: CacheKey = ("facts", image.reference.name, image.digest)
        with self._lock:
            self._remember(key, result)
        self._publish(key, result)
        return result

    def _resolve_one(self, reference: Reference) -> Result:
        image = self._resolve_image(reference, self._job_deadline())
        return Result(None, "", self.config.verification.cache.tag_ttl, image.digest)
