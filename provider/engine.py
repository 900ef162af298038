"""The batch executor behind /verify and /mutate.

For each distinct key of a request: parse the reference, answer from the cache or join the verification
already running for it, else start one on a bounded thread pool. Whatever is not finished by the request
deadline is answered `TIMEOUT`; that work carries on and fills the cache, so Gatekeeper's retry succeeds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from cachetools import TLRUCache

from provider.config import Authority, Config
from provider.errors import ErrorCode, ItemError
from provider.facts import build_facts, for_request
from provider.metrics import Metrics
from provider.reference import InvalidReference, Reference, parse_reference
from provider.stores import StoreRouter
from provider.stores.selection import select
from provider.verifiers import default_verifiers
from provider.verifiers.base import AttestationResult, SignatureResult, Verifier

log = logging.getLogger("sigwarden.engine")

# How long background work may go on after its request was answered with TIMEOUT.
JOB_BUDGET_FACTOR = 4


@dataclass(frozen=True)
class Item:
    """One answer of a provider response: a value, or an error string `CODE: message`."""

    key: str
    value: Any = None
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "error": self.error} if self.error else {"key": self.key, "value": self.value}

    @property
    def outcome(self) -> str:
        if self.error:
            return self.error.split(":", 1)[0]
        if isinstance(self.value, dict):
            return "verified" if self.value.get("verified") else "unverified"
        return "resolved"


@dataclass(frozen=True)
class _Result:
    """What one job produced, kept in the cache for `ttl` seconds."""

    value: Any
    error: ItemError | None
    ttl: float


class Engine:
    """Verifies and resolves batches of image references under a deadline."""

    def __init__(self, config: Config, metrics: Metrics | None = None,
                 router: StoreRouter | None = None, verifiers: Sequence[Verifier] | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.router = router or StoreRouter.from_config(config, self.metrics)
        self.verifiers = tuple(verifiers if verifiers is not None else default_verifiers(config.verification))
        cache = config.verification.cache
        self._cache: TLRUCache[tuple[str, str], _Result] = TLRUCache(
            maxsize=cache.max_entries, ttu=lambda _key, result, now: now + result.ttl)
        self._inflight: dict[tuple[str, str], Future[_Result]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=config.verification.concurrency,
                                        thread_name_prefix="sigwarden-verify")

    # --- public API ----------------------------------------------------------------------------------

    def verify(self, keys: Sequence[str], trace_id: str, deadline: float | None = None) -> list[Item]:
        """Facts for every distinct key, in request order."""
        return self._run("verify", keys, trace_id, deadline, self._verify_one)

    def resolve(self, keys: Sequence[str], trace_id: str, deadline: float | None = None) -> list[Item]:
        """Digest-pinned references for every distinct key, in request order."""
        return self._run("resolve", keys, trace_id, deadline, self._resolve_one, keep_pinned=True)

    def shutdown(self) -> None:
        """Stop taking work; running jobs finish in the background."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.router.close()

    # --- batch machinery -----------------------------------------------------------------------------

    def _run(self, kind: str, keys: Sequence[str], trace_id: str, deadline: float | None,
             job: Callable[[Reference], _Result], keep_pinned: bool = False) -> list[Item]:
        deadline = deadline if deadline is not None else time.monotonic() + self.config.server.request_deadline
        answers: dict[str, Item] = {}
        pending: dict[str, Future[_Result]] = {}
        hits = 0
        for key in dict.fromkeys(keys):
            try:
                reference = parse_reference(key)
            except InvalidReference as exc:
                answers[key] = Item(key, error=f"{ErrorCode.INVALID_REFERENCE}: {exc}")
                continue
            if keep_pinned and reference.digest:
                # Mutation must be idempotent: a pinned reference comes back exactly as sent.
                answers[key] = Item(key, value=key)
                continue
            cache_key = (kind, str(reference))
            with self._lock:
                hit = self._cache.get(cache_key)
                if hit is None:
                    future = self._inflight.get(cache_key)
                    if future is None:
                        future = self._pool.submit(self._job, cache_key, reference, job)
                        self._inflight[cache_key] = future
            if hit is not None:
                hits += 1
                answers[key] = self._item(key, hit, cached=True, trace_id=trace_id)
            else:
                pending[key] = future
        if hits:
            self.metrics.cache_hits.labels(kind).inc(hits)
        if pending:
            self.metrics.cache_misses.labels(kind).inc(len(pending))
            wait(pending.values(), timeout=max(0.0, deadline - time.monotonic()))
        for key, future in pending.items():
            if future.done() and not future.cancelled():
                answers[key] = self._item(key, future.result(), cached=False, trace_id=trace_id)
            else:
                budget = self.config.server.request_deadline
                answers[key] = Item(key, error=f"{ErrorCode.TIMEOUT}: {kind} of {key} did not finish within "
                                               f"{budget:g}s; it continues and a retry will be answered from cache")
        return [answers[key] for key in dict.fromkeys(keys)]

    def _job(self, cache_key: tuple[str, str], reference: Reference,
             job: Callable[[Reference], _Result]) -> _Result:
        try:
            result = job(reference)
        except ItemError as exc:
            result = _Result(None, exc, self.config.verification.cache.error_ttl)
        except Exception as exc:  # never let a bug become a 500 or an unanswered key
            log.exception("internal error while checking %s", reference)
            error = ItemError(ErrorCode.INTERNAL, f"{type(exc).__name__} while checking {reference}")
            result = _Result(None, error, self.config.verification.cache.error_ttl)
        with self._lock:
            self._cache[cache_key] = result
            self._inflight.pop(cache_key, None)
        return result

    def _item(self, key: str, result: _Result, cached: bool, trace_id: str) -> Item:
        if result.error is not None:
            return Item(key, error=str(result.error))
        if isinstance(result.value, dict):
            return Item(key, value=for_request(result.value, key, cached, trace_id))
        return Item(key, value=result.value)

    def _job_deadline(self) -> float:
        return time.monotonic() + JOB_BUDGET_FACTOR * self.config.server.request_deadline

    # --- the per-image work --------------------------------------------------------------------------

    def _verify_one(self, reference: Reference) -> _Result:
        deadline = self._job_deadline()
        store = self.router.select(reference)
        image = store.resolve(reference, deadline)
        artifacts = store.discover(image, deadline)
        in_scope = [a for a in self.config.authorities if a.covers(image.reference.name)]
        selection = select(artifacts, self.config.verification.max_signatures, in_scope)
        artifacts = selection.artifacts
        signatures: list[SignatureResult] = []
        attestations: list[AttestationResult] = []
        for verifier in self.verifiers:
            authorities: list[Authority] = [a for a in in_scope if verifier.applies_to(a)]
            if not authorities:
                continue
            started = time.perf_counter()
            outcome = verifier.verify(image, artifacts, authorities, store, deadline)
            self.metrics.verifier_seconds.labels(verifier.name).observe(time.perf_counter() - started)
            signatures.extend(outcome.signatures)
            attestations.extend(outcome.attestations)
        facts = build_facts(image, signatures, attestations, selection.found, len(in_scope),
                            omitted=selection.omitted, max_signatures=selection.limit)
        cache = self.config.verification.cache
        return _Result(facts, None, cache.ttl if facts["verified"] else cache.unverified_ttl)

    def _resolve_one(self, reference: Reference) -> _Result:
        image = self.router.select(reference).resolve(reference, self._job_deadline())
        pinned = reference.with_digest(image.digest, keep_tag=self.config.mutation.keep_tag)
        return _Result(str(pinned), None, self.config.verification.cache.ttl)
