"""Warm-cache /verify latency and throughput of the provider against a bare Flask baseline.

Both run under gunicorn (the baseline: 1 gthread worker, 16 threads) with the same TLS + mTLS certificates on
loopback; the client is the same requests session. Prints p50/p99 latency and requests/s per batch size, and the
provider/baseline ratios. Targets: p50 ratio <= 1.5 at 100 keys; with 32 keep-alive connections and 5-key
requests, req/s ratio <= 1.5 and p99 <= 2x the baseline's.

The two servers are measured in turns (latency: request by request; load: in one-second slices), so whatever
else runs on a shared machine weighs on both alike.

Then the cold path, beside it: 100 cosign-signed images in a real docker-registry on loopback, asked in one
request of a provider that has just started (nothing cached), against the floor, a client that fetches only what
verification must fetch (manifest, signature manifest, payload) with the same concurrency; in turns, COLD_ROUNDS
times each.

`--profile` measures the same warm requests inside this process instead, without sockets or TLS: the provider's
WSGI app (as the front door calls it) against the baseline app, then where the provider's time goes (cProfile).
`--cold` runs only the cold part. `--profile-cold` verifies the 100 cold images in this process (with the CPU
this process and the registry spent in each round) and samples every thread's stack.
"""

from __future__ import annotations

import cProfile
import importlib
import json
import logging
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from provider.devkit.layout import LayoutWriter
from provider.devkit.process import ProviderProcess
from tests.helpers import ProviderPKI, free_port, provider_request, write_yaml

REG = "bench.example"
BATCHES = (1, 10, 100, 1000)  # 1000: near the default server.maxKeys (1024)
LATENCY_ROUNDS = 200
THROUGHPUT_SECONDS = 3.0
SLICE_SECONDS = 1.0
CLIENT_THREADS = 4
PROFILE_ROUNDS = 1000
COLD_IMAGES = 100
COLD_ROUNDS = 3
COLD_CONCURRENCY = 32
KEYS = [f"{REG}/team/app:v{i}" for i in range(max(BATCHES))]
# Warm means every key's tag resolution is cached too: with the default tagTtl (5 s) a 1000-tag batch is
# never all warm at once (re-resolving 1000 tags from the layout takes about as long).
WARM = {"cache": {"tagTtl": "1h", "unverifiedTtl": "1h"}}


def publish(root: Path) -> Path:
    """An OCI layout with one unsigned image per key; returns the directory the store serves."""
    writer = LayoutWriter(root / "layouts" / REG, "team/app")
    for i in range(len(KEYS)):
        writer.add_image(f"v{i}", f"content {i}".encode())
    return root / "layouts"


def start_baseline(pki: ProviderPKI, facts_file: Path, port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BASELINE_FACTS": str(facts_file)}
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
               "--worker-class", "gthread", "--threads", "16", "--certfile", pki.path("server.crt"),
               "--keyfile", pki.path("server.key"), "--ca-certs", pki.path("client-ca.crt"), "--cert-reqs", "2",
               "--keep-alive", "30", "--log-level", "warning", "tests.benchmarks.baseline_app:app"]
    if "control_socket_disable" in subprocess.run([sys.executable, "-m", "gunicorn", "--help"],
                                                  capture_output=True, text=True).stdout:
        command.insert(-1, "--no-control-socket")
    process = subprocess.Popen(command, env=env, cwd=Path(__file__).resolve().parents[2])
    return process


def wait_port(url: str, session: requests.Session, body: dict) -> None:
    for _ in range(300):
        try:
            session.post(url, json=body, timeout=2)
            return
        except requests.exceptions.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def in_turns(names: list[str], turn: int) -> list[str]:
    """Who goes first alternates, so neither always follows the other."""
    return names if turn % 2 == 0 else names[::-1]


def latencies(session: requests.Session, urls: dict[str, str], body: dict,
              rounds: int = LATENCY_ROUNDS) -> dict[str, list[float]]:
    """Seconds per request for each server, one request to each in turn."""
    times: dict[str, list[float]] = {who: [] for who in urls}
    for turn in range(rounds):
        for who in in_turns(list(urls), turn):
            started = time.perf_counter()
            response = session.post(urls[who], json=body, timeout=10)
            times[who].append(time.perf_counter() - started)
            assert response.status_code == 200, response.text[:200]
    return times


