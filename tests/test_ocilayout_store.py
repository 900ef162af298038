"""The OCI layout store on real vector layouts and on layouts it must refuse."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from provider.config import VerificationConfig
from provider.errors import ItemError
from provider.reference import parse_reference
from provider.stores.base import ArtifactError, Descriptor
from provider.stores.ocilayout import OCILayoutStore
from tests.helpers import VECTORS
from tests.vectors import connaisseur_layout

ROOT = Path(__file__).resolve().parents[1]
NOTATION_DIGEST = "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0"


def store(root: Path) -> OCILayoutStore:
    return OCILayoutStore(root, VerificationConfig())


def test_serves_the_notation_cli_layout(tmp_path: Path) -> None:
    shutil.copytree(VECTORS / "notation/oci-layout", tmp_path / "docker.io/library/alpine")
    image = store(tmp_path).resolve(parse_reference("alpine:v2"), time.monotonic() + 5)
    assert image.digest == NOTATION_DIGEST and image.size == 481
    assert image.media_type == "application/vnd.oci.image.manifest.v1+json"
    by_digest = store(tmp_path).resolve(parse_reference(f"alpine@{NOTATION_DIGEST}"), time.monotonic() + 5)
    assert by_digest.manifest == image.manifest


def test_serves_connaisseur_cosign_tags(tmp_path: Path) -> None:
    digests = connaisseur_layout(tmp_path / "registry.example", "testimage")
    layout = store(tmp_path)
    image = layout.resolve(parse_reference("registry.example/testimage:multi-cosigned-alice-bob-charlie"),
                           time.monotonic() + 5)
    assert image.digest == digests["multi-cosigned-alice-bob-charlie"]
    (artifact,) = layout.discover(image, time.monotonic() + 5)
    assert artifact.source == "cosign-tag" and len(artifact.manifest["layers"]) == 3
    unsigned = layout.resolve(parse_reference("registry.example/testimage:co-unsigned"), time.monotonic() + 5)
    assert layout.discover(unsigned, time.monotonic() + 5) == []


def test_blob_reads_check_digest_size_and_path(tmp_path: Path) -> None:
    shutil.copytree(VECTORS / "notation/oci-layout", tmp_path / "docker.io/library/alpine")
    layout = store(tmp_path)
    ref = parse_reference("alpine:v2")
    config = "sha256:572996c3caeacea40b947911a9dda21516c082b5a64af30048a02a6f5eb956d4"
    size = (tmp_path / "docker.io/library/alpine/blobs/sha256" / config.split(":")[1]).stat().st_size
    assert layout.fetch_blob(ref, Descriptor("", config, size), time.monotonic() + 5)
    with pytest.raises(ArtifactError, match="descriptor says"):
        layout.fetch_blob(ref, Descriptor("", config, size + 1), time.monotonic() + 5)
    with pytest.raises(ArtifactError, match="not found"):
        layout.fetch_blob(ref, Descriptor("", "sha256:" + "0" * 64, 1), time.monotonic() + 5)
    with pytest.raises(ArtifactError, match="64 lowercase hex"):
        layout.fetch_blob(ref, Descriptor("", "sha256:../../../../etc/passwd", 1), time.monotonic() + 5)
    with pytest.raises(ItemError, match=r"no OCI layout for docker\.io/library/busybox"):
        layout.resolve(parse_reference("busybox"), time.monotonic() + 5)


def test_a_single_layout_serves_every_matched_repository_from_its_root(tmp_path: Path) -> None:
    shutil.copytree(VECTORS / "notation/oci-layout", tmp_path / "layout")
    single = OCILayoutStore(tmp_path / "layout", VerificationConfig(), single=True)
    for name in ("alpine:v2", "release.example/any/name:v2"):
        assert single.resolve(parse_reference(name), time.monotonic() + 5).digest == NOTATION_DIGEST
    # Without singleLayout the same root is read per repository, so nothing is found there.
    with pytest.raises(ItemError, match=r"no OCI layout for docker\.io/library/alpine"):
        store(tmp_path / "layout").resolve(parse_reference("alpine:v2"), time.monotonic() + 5)


def test_single_layout_needs_a_layout_at_its_path(tmp_path: Path) -> None:
    from provider.config import ConfigError, build_config
    from tests.helpers import write_yaml

    (tmp_path / "empty").mkdir()
    data = {"stores": [{"type": "oci-layout", "path": str(tmp_path / "empty"), "singleLayout": True,
                        "match": ["release.example/app"]}],
            "authorities": [{"name": "a", "cosign": {"publicKeys": [str(ROOT / "deploy/release/release.pub")]}}]}
    with pytest.raises(ConfigError, match=r"stores\[0\]\.path.*singleLayout: .* is not an OCI image layout"):
        build_config(data, write_yaml(tmp_path / "config.yaml", data))
