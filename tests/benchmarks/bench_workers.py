"""Throughput of warm /verify with one and with two worker processes, against the bare Flask floor run with the
same number of gunicorn workers, in one run on this machine.

Load: 32 keep-alive connections sending 5-key requests back to back (the issue's shape), the two servers in
turns (bench_server.loaded) so a shared machine's noise weighs on both alike.
Prints req/s and p99 per (workers, server), the provider/floor ratios, and how each server scales from one
worker to two. The client runs on the same machine, so on a 2-CPU machine the scaling is bounded by it too.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from provider.devkit.layout import LayoutWriter
from provider.devkit.process import ProviderProcess
from tests.benchmarks.bench_server import loaded, start_baseline, wait_port
from tests.helpers import ProviderPKI, child_pids, free_port, provider_request, write_yaml

REG = "bench.example"
MIB = 1024 * 1024
IMAGES = 100
CONNECTIONS = 32
WARM_CONNECTIONS = 64  # fresh connections asking for every key, so every worker has every key cached


def proportional_mib(pid: int) -> float:
    """The process's proportional set size (pages shared with the master or other workers counted in part)."""
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        return sum(int(line.split()[1]) for line in handle if line.startswith("Pss:")) * 1024 / MIB


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki = ProviderPKI.create(root / "pki")
        writer = LayoutWriter(root / "layouts" / REG, "team/app")
        keys = [f"{REG}/team/app:v{i}" for i in range(IMAGES)]
        for i in range(IMAGES):
            writer.add_image(f"v{i}", f"content {i}".encode())

        def make_session() -> requests.Session:
            session = requests.Session()
            session.trust_env = False
            session.cert, session.verify = pki.client_pair, pki.path("ca.crt")
            return session

        rows: dict[tuple[int, str], tuple[float, float]] = {}
        memory: dict[int, tuple[float, list[float]]] = {}
        body = provider_request(keys[:5])
        for workers in (1, 2):
            port, metrics_port, base_port = free_port(), free_port(), free_port()
            config = write_yaml(root / f"config-{workers}.yaml", {
                "server": {"listen": f"127.0.0.1:{port}", "metricsListen": f"127.0.0.1:{metrics_port}",
                           "workers": workers,
                           "tls": {"cert": pki.path("server.crt"), "key": pki.path("server.key"),
                                   "clientCA": pki.path("client-ca.crt")}},
                "stores": [{"type": "oci-layout", "path": str(root / "layouts"), "match": ["*"]}]})
            provider = ProviderProcess(config, port, metrics_port, workers=None)
            baseline = None
            try:
                provider.wait_ready()
                facts = None
                for _ in range(WARM_CONNECTIONS):
                    answer = make_session().post(f"{provider.url}/verify", json=provider_request(keys), timeout=60)
                    facts = answer.json()["response"]["items"][0]["value"]
                memory[workers] = (proportional_mib(provider.process.pid),
                                   [proportional_mib(child) for child in child_pids(provider.process.pid)])
                facts_file = root / "facts.json"
                facts_file.write_text(json.dumps(facts))
                baseline = start_baseline(pki, facts_file, base_port, workers=workers)
                base_url = f"https://127.0.0.1:{base_port}"
                wait_port(f"{base_url}/verify", make_session(), body)
                urls = {"sigwarden": f"{provider.url}/verify", "baseline": f"{base_url}/verify"}
                for who, row in loaded(make_session, urls, body, CONNECTIONS).items():
                    rows[workers, who] = row
            finally:
                if baseline is not None:
                    baseline.terminate()
                    baseline.wait(timeout=15)
                provider.stop()

        print(f"{CONNECTIONS} keep-alive connections, 5-key warm requests")
        print(f"{'workers':>7} {'who':>9} {'req/s':>9} {'p99 ms':>8}")
        for (workers, who), (rps, p99) in rows.items():
            print(f"{workers:>7} {who:>9} {rps:>9.1f} {p99:>8.2f}")
        for workers in (1, 2):
            ours, floor = rows[workers, "sigwarden"], rows[workers, "baseline"]
            print(f"{workers} worker(s): req/s ratio {floor[0] / ours[0]:.2f} (baseline/sigwarden), "
                  f"p99 ratio {ours[1] / floor[1]:.2f} (sigwarden/baseline)")
        for who in ("sigwarden", "baseline"):
            print(f"{who}: 2 workers / 1 worker req/s = {rows[2, who][0] / rows[1, who][0]:.2f}")
        for workers, (master, each) in memory.items():
            print(f"memory with {workers} worker(s), all {IMAGES} images cached: master {master:.1f} MiB PSS, workers "
                  f"{', '.join(f'{m:.1f}' for m in each)} MiB PSS, pod {master + sum(each):.1f} MiB")


if __name__ == "__main__":
    main()