def loaded(make_session: Callable[[], requests.Session], urls: dict[str, str], body: dict,
           clients: int) -> dict[str, tuple[float, float]]:
    """Requests/s and p99 latency (ms) per server with `clients` keep-alive connections sending back to back,
    THROUGHPUT_SECONDS per server in slices taken in turns."""
    sessions = {who: [make_session() for _ in range(clients)] for who in urls}
    for who, pool in sessions.items():  # connections open before the clock starts, for both alike
        for session in pool:
            session.post(urls[who], json=body, timeout=10)
    times: dict[str, list[float]] = {who: [] for who in urls}
    spent = dict.fromkeys(urls, 0.0)

    def run(session: requests.Session, url: str, end: float, out: list[float]) -> None:
        while time.monotonic() < end:
            started = time.perf_counter()
            session.post(url, json=body, timeout=10)
            out.append(time.perf_counter() - started)

    for turn in range(round(THROUGHPUT_SECONDS / SLICE_SECONDS)):
        for who in in_turns(list(urls), turn):
            slots: list[list[float]] = [[] for _ in range(clients)]
            started = time.monotonic()
            threads = [threading.Thread(target=run, args=(session, urls[who], started + SLICE_SECONDS, slot))
                       for session, slot in zip(sessions[who], slots, strict=True)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            spent[who] += time.monotonic() - started
            times[who].extend(t for slot in slots for t in slot)
    for pool in sessions.values():
        for session in pool:
            session.close()
    return {who: (len(every) / spent[who], statistics.quantiles(every, n=100)[98] * 1000)
            for who, every in times.items()}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki = ProviderPKI.create(root / "pki")
        layouts = publish(root)
        port, metrics_port, base_port = free_port(), free_port(), free_port()
        config = write_yaml(root / "config.yaml", {
            "server": {"listen": f"127.0.0.1:{port}", "metricsListen": f"127.0.0.1:{metrics_port}",
                       "tls": {"cert": pki.path("server.crt"), "key": pki.path("server.key"),
                               "clientCA": pki.path("client-ca.crt")}},
            "verification": WARM,
            "stores": [{"type": "oci-layout", "path": str(layouts), "match": ["*"]}]})
        provider = ProviderProcess(config, port, metrics_port)
        provider.wait_ready()
        baseline: subprocess.Popen[bytes] | None = None

        def make_session() -> requests.Session:
            session = requests.Session()
            session.trust_env = False  # REQUESTS_CA_BUNDLE would override session.verify
            session.cert, session.verify = pki.client_pair, pki.path("ca.crt")
            return session

        if "--cold" in sys.argv[1:]:  # the cold part alone
            provider.stop()
            cold(root, pki, make_session)
            return
        session = make_session()
        try:
            warm = session.post(f"{provider.url}/verify", json=provider_request(KEYS), timeout=60).json()
            while sum(1 for item in warm["response"]["items"] if item.get("value")) < len(KEYS):
                time.sleep(0.1)  # the first answer may still be partly unfinished
                warm = session.post(f"{provider.url}/verify", json=provider_request(KEYS), timeout=60).json()
            facts_file = root / "facts.json"
            facts_file.write_text(json.dumps(warm["response"]["items"][0]["value"]))
            baseline = start_baseline(pki, facts_file, base_port)
            base_url = f"https://127.0.0.1:{base_port}"
            urls = {"sigwarden": f"{provider.url}/verify", "baseline": f"{base_url}/verify"}
            wait_port(urls["baseline"], session, provider_request(KEYS[:1]))
            print(f"{'keys':>5} {'who':>9} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>8} {'bytes':>8}")
            for size in BATCHES:
                body = provider_request(KEYS[:size])
                sizes = {who: len(session.post(url, json=body, timeout=10).content) for who, url in urls.items()}
                times = latencies(session, urls, body, LATENCY_ROUNDS if size < 1000 else LATENCY_ROUNDS // 2)
                load = loaded(make_session, urls, body, CLIENT_THREADS)
                rows = {}
                for who in urls:
                    p50 = statistics.median(times[who]) * 1000
                    p99 = statistics.quantiles(times[who], n=100)[98] * 1000
                    rows[who] = (p50, p99, load[who][0])
                    print(f"{size:>5} {who:>9} {p50:>9.2f} {p99:>9.2f} {load[who][0]:>8.1f} {sizes[who]:>8}")
                ratio_p50 = rows["sigwarden"][0] / rows["baseline"][0]
                ratio_p99 = rows["sigwarden"][1] / rows["baseline"][1]
                ratio_rps = rows["baseline"][2] / rows["sigwarden"][2]
                print(f"{size:>5} {'ratio':>9} {ratio_p50:>9.2f} {ratio_p99:>9.2f} {ratio_rps:>8.2f}   "
                      "(sigwarden/baseline; req/s column is baseline/sigwarden)")
            # The load shape: 32 keep-alive connections, 5-key requests (targets: req/s ratio <= 1.5,
            # p99 <= 2x the floor's).
            rows32 = loaded(make_session, urls, provider_request(KEYS[:5]), 32)
            for who, (rps, p99) in rows32.items():
                print(f"32 connections x 5 keys {who:>9}: {rps:8.1f} req/s, p99 {p99:7.2f} ms")
            print(f"32 connections x 5 keys     ratio: req/s {rows32['baseline'][0] / rows32['sigwarden'][0]:.2f} "
                  f"(baseline/sigwarden), p99 {rows32['sigwarden'][1] / rows32['baseline'][1]:.2f} "
                  "(sigwarden/baseline)")
        finally:
            if baseline is not None:
                baseline.terminate()
                baseline.wait(timeout=15)
            provider.stop()
        cold(root, pki, make_session)


def cold(root: Path, pki: ProviderPKI, make_session: Callable[[], requests.Session]) -> None:
    """The cold path over the wire: a just-started provider verifying COLD_IMAGES signed images in one request,
    against the raw-fetch floor, in turns."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from provider.devkit import cosign
    from tests.benchmarks.cold import fetch_floor, publish_signed
    from tests.registry import RegistryServer

    key = ec.generate_private_key(ec.SECP256R1())
    (root / "cosign.pub").write_bytes(cosign.public_pem(key))
    registry = RegistryServer(root / "registry")
    try:
        print(f"\npushing {COLD_IMAGES} signed images …", file=sys.stderr)
        pairs = publish_signed(root, registry, key, COLD_IMAGES)
        keys = [f"{registry.host}/{repository}:{tag}" for repository, tag in pairs]
        fetch_floor(registry, pairs)  # the registry's own caches warm for both alike
        port, metrics_port = free_port(), free_port()
        config = write_yaml(root / "cold.yaml", {
            "server": {"listen": f"127.0.0.1:{port}", "metricsListen": f"127.0.0.1:{metrics_port}",
                       "requestDeadline": "60s",
                       "tls": {"cert": pki.path("server.crt"), "key": pki.path("server.key"),
                               "clientCA": pki.path("client-ca.crt")}},
            "verification": {"concurrency": COLD_CONCURRENCY},
            "stores": [{"type": "registry", "match": ["*"], "insecure": [registry.host],
                        "allowNetworks": ["127.0.0.1/32"]}],
            "authorities": [{"name": "bench", "cosign": {"publicKeys": [str(root / "cosign.pub")]}}]})
        # The floor fetches 32 images at once; the provider starts one registry host on a quarter of its
        # verification pool and lets it borrow up to three quarters as it keeps up: "floor@8" fetches a
        # quarter's worth at once.
        spent: dict[str, list[float]] = {"sigwarden": [], "floor": [], "floor@8": []}
        for turn in range(COLD_ROUNDS):
            for who in in_turns(list(spent), turn):
                if who.startswith("floor"):
                    spent[who].append(fetch_floor(registry, pairs, 8 if who == "floor@8" else COLD_CONCURRENCY))
                    continue
                provider = ProviderProcess(config, port, metrics_port)
                try:
                    provider.wait_ready()
                    session = make_session()
                    session.post(f"{provider.url}/verify", json=provider_request(["bench.invalid/warmup:v1"]),
                                 timeout=60)  # the connection and the first-request imports, for neither image
                    started = time.perf_counter()
                    answer = session.post(f"{provider.url}/verify", json=provider_request(keys), timeout=120)
                    spent[who].append(time.perf_counter() - started)
                    items = answer.json()["response"]["items"]
                    assert sum(1 for item in items if item.get("value", {}).get("verified")) == len(keys), \
                        answer.text[:300]
                finally:
                    provider.stop()
        print(f"cold: {COLD_IMAGES} signed images in one request, registry on loopback ({COLD_ROUNDS} rounds)")
        for who, times in spent.items():
            print(f"cold {who:>9}: " + ", ".join(f"{t * 1000:7.0f} ms" for t in times)
                  + f"   median {statistics.median(times) * 1000:7.0f} ms")
        for floor in ("floor", "floor@8"):
            ratios = [s / f for s, f in zip(spent["sigwarden"], spent[floor], strict=True)]
            print(f"cold ratio {floor:>7}: " + ", ".join(f"{r:.2f}" for r in ratios)
                  + f"   median {statistics.median(spent['sigwarden']) / statistics.median(spent[floor]):.2f}"
                  f"   (sigwarden/{floor})")
    finally:
        registry.stop()


def _shape(part: str) -> str:
    """A request path's part with the names and digests taken out, for counting requests by kind."""
    if part.startswith(("img", "cold")) or len(part) > 40:
        return "*"
    return part


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile_cold() -> None:
    """The cold path in this process (an engine, no server): wall time against the floor, then a sampled
    profile of every thread."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from provider.config import build_config
    from provider.devkit import cosign
    from provider.engine import Engine
    from tests.benchmarks.cold import Sampler, fetch_floor, profiled, publish_signed
    from tests.registry import RegistryServer

    key = ec.generate_private_key(ec.SECP256R1())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "cosign.pub").write_bytes(cosign.public_pem(key))
        registry = RegistryServer(root / "registry")
        try:
            pairs = publish_signed(root, registry, key, COLD_IMAGES)
            keys = [f"{registry.host}/{repository}:{tag}" for repository, tag in pairs]
            data = {"server": {"requestDeadline": "60s"}, "verification": {"concurrency": COLD_CONCURRENCY},
                    "stores": [{"type": "registry", "match": ["*"], "insecure": [registry.host],
                                "allowNetworks": ["127.0.0.1/32"]}],
                    "authorities": [{"name": "bench", "cosign": {"publicKeys": ["cosign.pub"]}}]}
            config = build_config(data, write_yaml(root / "config.yaml", data))
            fetch_floor(registry, pairs)
            Engine(config).verify(["bench.invalid/warmup:v1"], "warmup")  # imports, for neither side
            # The registry shares the two cores: its CPU per round says how much of the wall time it takes.
            print("CPU: this process / the registry's")
            for turn in range(COLD_ROUNDS):
                for who in in_turns(["sigwarden", "floor"], turn):
                    cpu, served = time.process_time(), process_cpu(registry.process.pid)
                    if who == "floor":
                        wall = fetch_floor(registry, pairs)
                        print(f"floor     {wall * 1000:7.0f} ms, CPU {(time.process_time() - cpu) * 1000:5.0f} ms / "
                              f"{(process_cpu(registry.process.pid) - served) * 1000:5.0f} ms")
                        continue
                    engine = Engine(config)
                    started = time.perf_counter()
                    items = engine.verify(keys, "cold")
                    print(f"sigwarden {(time.perf_counter() - started) * 1000:7.0f} ms, CPU "
                          f"{(time.process_time() - cpu) * 1000:5.0f} ms / "
                          f"{(process_cpu(registry.process.pid) - served) * 1000:5.0f} ms "
                          f"({sum(1 for i in items if i.value and i.value['verified'])} verified)")
                    engine.shutdown()
            engine = Engine(config)
            sampler = Sampler()
            before = len(registry.requests_from("sigwarden"))
            sampler.run(lambda: engine.verify(keys, "cold"))
            engine.shutdown()
            sent = registry.requests_from("sigwarden")[before:]
            kinds = Counter(" ".join(_shape(part) for part in line.split("/")) for line in sent)
            print(f"registry requests per image: {len(sent) / len(keys):.1f} (the floor: 3)")
            for shape, count in kinds.most_common():
                print(f"  {count / len(keys):4.1f}  {shape}")
            print(sampler.report())
            engine = Engine(config)
            print("\nCPU of the cold verification, every thread (cProfile; waits show as the queue and lock calls):")
            profiled(lambda: engine.verify(keys, "cold"))
            engine.shutdown()
        finally:
            registry.stop()


def profile() -> None:
    """The warm request path in this process: microseconds per request of both apps, then cProfile's top."""
    from provider.logs import configure_logging
    from provider.metrics import Metrics
    from provider.server.app import create_app
    from provider.server.tls import ClientNamePinning
    from provider.server.wsgi import HTTPAnswer, HTTPRequest, call_app
    from provider.state import ProviderState

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = write_yaml(root / "config.yaml", {
            "verification": WARM,
            "stores": [{"type": "oci-layout", "path": str(publish(root)), "match": ["*"]}]})
        # The request log line is part of the cost: written as the server writes it, to a file.
        configure_logging("INFO")
        log_file = (root / "provider.log").open("w")
        logging.getLogger().handlers[0].setStream(log_file)
        state = ProviderState(config, Metrics())
        runtime = state.load()
        # Wrapped as the server wraps it (no client names pinned here).
        provider_app = ClientNamePinning(create_app(state), lambda: (), state.metrics)

        def request(size: int) -> HTTPRequest:
            body = json.dumps(provider_request(KEYS[:size])).encode()
            headers = (("host", "127.0.0.1"), ("user-agent", "python-requests"), ("accept-encoding", "gzip"),
                       ("accept", "*/*"), ("connection", "keep-alive"), ("content-length", str(len(body))),
                       ("content-type", "application/json"))
            return HTTPRequest("POST", "/verify", headers, body, ("127.0.0.1", 40000), ("127.0.0.1", 8443),
                               {"subject": ((("commonName", "gatekeeper"),),)})

        def answer(app: Any, size: int) -> HTTPAnswer:
            result = call_app(app, request(size))
            assert result.status == 200, result.body[:200]
            return result

        everything = request(len(KEYS))
        warm = call_app(provider_app, everything)
        while warm.body.count(b'"cached":true') < len(KEYS):  # the first answer may still be partly unfinished
            time.sleep(0.05)
            warm = call_app(provider_app, everything)
        (root / "facts.json").write_text(json.dumps(json.loads(warm.body)["response"]["items"][0]["value"]))
        os.environ["BASELINE_FACTS"] = str(root / "facts.json")
        apps = {"sigwarden": provider_app, "baseline": importlib.import_module("tests.benchmarks.baseline_app").app}

        print(f"{'keys':>5} {'who':>9} {'p50 us':>9} {'bytes':>8}   (in process: no sockets, no TLS)")
        for size in BATCHES:
            prepared = request(size)
            times: dict[str, list[float]] = {who: [] for who in apps}
            for turn in range(PROFILE_ROUNDS):
                for who in in_turns(list(apps), turn):
                    started = time.perf_counter()
                    call_app(apps[who], prepared)
                    times[who].append(time.perf_counter() - started)
            p50 = {who: statistics.median(spent) * 1e6 for who, spent in times.items()}
            for who, app in apps.items():
                print(f"{size:>5} {who:>9} {p50[who]:>9.1f} {len(answer(app, size).body):>8}")
            print(f"{size:>5} {'ratio':>9} {p50['sigwarden'] / p50['baseline']:>9.2f}   (sigwarden/baseline)")

        prepared = request(len(KEYS))
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(PROFILE_ROUNDS):
            call_app(provider_app, prepared)
        profiler.disable()
        print(f"\nwhere a warm {len(KEYS)}-key request of the provider spends its time ({PROFILE_ROUNDS} requests):")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(25)
        runtime.engine.shutdown()
        log_file.close()


if __name__ == "__main__":
    if "--profile" in sys.argv[1:]:
        profile()
    elif "--profile-cold" in sys.argv[1:]:
        profile_cold()
    else:
        main()
