"""Warm-cache /verify latency and throughput of the provider against a bare Flask baseline.

Both run under gunicorn (1 gthread worker, 16 threads) with the same TLS + mTLS certificates on loopback;
the client is the same requests session. Prints p50/p99 latency and requests/s per batch size, and the
provider/baseline ratios. Target: p50 ratio <= 1.5 at 100 keys.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from provider.devkit.layout import LayoutWriter
from provider.devkit.process import ProviderProcess
from tests.helpers import ProviderPKI, free_port, provider_request, write_yaml

REG = "bench.example"
BATCHES = (1, 10, 100)
LATENCY_ROUNDS = 200
THROUGHPUT_SECONDS = 3.0
CLIENT_THREADS = 4


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


def latencies(session: requests.Session, url: str, body: dict) -> list[float]:
    times = []
    for _ in range(LATENCY_ROUNDS):
        started = time.perf_counter()
        response = session.post(url, json=body, timeout=10)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text[:200]
    return times


def throughput(make_session: callable, url: str, body: dict) -> float:
    return loaded(make_session, url, body, CLIENT_THREADS)[0]


def loaded(make_session: callable, url: str, body: dict, clients: int) -> tuple[float, float]:
    """Requests/s and p99 latency (ms) with `clients` keep-alive connections sending back to back."""
    times: list[list[float]] = [[] for _ in range(clients)]
    end = time.monotonic() + THROUGHPUT_SECONDS

    def run(slot: int) -> None:
        session = make_session()
        while time.monotonic() < end:
            started = time.perf_counter()
            session.post(url, json=body, timeout=10)
            times[slot].append(time.perf_counter() - started)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [t for slot in times for t in slot]
    return len(every) / THROUGHPUT_SECONDS, statistics.quantiles(every, n=100)[98] * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki = ProviderPKI.create(root / "pki")
        writer = LayoutWriter(root / "layouts" / REG, "team/app")
        keys = [f"{REG}/team/app:v{i}" for i in range(max(BATCHES))]
        for i in range(max(BATCHES)):
            writer.add_image(f"v{i}", f"content {i}".encode())
        port, metrics_port, base_port = free_port(), free_port(), free_port()
        config = write_yaml(root / "config.yaml", {
            "server": {"listen": f"127.0.0.1:{port}", "metricsListen": f"127.0.0.1:{metrics_port}",
                       "tls": {"cert": pki.path("server.crt"), "key": pki.path("server.key"),
                               "clientCA": pki.path("client-ca.crt")}},
            "stores": [{"type": "oci-layout", "path": str(root / "layouts"), "match": ["*"]}]})
        provider = ProviderProcess(config, port, metrics_port)
        provider.wait_ready()

        def make_session() -> requests.Session:
            session = requests.Session()
            session.trust_env = False  # REQUESTS_CA_BUNDLE would override session.verify
            session.cert, session.verify = pki.client_pair, pki.path("ca.crt")
            return session

        session = make_session()
        warm = session.post(f"{provider.url}/verify", json=provider_request(keys), timeout=30).json()
        facts_file = root / "facts.json"
        facts_file.write_text(json.dumps(warm["response"]["items"][0]["value"]))
        baseline = start_baseline(pki, facts_file, base_port)
        base_url = f"https://127.0.0.1:{base_port}"
        try:
            wait_port(f"{base_url}/verify", session, provider_request(keys[:1]))
            print(f"{'keys':>5} {'who':>9} {'p50 ms':>9} {'p99 ms':>9} {'req/s':>8} {'bytes':>8}")
            for size in BATCHES:
                body = provider_request(keys[:size])
                rows = {}
                for who, url in (("sigwarden", f"{provider.url}/verify"), ("baseline", f"{base_url}/verify")):
                    size_bytes = len(session.post(url, json=body, timeout=10).content)
                    times = latencies(session, url, body)
                    p50 = statistics.median(times) * 1000
                    p99 = statistics.quantiles(times, n=100)[98] * 1000
                    rps = throughput(make_session, url, body)
                    rows[who] = (p50, p99, rps)
                    print(f"{size:>5} {who:>9} {p50:>9.2f} {p99:>9.2f} {rps:>8.1f} {size_bytes:>8}")
                ratio_p50 = rows["sigwarden"][0] / rows["baseline"][0]
                ratio_p99 = rows["sigwarden"][1] / rows["baseline"][1]
                ratio_rps = rows["baseline"][2] / rows["sigwarden"][2]
                print(f"{size:>5} {'ratio':>9} {ratio_p50:>9.2f} {ratio_p99:>9.2f} {ratio_rps:>8.2f}   "
                      "(sigwarden/baseline; req/s column is baseline/sigwarden)")
            # The load shape: 32 keep-alive connections, 5-key requests (targets: req/s ratio <= 1.5,
            # p99 <= 2x the floor's).
            body = provider_request(keys[:5])
            rows = {who: loaded(make_session, url, body, 32)
                    for who, url in (("sigwarden", f"{provider.url}/verify"), ("baseline", f"{base_url}/verify"))}
            for who, (rps, p99) in rows.items():
                print(f"32 connections x 5 keys {who:>9}: {rps:8.1f} req/s, p99 {p99:7.2f} ms")
            print(f"32 connections x 5 keys     ratio: req/s {rows['baseline'][0] / rows['sigwarden'][0]:.2f} "
                  f"(baseline/sigwarden), p99 {rows['sigwarden'][1] / rows['baseline'][1]:.2f} (sigwarden/baseline)")
        finally:
            baseline.terminate()
            baseline.wait(timeout=15)
            provider.stop()


if __name__ == "__main__":
    main()
