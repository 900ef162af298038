"""Three provider processes on one redis-server and one docker-registry, 100 cosign-signed images.

Prints the registry requests (from the registry's access log) and wall times when:
- one replica verifies every image alone (the baseline);
- three replicas with the shared cache verify every image one after the other (target: the registry sees what
  it saw for one replica; the second and third take warm-path time) and all at once;
- the same with Redis stopped (each replica falls back to verifying itself; answers stay correct).
"""

from __future__ import annotations

import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from provider.devkit import cosign
from provider.devkit.layout import LayoutWriter
from provider.devkit.process import ProviderProcess
from tests.benchmarks.replicas import settled_requests, start_replica
from tests.helpers import ProviderPKI, provider_request
from tests.redisserver import RedisServer
from tests.registry import RegistryServer

IMAGES = 100
BATCH = 10
KEY = ec.generate_private_key(ec.SECP256R1())


def publish(root: Path, registry: RegistryServer, prefix: str) -> list[str]:
    references = []
    for i in range(IMAGES):
        repository = f"{prefix}/app{i}"
        writer = LayoutWriter(root / "staging" / f"{prefix}-{i}", "repo")
        digest = writer.add_image("v1", f"{prefix} {i}".encode())["digest"]
        cosign.sign_image(writer, digest, f"{registry.host}/{repository}", KEY)
        registry.push_layout(writer.path, repository)
        references.append(f"{registry.host}/{repository}@{digest}")
    return references


def verify_all(provider: ProviderProcess, pki: ProviderPKI, references: list[str]) -> tuple[float, int]:
    """Wall time to verify every reference in batches, and how many came back verified."""
    session = requests.Session()
    session.trust_env = False
    session.cert, session.verify = pki.client_pair, pki.path("ca.crt")
    started = time.perf_counter()
    verified = 0
    for i in range(0, len(references), BATCH):
        body = session.post(f"{provider.url}/verify", json=provider_request(references[i:i + BATCH]),
                            timeout=120).json()["response"]
        verified += sum(1 for item in body["items"] if item.get("value", {}).get("verified"))
    return time.perf_counter() - started, verified


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki = ProviderPKI.create(root / "pki")
        (root / "cosign.pub").write_bytes(cosign.public_pem(KEY))
        (root / "hmac.key").write_text("b" * 64)
        registry = RegistryServer(root / "registry")
        redis_server = RedisServer(root / "redis")
        providers: list[ProviderProcess] = []
        try:
            sets = {name: publish(root, registry, name) for name in ("alone", "sequential", "together", "down")}
            alone = start_replica(root, pki, registry, "", "config-0", request_deadline="30s")
            providers.append(alone)
            before = settled_requests(registry)
            seconds, ok = verify_all(alone, pki, sets["alone"])
            one_replica = settled_requests(registry) - before
            print(f"{IMAGES} signed images, batches of {BATCH} keys; registry requests and wall time")
            print(f"{'case':<34} {'registry req':>12} {'ratio':>6} {'seconds':>8} {'verified':>8}")
            print(f"{'one replica, no shared cache':<34} {one_replica:>12} {1.0:>6.2f} {seconds:>8.2f} {ok:>8}")

            replicas = [start_replica(root, pki, registry, redis_server.url, f"config-{i + 1}", request_deadline="30s")
                        for i in range(3)]
            providers += replicas
            before = settled_requests(registry)
            for i, replica in enumerate(replicas):
                seconds, ok = verify_all(replica, pki, sets["sequential"])
                print(f"{f'3 replicas, Redis: replica {i + 1}':<34} {'':>12} {'':>6} {seconds:>8.2f} {ok:>8}")
            total = settled_requests(registry) - before
            print(f"{'3 replicas one after another':<34} {total:>12} {total / one_replica:>6.2f}")

            before = settled_requests(registry)
            with ThreadPoolExecutor(3) as pool:
                runs = list(pool.map(lambda p: verify_all(p, pki, sets["together"]), replicas))
            total = settled_requests(registry) - before
            print(f"{'3 replicas at once':<34} {total:>12} {total / one_replica:>6.2f} "
                  f"{max(s for s, _ in runs):>8.2f} {min(v for _, v in runs):>8}")

            redis_server.stop()
            before = settled_requests(registry)
            runs = [verify_all(replica, pki, sets["down"]) for replica in replicas]
            total = settled_requests(registry) - before
            print(f"{'3 replicas, Redis stopped':<34} {total:>12} {total / one_replica:>6.2f} "
                  f"{sum(s for s, _ in runs):>8.2f} {min(v for _, v in runs):>8}")
        finally:
            for provider in providers:
                provider.stop()
            redis_server.stop()
            registry.stop()


if __name__ == "__main__":
    main()
