"""`make release`: build, check reproducibility, describe, sign and lay everything into dist/release/.

Steps: refuse a tree with uncommitted changes or locks that disagree with pyproject.toml; build the wheel and
sdist twice from fresh exports of HEAD (SOURCE_DATE_EPOCH = the commit time) and compare; install the runtime
lock and the wheel into the image's tree twice and compare the layers (no container engine is needed: the base
image is named, not rebuilt); write CycloneDX SBOMs and SLSA provenance; sign into the OCI layout.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key

from scripts.release import chart, dists, imagefs, layout, locks, provenance, sbom

ROOT = locks.ROOT
TEST_KEY = "deploy/release/TEST-ONLY-release-key.pem"
VERIFY_CONFIG = "deploy/release/verify.yaml"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_tree(scratch: Path, wheel: Path, runtime_lock: Path, epoch: int) -> tuple[bytes, Path]:
    """The image's own layer, built twice from the lock and the wheel: (layer bytes, site directory)."""
    layers, libs = [], []
    for attempt in ("a", "b"):
        root = scratch / f"image-{attempt}"
        libs.append(imagefs.install(root, wheel, runtime_lock))
        layers.append(imagefs.layer(root, epoch))
    if layers[0] != layers[1]:
        raise dists.NotReproducible("the image layer: two installs of the lock and the wheel differ")
    return layers[0], libs[0]


def assemble(out: Path, tree: Path, commit: str, epoch: int, wheel: Path, sdist: Path, layer: bytes, lib: Path,
             key_pem: bytes) -> dict[str, str]:
    """SBOMs, provenance, chart and the signed layout at `out/release`, from artifacts already built."""
    base = imagefs.BaseImage.from_dockerfile(tree / "Dockerfile")
    layer_digest = _digest(layer)
    config = imagefs.config(layer, provenance.iso(epoch), imagefs.architecture())
    wheel_sbom = sbom.wheel_sbom(wheel, lib, epoch)
    image_sbom = sbom.image_sbom(wheel, lib, base, layer_digest, epoch)
    packaged = chart.package(tree / "helm" / "sigwarden", epoch)
    predicate = provenance.predicate(tree, commit, epoch, base)
    release = layout.Release(version=wheel.name.split("-")[1], commit=commit, epoch=epoch, wheel=wheel,
                             sdist=sdist, chart=packaged, layer=layer, image_config=config, base=base,
                             wheel_sbom=wheel_sbom, image_sbom=image_sbom, provenance=predicate)
    key = load_pem_private_key(key_pem, None)
    digests = layout.write(out / "release", release, key)
    (out / packaged.filename).write_bytes(packaged.archive)
    (out / f"{wheel.name}.cdx.json").write_bytes(wheel_sbom)
    (out / "image.cdx.json").write_bytes(image_sbom)
    subjects = {wheel.name: _digest(wheel.read_bytes()), sdist.name: _digest(sdist.read_bytes()),
                packaged.filename: _digest(packaged.archive),
                **{f"{layout.REPOSITORY}:{tag}": digest for tag, digest in digests.items()}}
    (out / "provenance.intoto.json").write_text(json.dumps(provenance.statement(subjects, predicate), indent=1))
    return digests


def release(out_dir: str, key_path: str) -> int:
    modified = dists.modified_files(ROOT)
    if modified:
        print(f"release: uncommitted changes to {', '.join(modified[:5])}: a release describes a commit",
              file=sys.stderr)
        return 2
    disagreements = locks.problems(ROOT)
    if disagreements:
        print("release: " + "\n".join(disagreements), file=sys.stderr)
        return 2
    commit = dists.source_commit(ROOT)
    epoch = dists.commit_epoch(ROOT, commit)
    out = ROOT / out_dir
    for old in [*out.glob("sigwarden-*"), *out.glob("*.cdx.json"), out / "provenance.intoto.json"]:
        old.unlink(missing_ok=True)
    wheel, sdist = dists.build_twice(ROOT, commit, epoch, out)
    print(f"built {wheel.name} and {sdist.name} twice from {commit[:12]}: byte-identical")
    with tempfile.TemporaryDirectory(prefix="sigwarden-release-") as scratch:
        tree = dists.export_tree(ROOT, commit, Path(scratch) / "src")
        layer, lib = image_tree(Path(scratch), wheel, tree / locks.IMAGE_LOCK, epoch)
        print(f"built the image layer twice from the runtime lock: byte-identical ({_digest(layer)})")
        key_pem = Path(key_path or ROOT / TEST_KEY).read_bytes()
        digests = assemble(out, tree, commit, epoch, wheel, sdist, layer, lib, key_pem)
    for tag, digest in digests.items():
        print(f"signed {layout.REPOSITORY}:{tag} {digest}")
    if not key_path:
        print(f"signed with the TEST key {TEST_KEY}: not a release key (see SECURITY.md)")
    print(f"verify: sigwarden verify --config {VERIFY_CONFIG} " + " ".join(f"{layout.REPOSITORY}:{t}" for t in digests))
    return 0
