"""Gatekeeper's real pattern: its own response cache in front, audit and admission at once, 1 or 3 providers.

Gatekeeper (webhook and audit alike) sends one request per object evaluation, carrying only the keys its own
response cache (3 minutes by default) does not hold; it caches every item, errors included, but never a
`systemError` (the provider's unfinished items). This benchmark models exactly that, with one cache for the
audit pod and one for the webhook pod:

- the audit reviews PODS Pods whose containers run IMAGES distinct cosign-signed images (a real docker-registry on
  loopback), one object after another, as fast as the answers come; evaluations whose keys are all cached cost
  no request;
- admission requests (a Pod with one image, drawn from the same images) arrive at ADMISSION_RATE per second
  during the audit, through the webhook's cache.

Run once against one provider and once against three providers sharing a Redis (requests spread over them
round-robin, as a Service would). Printed, each against its floor, in the same run:
- time to a fully warm cache (the last image's first conclusive answer) against the raw-fetch floors of
  tests/benchmarks/cold.py (manifest, signature manifest, payload; and with the `.att` and referrers tags
  beside `.sig`) for every image, one image after another as the audit asks;
- registry requests, three replicas against one (the floor);
- p99 of the admission requests that reached a provider during the audit, all of them and those for images the
  provider had already answered, against the p99 of the same admission traffic once the audit is over (a warm,
  quiet provider).

`--small` runs 1,000 Pods over 100 images.
"""

from __future__ import annotations

import itertools
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from provider.devkit import cosign
from provider.devkit.process import ProviderProcess
from tests.benchmarks.cold import fetch_floor, publish_signed
from tests.benchmarks.replicas import settled_requests, start_replica
from tests.helpers import ProviderPKI, provider_request
from tests.redisserver import RedisServer
from tests.registry import RegistryServer

SMALL = "--small" in sys.argv[1:]
PODS = 1_000 if SMALL else 10_000
IMAGES = 100 if SMALL else 1_000
GATEKEEPER_TTL = 180.0  # Gatekeeper's external data response cache (--external-data-provider-response-cache-ttl)
ADMISSION_RATE = 20.0  # admission requests per second during the audit
QUIET_ADMISSIONS = 200
SIDECARS = 10  # a third of the Pods also run one of a few common sidecar images


@dataclass
class GatekeeperCache:
    """Gatekeeper's response cache: key to item until its TTL; systemError answers are not kept."""

    entries: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def missing(self, keys: list[str], now: float) -> list[str]:
        with self.lock:
            return [key for key in keys if self.entries.get(key, 0.0) <= now]

    def keep(self, keys: list[str], now: float) -> None:
        with self.lock:
            for key in keys:
                self.entries[key] = now + GATEKEEPER_TTL


class Providers:
    """The provider Service: requests go round-robin over the replicas, each over its own connection."""

    def __init__(self, replicas: list[ProviderProcess], pki: ProviderPKI) -> None:
        self.replicas = replicas
        self.turn = itertools.count()
        self.local = threading.local()
        self.pki = pki

    def session(self) -> requests.Session:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
            session.trust_env = False
            session.cert, session.verify = self.pki.client_pair, self.pki.path("ca.crt")
        return session

    def ask(self, keys: list[str]) -> tuple[float, list[str], bool]:
        """Seconds, the keys answered conclusively (items Gatekeeper caches), and whether any was verified."""
        replica = self.replicas[next(self.turn) % len(self.replicas)]
        started = time.perf_counter()
        body = self.session().post(f"{replica.url}/verify", json=provider_request(keys), timeout=60).json()
        elapsed = time.perf_counter() - started
        items = body["response"]["items"]
        return elapsed, [item["key"] for item in items], any(item.get("value", {}).get("verified") for item in items)


def evaluate(cache: GatekeeperCache, providers: Providers, keys: list[str]) -> tuple[float | None, list[str]]:
    """One object evaluation: a request only for the keys not cached; (its seconds or None, keys answered)."""
    missing = cache.missing(keys, time.monotonic())
    if not missing:
        return None, []
    elapsed, answered, _ = providers.ask(missing)
    cache.keep(answered, time.monotonic())
    return elapsed, answered


def pods(images: list[str]) -> list[list[str]]:
    chooser = random.Random(29)
    every = []
    for index in range(PODS):
        containers = [images[index % len(images)]]  # every image is run by some Pod
        if chooser.random() < 1 / 3:
            containers.append(images[chooser.randrange(SIDECARS)])
        every.append(containers)
    chooser.shuffle(every)
    return every


@dataclass
class Outcome:
    warm_seconds: float
    audit_seconds: float
    audit_requests: int
    registry_requests: int
    admission_during: list[float]
    admission_warm: list[float]  # during the audit, for images the providers had answered already
    admission_quiet: list[float]


