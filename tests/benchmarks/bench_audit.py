"""`sigwarden audit` at scale: 10,000 objects over 1,000 distinct images (half of them signed).

Prints wall time, verifications performed, peak memory and the workloads counted for the signed-images audit,
against a baseline measured in the same run: the same objects audited with a constraint that needs no external
data (K8sDigestPinnedImages) and no image inventory, i.e. the harness, Rego and report model cost alone.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from provider import catalog
from provider.audit.memo import MemoExternalData
from provider.audit.run import audit
from provider.config import build_config
from provider.devkit import cosign
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.policy.external import EngineExternalData
from provider.policy.gatekeeper import PolicySet
from tests.helpers import write_yaml

OBJECTS, IMAGES = 10_000, 1_000
ROOT = Path(__file__).resolve().parents[2]


def build(tmp: Path) -> tuple[Path, list[dict]]:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp / "cosign.pub").write_bytes(cosign.public_pem(key))
    images = []
    for i in range(IMAGES):
        writer = LayoutWriter(tmp / "layouts/bench.example", f"app{i}")
        digest = writer.add_image("v1", f"image {i}".encode())["digest"]
        if i % 2 == 0:
            cosign.sign_image(writer, digest, f"bench.example/app{i}", key)
        images.append(f"bench.example/app{i}:v1")
    objects = [{"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": f"deploy{n}", "namespace": f"ns{n % 50}"},
                "spec": {"template": {"spec": {"containers": [{"name": "main", "image": images[n % IMAGES]}]}}}}
               for n in range(OBJECTS)]
    data = {"verification": {"concurrency": 16},
            "stores": [{"type": "oci-layout", "path": str(tmp / "layouts"), "match": ["*"]}],
            "authorities": [{"name": "bench", "cosign": {"publicKeys": [str(tmp / "cosign.pub")]}}]}
    return write_yaml(tmp / "config.yaml", data), objects


def constraint(tmp: Path, kind: str) -> Path:
    return write_yaml(tmp / f"{kind}.yaml", {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind, "metadata": {"name": kind.lower()},
        "spec": {"enforcementAction": "dryrun", "match": {"kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}]},
                 "parameters": {}}})


def run(tmp: Path, config: Path, objects: list[dict], kind: str) -> tuple[float, int, int, int, int]:
    engine = Engine(build_config(yaml.safe_load(config.read_text()), config))
    memo = MemoExternalData(EngineExternalData(engine, timeout=600))
    policies = PolicySet.from_paths([*catalog.template_files(), constraint(tmp, kind)], memo)
    tracemalloc.start()
    started = time.perf_counter()
    model = audit(policies, objects, memo, verify_images=kind == "K8sSignedImages")
    model.to_json()  # the JSON report is part of the cost
    report = model.summary()
    wall = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    engine.shutdown()
    workloads = report["workloads"]
    return wall, report["verifications"], peak, workloads["blocked"] + workloads["wouldBlock"], workloads["total"]


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        print(f"building {IMAGES} images ({IMAGES // 2} signed) and {OBJECTS} objects …", file=sys.stderr)
        config, objects = build(tmp)
        base = run(tmp, config, objects, "K8sDigestPinnedImages")
        signed = run(tmp, config, objects, "K8sSignedImages")
        print(f"{'audit':<26} {'wall s':>8} {'verifications':>14} {'peak MiB':>9} {'workloads':>10} "
              f"{'non-compliant':>14}")
        for label, (wall, verifications, peak, bad, workloads) in (("baseline (no ext. data)", base),
                                                                    ("signed images", signed)):
            print(f"{label:<26} {wall:>8.2f} {verifications:>14} {peak / 2**20:>9.1f} {workloads:>10} {bad:>14}")
        print(f"ratio signed/baseline wall: {signed[0] / base[0]:.2f}; objects/s: {OBJECTS / signed[0]:.0f}; "
              f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
