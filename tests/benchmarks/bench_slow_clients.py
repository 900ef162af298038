"""Warm /verify latency while 1,000 idle connections and 200 ClientHello dribblers are held open.

One provider, one mTLS client; the same requests are timed first on an unloaded server (the baseline) and
then with the crowd connected, in the same run. Prints p50/p99/max for fresh and kept-alive connections and
the loaded/unloaded ratios. Target: loaded p99 under 1 s on a 2-core machine.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from provider.devkit.layout import LayoutWriter
from provider.devkit.process import ProviderProcess
from tests.helpers import ProviderPKI, free_port, metric_value, provider_request, write_yaml
from tests.slowclients import crowd

REG = "bench.example"
KEY = f"{REG}/team/app:v1"
ROUNDS = 100
IDLE, DRIBBLERS = 1000, 200


def session_for(pki: ProviderPKI) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.cert, session.verify = pki.client_pair, pki.path("ca.crt")
    return session


def timed(provider: ProviderProcess, pki: ProviderPKI, fresh: bool) -> list[float]:
    kept = session_for(pki)
    times = []
    for _ in range(ROUNDS):
        session = session_for(pki) if fresh else kept
        started = time.perf_counter()
        response = session.post(f"{provider.url}/verify", json=provider_request([KEY]), timeout=30)
        times.append(time.perf_counter() - started)
        assert response.json()["response"]["items"][0]["value"]["cached"] is True, response.text[:200]
    return times


def worker_rss_kib(provider: ProviderProcess) -> int:
    """Resident memory of gunicorn's worker (the master's child), which holds every connection."""
    master = provider.process.pid
    child = Path(f"/proc/{master}/task/{master}/children").read_text().split()[0]
    status = Path(f"/proc/{child}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


def summary(times: list[float]) -> tuple[float, float, float]:
    return (statistics.median(times) * 1000, statistics.quantiles(times, n=100)[98] * 1000, max(times) * 1000)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki = ProviderPKI.create(root / "pki")
        LayoutWriter(root / "layouts" / REG, "team/app").add_image("v1", b"bench")
        port, metrics_port = free_port(), free_port()
        config = write_yaml(root / "config.yaml", {
            "server": {"listen": f"127.0.0.1:{port}", "metricsListen": f"127.0.0.1:{metrics_port}",
                       "handshakeTimeout": "10m", "headerTimeout": "10m",
                       "tls": {"cert": pki.path("server.crt"), "key": pki.path("server.key"),
                               "clientCA": pki.path("client-ca.crt")}},
            "stores": [{"type": "oci-layout", "path": str(root / "layouts"), "match": ["*"]}]})
        provider = ProviderProcess(config, port, metrics_port)
        try:
            provider.wait_ready()
            session_for(pki).post(f"{provider.url}/verify", json=provider_request([KEY]), timeout=30)
            rows = {}
            for kind, fresh in (("kept-alive", False), ("fresh", True)):
                rows[("unloaded", kind)] = summary(timed(provider, pki, fresh))
            rss_before = worker_rss_kib(provider)
            with crowd(port, IDLE, DRIBBLERS) as held:
                while metric_value(requests.get(f"{provider.metrics_url}/metrics", timeout=10).text,
                                   "sigwarden_connections", {"phase": "handshake"}) < IDLE + DRIBBLERS:
                    time.sleep(0.1)
                for kind, fresh in (("kept-alive", False), ("fresh", True)):
                    rows[("loaded", kind)] = summary(timed(provider, pki, fresh))
                still_open = held.still_open()
                rss_loaded = worker_rss_kib(provider)
            print(f"held open by the server during the loaded run: {still_open} of {IDLE + DRIBBLERS} "
                  f"({IDLE} idle, {DRIBBLERS} dribbling a ClientHello)")
            per_connection = (rss_loaded - rss_before) / (IDLE + DRIBBLERS)
            print(f"worker RSS: {rss_before / 1024:.1f} MiB unloaded, {rss_loaded / 1024:.1f} MiB loaded, "
                  f"{per_connection:.1f} KiB per held connection (x 4096 = {per_connection * 4096 / 1024:.0f} MiB)")
            print(f"{'load':>9} {'connection':>11} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
            for (load, kind), (p50, p99, peak) in rows.items():
                print(f"{load:>9} {kind:>11} {p50:>8.2f} {p99:>8.2f} {peak:>8.2f}")
            for kind in ("kept-alive", "fresh"):
                base, loaded = rows[("unloaded", kind)], rows[("loaded", kind)]
                print(f"{'ratio':>9} {kind:>11} {loaded[0] / base[0]:>8.2f} {loaded[1] / base[1]:>8.2f} "
                      f"{loaded[2] / base[2]:>8.2f}   (loaded/unloaded)")
        finally:
            provider.stop()


if __name__ == "__main__":
    main()
