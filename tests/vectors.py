"""Arrange the vendored signature vectors (tests/vectors/) into OCI layouts."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from provider.devkit.cosign import attach
from provider.devkit.layout import LayoutWriter
from provider.digests import compute_digest
from provider.verifiers.cosign import SIMPLESIGNING_LAYER
from tests.helpers import VECTORS

CONTAINERS_IMAGE = VECTORS / "containers-image"
CONNAISSEUR = VECTORS / "cosign-connaisseur" / "securesystemsengineering" / "testimage"
SIGSTORE_JSON_MAGIC = b"\x00sigstore-json\n"


def containers_image_vector(root: Path, name: str, repository: str) -> str:
    """Put `containers-image/<name>` into a layout as `<repository>:v1` with its cosign signature; return digest."""
    vector = CONTAINERS_IMAGE / name
    writer = LayoutWriter(root, repository)
    manifest = (vector / "manifest.json").read_bytes()
    digest = writer.add_manifest(manifest, "v1", json.loads(manifest).get("mediaType", ""))["digest"]
    layers = []
    for signature_file in sorted(vector.glob("signature-*")):
        data = signature_file.read_bytes()
        assert data.startswith(SIGSTORE_JSON_MAGIC)
        layer = json.loads(data[len(SIGSTORE_JSON_MAGIC):])
        descriptor = writer.add_blob(base64.b64decode(layer["payload"]), layer["mimeType"])
        descriptor["annotations"] = layer["annotations"]
        layers.append(descriptor)
    attach(writer, digest, layers)
    return digest


def connaisseur_layout(root: Path, repository: str) -> dict[str, str]:
    """The connaisseur registry dump as a layout; returns tag → digest of each image manifest."""
    writer = LayoutWriter(root, repository)
    digests = {}
    for path in sorted((CONNAISSEUR / "manifests").glob("*.json")):
        data = path.read_bytes()
        if path.name.startswith("sha256-"):
            tag = path.name[: -len(".json")]
            writer.add_manifest(data, tag)
        else:
            tag = path.stem
            digests[tag] = writer.add_manifest(data, tag)["digest"]
            assert digests[tag] == compute_digest(data)
    for blob in (CONNAISSEUR / "blobs").glob("sha256:*.json"):
        writer.add_blob(blob.read_bytes(), SIMPLESIGNING_LAYER)
    return digests
