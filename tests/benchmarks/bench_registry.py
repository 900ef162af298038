"""Cold verification path against a real docker-registry: registry round trips and wall time for N images,
against the floors of tests/benchmarks/cold.py with the same concurrency (`floor`: manifest, signature
manifest, payload; `floor+tags`: also the `.att` and referrers tags discovery asks). Each engine run starts
with empty caches."""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from provider.config import build_config
from provider.devkit import cosign
from provider.engine import Engine
from tests.benchmarks.cold import fetch_floor, publish_signed
from tests.helpers import write_yaml
from tests.registry import RegistryServer

SIZES = (10, 100)
CONCURRENCY = 32
LATENCY = 0.010  # seconds added to every request by the delay proxy (a registry 10 ms away)


class DelayProxy:
    """A loopback TCP proxy that holds each request for LATENCY before forwarding it: a distant registry."""

    def __init__(self, target_port: int) -> None:
        import socket
        import threading

        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.target_port = target_port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pipe, args=(client, upstream, LATENCY), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, 0.0), daemon=True).start()

    @staticmethod
    def _pipe(source: object, sink: object, delay: float) -> None:
        try:
            while data := source.recv(65536):  # type: ignore[attr-defined]
                if delay:
                    time.sleep(delay)
                sink.sendall(data)  # type: ignore[attr-defined]
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.close()  # type: ignore[attr-defined]
def sigwarden(tmp: Path, host: str, keys: list[str]) -> tuple[float, int, int]:
    data = {"server": {"requestDeadline": "60s"}, "verification": {"concurrency": CONCURRENCY},
            "stores": [{"type": "registry", "match": ["*"], "insecure": [host]}],
            "authorities": [{"name": "bench", "cosign": {"publicKeys": ["cosign.pub"]}}]}
    engine = Engine(build_config(data, write_yaml(tmp / "config.yaml", data)))
    started = time.perf_counter()
    items = engine.verify(keys, "bench")
    elapsed = time.perf_counter() - started
    trips = sum(s.value for m in engine.metrics.registry_requests.collect() for s in m.samples
                if s.name.endswith("_total"))
    engine.shutdown()
    return elapsed, int(trips), sum(1 for i in items if i.value and i.value["verified"])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        registry = RegistryServer(tmp / "registry")
        key = ec.generate_private_key(ec.SECP256R1())
        (tmp / "cosign.pub").write_bytes(cosign.public_pem(key))
        try:
            print(f"pushing {max(SIZES)} signed images …", file=sys.stderr)
            publish_signed(tmp, registry, key, max(SIZES), prefix="bench")
            proxy = DelayProxy(registry.port)
            for label, host in (("loopback", registry.host), (f"+{LATENCY * 1000:.0f}ms", f"127.0.0.1:{proxy.port}")):
                print(f"\nregistry {label}")
                print(f"{'N':>4} {'who':>10} {'wall s':>8} {'trips':>6} {'trips/img':>9} {'verified':>8}")
                for n in SIZES:
                    repos = [(f"bench/img{i}", "v1") for i in range(n)]
                    floors = {name: (fetch_floor(registry, repos, CONCURRENCY, tags=tags, host=host), n * trips)
                              for name, tags, trips in (("floor", False, 3), ("floor+tags", True, 5))}
                    wall, trips, verified = sigwarden(tmp, host, [f"{host}/{r}:{t}" for r, t in repos])
                    for name, (base_wall, base_trips) in floors.items():
                        print(f"{n:>4} {name:>10} {base_wall:>8.3f} {base_trips:>6} {base_trips / n:>9.1f} {'-':>8}")
                    print(f"{n:>4} {'sigwarden':>10} {wall:>8.3f} {trips:>6} {trips / n:>9.1f} {verified:>8}")
                    for name, (base_wall, base_trips) in floors.items():
                        print(f"{n:>4} {'/' + name:>10} {wall / base_wall:>8.2f} {trips / base_trips:>6.2f}")
        finally:
            registry.stop()


if __name__ == "__main__":
    main()