def run(providers: Providers, registry: RegistryServer, images: list[str]) -> Outcome:
    audit_cache, webhook_cache = GatekeeperCache(), GatekeeperCache()
    before = settled_requests(registry)
    first_answer: dict[str, float] = {}
    started = time.monotonic()
    done = threading.Event()
    during: list[float] = []
    warm_during: list[float] = []
    chooser = random.Random(7)

    def admissions(out: list[float], warm: list[float], stop: threading.Event | None, count: int = 0) -> None:
        sent = 0
        while (stop is not None and not stop.is_set()) or (stop is None and sent < count):
            image = chooser.choice(images)
            answered_before = image in first_answer
            elapsed, _ = evaluate(webhook_cache, providers, [image])
            sent += 1
            if elapsed is not None:
                out.append(elapsed)
                if answered_before:
                    warm.append(elapsed)
            time.sleep(1 / ADMISSION_RATE)

    admitter = threading.Thread(target=admissions, args=(during, warm_during, done))
    admitter.start()
    requests_sent = 0
    for containers in pods(images):
        elapsed, answered = evaluate(audit_cache, providers, containers)
        requests_sent += elapsed is not None
        now = time.monotonic()
        for key in answered:
            first_answer.setdefault(key, now - started)
    audit_seconds = time.monotonic() - started
    while len(first_answer) < len(set(images)):  # images whose answers were all unfinished: the next audit
        for key in images:
            if key not in first_answer:
                _, answered = evaluate(audit_cache, providers, [key])
                requests_sent += 1
                for got in answered:
                    first_answer.setdefault(got, time.monotonic() - started)
        time.sleep(0.2)
    done.set()
    admitter.join()
    registry_requests = settled_requests(registry) - before
    quiet: list[float] = []
    webhook_cache.entries.clear()  # as after its TTL: the same traffic, all misses for Gatekeeper
    admissions(quiet, [], None, QUIET_ADMISSIONS)
    return Outcome(max(first_answer.values()), audit_seconds, requests_sent, registry_requests, during,
                   warm_during, quiet)


def p99(times: list[float]) -> float:
    return statistics.quantiles(times, n=100)[98] * 1000 if len(times) >= 2 else float("nan")


def main() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki = ProviderPKI.create(root / "pki")
        (root / "cosign.pub").write_bytes(cosign.public_pem(key))
        (root / "hmac.key").write_text("g" * 64)
        registry = RegistryServer(root / "registry")
        servers: list[Any] = [registry]
        try:
            print(f"pushing {IMAGES} signed images …", file=sys.stderr)
            pairs = publish_signed(root, registry, key, IMAGES, prefix="gk")
            images = [f"{registry.host}/{repository}:{tag}" for repository, tag in pairs]
            fetch_floor(registry, pairs)  # the registry's own caches warm for everyone alike
            # As the audit asks: one image after another; with and without the tags discovery asks beside .sig.
            floor_seconds = fetch_floor(registry, pairs, concurrency=1)
            tags_seconds = fetch_floor(registry, pairs, concurrency=1, tags=True)
            outcomes: dict[str, Outcome] = {}
            for label, replicas in (("1 provider", 1), ("3 providers, Redis", 3)):
                redis_url = ""
                if replicas > 1:
                    redis_server = RedisServer(root / "redis")
                    servers.append(redis_server)
                    redis_url = redis_server.url
                started = [start_replica(root, pki, registry, redis_url, f"{replicas}-{i}") for i in range(replicas)]
                servers.extend(started)
                outcomes[label] = run(Providers(started, pki), registry, images)
                for provider in started:
                    provider.stop()
            one = outcomes["1 provider"]
            print(f"\n{PODS} Pods over {IMAGES} signed images, audited with Gatekeeper's {GATEKEEPER_TTL:.0f} s "
                  f"response cache in front; {ADMISSION_RATE:.0f} admissions/s meanwhile")
            print(f"{'':<20} {'warm s':>7} {'floor s':>7} {'ratio':>6} {'+tags s':>7} {'ratio':>6} {'audit s':>7} "
                  f"{'requests':>8} {'registry':>8} {'vs 1':>5} {'adm p99':>8} {'warm p99':>8} {'quiet':>6} "
                  f"{'ratio':>6} {'n':>5}")
            for label, outcome in outcomes.items():
                during, warm, quiet = (p99(outcome.admission_during), p99(outcome.admission_warm),
                                       p99(outcome.admission_quiet))
                print(f"{label:<20} {outcome.warm_seconds:>7.2f} {floor_seconds:>7.2f} "
                      f"{outcome.warm_seconds / floor_seconds:>6.2f} {tags_seconds:>7.2f} "
                      f"{outcome.warm_seconds / tags_seconds:>6.2f} {outcome.audit_seconds:>7.2f} "
                      f"{outcome.audit_requests:>8} {outcome.registry_requests:>8} "
                      f"{outcome.registry_requests / one.registry_requests:>5.2f} {during:>8.1f} {warm:>8.1f} "
                      f"{quiet:>6.1f} {warm / quiet:>6.2f} {len(outcome.admission_during):>5}")
            print("warm s: the last image's first conclusive answer; floor s: fetching what a signature check "
                  "must fetch, image after image; +tags s: also the .att and referrers tags; registry: requests "
                  "the registry saw (vs 1: against one provider); adm p99 "
                  "(ms): admission requests that reached a provider during the audit, warm p99: those for images "
                  "already answered, quiet: the same traffic on the warm provider afterwards; ratio: warm p99 / "
                  "quiet; n: admission requests during the audit")
        finally:
            for server in reversed(servers):
                server.stop()


if __name__ == "__main__":
    main()
