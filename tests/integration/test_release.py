"""`make release`'s layout checked by sigwarden itself: the shipped release authority (deploy/release/) verifies
the image, wheel, sdist and chart signatures and their SBOM and provenance attestations with `sigwarden verify`,
and K8sImageContent can require sigwarden's own SBOM. The artifacts are built here from the committed tree with
the release code; the image layer holds the wheel only, since the tests run offline (`make release` installs the
whole runtime lock into it)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provider.config import build_config
from provider.devkit.layout import REF_NAME
from provider.engine import Engine
from provider.policy.external import EngineExternalData
from provider.policy.gatekeeper import PolicySet
from provider.policy.suite import admit
from scripts.release import build, chart, dists, imagefs, layout, locks
from tests.helpers import write_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "constraints" / "templates"
SHIPPED = ROOT / "deploy" / "release"
VERSION = locks.read_pyproject(ROOT)["project"]["version"]
CHART_VERSION = yaml.safe_load((ROOT / "helm" / "sigwarden" / "Chart.yaml").read_text())["version"]
IMAGE, WHEEL, SDIST, CHART = (f"{layout.REPOSITORY}:{tag}" for tag in (
    VERSION, f"{VERSION}-wheel", f"{VERSION}-sdist", f"chart-{CHART_VERSION}"))


@dataclass
class Built:
    tree: Path
    commit: str
    epoch: int
    wheel: Path
    sdist: Path
    layer: bytes
    lib: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("release")
    commit = dists.source_commit(ROOT)
    epoch = dists.commit_epoch(ROOT, commit)
    tree = dists.export_tree(ROOT, commit, tmp / "src")
    wheel, sdist = dists.build_once(tree, tmp / "dist", epoch)
    lib = imagefs.install_wheel(tmp / "image", wheel)
    return Built(tree, commit, epoch, wheel, sdist, imagefs.layer(tmp / "image", epoch), lib)


def assemble(built: Built, out: Path, key_pem: bytes | None = None) -> dict[str, str]:
    return build.assemble(out, built.tree, built.commit, built.epoch, built.wheel, built.sdist, built.layer,
                          built.lib, key_pem or (ROOT / build.TEST_KEY).read_bytes())


def shipped_config(tmp: Path, layout_dir: Path) -> Path:
    """deploy/release/verify.yaml as shipped, pointed at `layout_dir` instead of dist/release."""
    data = yaml.safe_load((SHIPPED / "verify.yaml").read_text())
    data["stores"][0]["path"] = str(layout_dir)
    for key in data["authorities"][0]["cosign"]["publicKeys"]:
        key["file"] = str(SHIPPED / key["file"])
    return write_yaml(tmp / "verify.yaml", data)


def verify(config: Path, *images: str) -> tuple[int, list[dict[str, Any]]]:
    done = subprocess.run([sys.executable, "-m", "provider", "verify", "--config", str(config), "-o", "json",
                           *images], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.fixture(scope="module")
def release(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    assemble(built, out)
    return out


def test_sigwarden_verifies_its_own_release_with_the_shipped_authority(release: Path, tmp_path: Path) -> None:
    code, items = verify(shipped_config(tmp_path, release / "release"), IMAGE, WHEEL, SDIST, CHART)
    assert code == 0, items
    for item in items:
        facts = item["value"]
        assert facts["verified"] and facts["authorities"] == ["sigwarden-release"], item
        attested = {a["predicateType"]: a["verified"] for a in facts["attestations"]}
        expected = {"https://slsa.dev/provenance/v1": True}
        if item["key"] in (IMAGE, WHEEL):
            expected["https://cyclonedx.org/bom"] = True
        assert attested == expected, item["key"]
    image_sbom = items[0]["value"]["content"]["sboms"][0]
    assert image_sbom["trusted"] and image_sbom["format"] == "CycloneDX 1.6"
    own = {"name": "sigwarden", "version": VERSION, "purl": f"pkg:pypi/sigwarden@{VERSION}"}
    assert own in image_sbom["components"]
    assert "Apache-2.0" in image_sbom["licenses"]


def test_a_release_signed_with_another_key_is_not_verified(built: Built, tmp_path: Path) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assemble(built, tmp_path, stranger)
    code, items = verify(shipped_config(tmp_path, tmp_path / "release"), IMAGE, WHEEL)
    assert code == 1
    assert [item["value"]["verified"] for item in items] == [False, False]
    assert all(not a["verified"] for item in items for a in item["value"]["attestations"])


def test_everything_but_the_signatures_is_the_same_from_one_commit(built: Built, release: Path,
                                                                    tmp_path: Path) -> None:
    again = assemble(built, tmp_path)
    index = json.loads((release / "release" / "index.json").read_text())
    first = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"] for m in index["manifests"]}
    assert {tag: first[tag] for tag in again} == again
    for name in ("image.cdx.json", f"{built.wheel.name}.cdx.json", f"sigwarden-{CHART_VERSION}.tgz",
                 "provenance.intoto.json"):
        assert (tmp_path / name).read_bytes() == (release / name).read_bytes(), name


def test_the_wheel_and_sdist_build_byte_identical_twice(tmp_path: Path) -> None:
    commit = dists.source_commit(ROOT)
    wheel, sdist = dists.build_twice(ROOT, commit, dists.commit_epoch(ROOT, commit), tmp_path)
    with tarfile.open(sdist) as tar:
        members = tar.getmembers()
    assert {m.mtime for m in members} == {dists.commit_epoch(ROOT, commit)} and {m.uid for m in members} == {0}
    assert wheel.name == f"sigwarden-{VERSION}-py3-none-any.whl"


def test_the_chart_is_laid_out_as_helm_pushes_it(release: Path) -> None:
    blobs = release / "release" / "blobs" / "sha256"
    index = json.loads((release / "release" / "index.json").read_text())
    (entry,) = [m for m in index["manifests"] if (m.get("annotations") or {}).get(REF_NAME) == f"chart-{CHART_VERSION}"]
    manifest = json.loads((blobs / entry["digest"].split(":")[1]).read_text())
    # helm.sh/helm pkg/registry/constants.go (ConfigMediaType, ChartLayerMediaType) and util.go
    # (generateChartOCIAnnotations: title, version, description, created).
    assert manifest["config"]["mediaType"] == chart.CONFIG_MEDIA_TYPE
    assert manifest["annotations"]["org.opencontainers.image.title"] == "sigwarden"
    assert manifest["annotations"]["org.opencontainers.image.version"] == CHART_VERSION
    assert manifest["annotations"]["org.opencontainers.image.description"].startswith("Image signature")
    assert [layer["mediaType"] for layer in manifest["layers"]] == [chart.CHART_LAYER_MEDIA_TYPE]
    config = json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_bytes())
    assert (config["name"], config["version"]) == ("sigwarden", CHART_VERSION)
    with tarfile.open(blobs / manifest["layers"][0]["digest"].split(":")[1]) as tar:
        assert "sigwarden/Chart.yaml" in tar.getnames() and "sigwarden/values.schema.json" in tar.getnames()


def test_the_provenance_names_the_commit_and_the_locks(built: Built, release: Path) -> None:
    statement = json.loads((release / "provenance.intoto.json").read_text())
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    materials = {m["name"]: m["digest"] for m in statement["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert materials["source"] == {"gitCommit": built.commit}
    assert set(materials) >= {"requirements/extras/cloud.txt", "requirements/build.txt"}
    names = {s["name"] for s in statement["subject"]}
    assert {built.wheel.name, built.sdist.name, f"sigwarden-{CHART_VERSION}.tgz", IMAGE, CHART} <= names


def content_constraint(tmp: Path, parameters: dict[str, Any]) -> Path:
    return write_yaml(tmp / "content.yaml", {"apiVersion": "constraints.gatekeeper.sh/v1beta1",
                                             "kind": "K8sImageContent", "metadata": {"name": "own-sbom"},
                                             "spec": {"parameters": parameters}})


def denied(engine: Engine, constraint: Path, image: str) -> list[str]:
    checks = PolicySet.from_paths([TEMPLATES, constraint], EngineExternalData(engine))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sigwarden", "namespace": "gatekeeper-system"},
           "spec": {"containers": [{"name": "provider", "image": image}]}}
    return sorted(v.message for v in admit(checks, pod).denied)


def test_k8simagecontent_can_require_sigwardens_own_sbom(release: Path, tmp_path: Path) -> None:
    config = shipped_config(tmp_path, release / "release")
    engine = Engine(build_config(yaml.safe_load(config.read_text()), config))
    try:
        required = content_constraint(tmp_path, {"requireSbom": True, "sbomAuthorities": ["sigwarden-release"],
                                                 "disallowedLicenses": ["AGPL-3.0-only"]})
        assert denied(engine, required, IMAGE) == []
        # The chart carries provenance but no SBOM: requiring one denies it.
        (message,) = denied(engine, required, CHART)
        assert "has no signed SBOM" in message, message
        # The SBOM is read, not just present: sigwarden's own licence can be refused.
        (message,) = denied(engine, content_constraint(tmp_path, {"requireSbom": True,
                                                                   "sbomAuthorities": ["sigwarden-release"],
                                                                   "disallowedLicenses": ["Apache-2.0"]}), IMAGE)
        assert "contains disallowed licence Apache-2.0" in message, message
    finally:
        engine.shutdown()


def test_the_sboms_are_valid_cyclonedx(built: Built, release: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    validator = JsonStrictValidator(SchemaVersion.V1_6)
    for name in ("image.cdx.json", f"{built.wheel.name}.cdx.json"):
        text = (release / name).read_text()
        assert validator.validate_str(text) is None, name
    image = json.loads((release / "image.cdx.json").read_text())
    base = imagefs.BaseImage.from_dockerfile(ROOT / "Dockerfile")
    containers = {c["name"]: c for c in image["components"] if c["type"] == "container"}
    assert containers[base.name]["hashes"] == [{"alg": "SHA-256", "content": base.digest.split(":")[1]}]
    wheel = json.loads((release / f"{built.wheel.name}.cdx.json").read_text())
    wheel_hash = hashlib.sha256(built.wheel.read_bytes()).hexdigest()
    assert wheel["metadata"]["component"]["hashes"][0]["content"] == wheel_hash


def test_security_md_verifies_exactly_what_make_release_writes() -> None:
    text = (ROOT / "SECURITY.md").read_text()
    named = set(re.findall(re.escape(layout.REPOSITORY) + r":[\w.-]+", text))
    assert named == {IMAGE, WHEEL, SDIST, CHART}
    assert f"--config {build.VERIFY_CONFIG}" in text and (ROOT / build.VERIFY_CONFIG).is_file()
    assert f"oci:dist/release:{VERSION}-wheel" in text and f"sigwarden-{VERSION}-py3-none-any.whl" in text


def test_the_image_layer_is_the_same_from_two_installs(built: Built, tmp_path: Path) -> None:
    first = imagefs.install_wheel(tmp_path / "a", built.wheel)
    imagefs.install_wheel(tmp_path / "b", built.wheel)
    # Different file times and permissions on the builder do not reach the layer.
    for path in first.rglob("*.py"):
        os.utime(path, (1, 1))
        path.chmod(0o600)
    layers = [imagefs.layer(tmp_path / name, built.epoch) for name in ("a", "b")]
    assert layers[0] == layers[1]
    with tarfile.open(fileobj=io.BytesIO(layers[0])) as tar:
        members = tar.getmembers()
    assert {m.mtime for m in members} == {built.epoch} and {(m.uid, m.gid) for m in members} == {(0, 0)}
    assert all(m.name.startswith("opt/sigwarden/lib") or m.name in ("opt", "opt/sigwarden") for m in members)
    assert not any("__pycache__" in m.name or m.name.endswith("direct_url.json") for m in members)
    assert not any(m.name.startswith("opt/sigwarden/lib/bin") for m in members)


def test_a_release_refuses_uncommitted_changes(tmp_path: Path) -> None:
    for command in (["init", "-q"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty",
                                      "-m", "root"]):
        subprocess.run(["git", *command], cwd=tmp_path, check=True)
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    subprocess.run(["git", "add", "pyproject.toml"], cwd=tmp_path, check=True)
    assert dists.modified_files(tmp_path) == ["pyproject.toml"]
    (tmp_path / "untracked.txt").write_text("not part of any commit")
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "p"], cwd=tmp_path,
                   check=True)
    assert dists.modified_files(tmp_path) == []  # untracked files never reach an export of the commit


def test_the_dockerfile_and_the_release_build_the_same_image() -> None:
    """The layer `make release` builds stands for the Dockerfile's: same install commands, same settings."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    target = f"--target /{imagefs.PREFIX}"
    assert f"pip install --require-hashes --no-compile {target} -r requirements/extras/cloud.txt" in dockerfile
    assert f"pip install --no-index --find-links /dist --no-deps --no-compile {target} sigwarden" in dockerfile
    assert f"rm -rf /{imagefs.PREFIX}/bin" in dockerfile
    assert f"USER {imagefs.USER}\n" in dockerfile
    assert f"ENTRYPOINT {json.dumps(imagefs.ENTRYPOINT)}\n" in dockerfile
    assert f"CMD {json.dumps(imagefs.CMD)}\n" in dockerfile
    env = " ".join(line.strip(" \\") for line in dockerfile.split("FROM ${BASE}\n")[-1].splitlines()
                   if line.startswith(("ENV", "    ")))
    assert sorted(env.removeprefix("ENV ").split()) == sorted(imagefs.ENV)
