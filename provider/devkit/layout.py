"""Write OCI image layouts: small images, indexes, tags and referrers, for tests and the demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provider.digests import compute_digest
from provider.stores.base import OCI_INDEX, OCI_MANIFEST

EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"


def canonical(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


class LayoutWriter:
    """One repository's OCI image layout under `<root>/<registry>/<repository>/`."""

    def __init__(self, root: Path, name: str) -> None:
        self.path = root / name
        (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        if not (self.path / "index.json").exists():
            self._write_index({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})

    def add_blob(self, data: bytes, media_type: str = LAYER) -> dict[str, Any]:
        digest = compute_digest(data)
        (self.path / "blobs" / "sha256" / digest.split(":", 1)[1]).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def add_manifest(self, manifest: dict[str, Any] | bytes, tag: str | None = None,
                     media_type: str = OCI_MANIFEST) -> dict[str, Any]:
        data = manifest if isinstance(manifest, bytes) else canonical(manifest)
        descriptor = self.add_blob(data, media_type)
        parsed = json.loads(data)
        if parsed.get("artifactType"):
            descriptor["artifactType"] = parsed["artifactType"]
        self._index_entry(descriptor, tag)
        return descriptor

    def add_image(self, tag: str | None, content: bytes = b"hello", platform: str = "linux/amd64") -> dict[str, Any]:
        """A one-layer image; different `content` gives a different digest."""
        os_name, arch = platform.split("/", 1)
        config = self.add_blob(canonical({"architecture": arch, "os": os_name, "rootfs": {"type": "layers",
                                          "diff_ids": [compute_digest(content)]}}), IMAGE_CONFIG)
        layer = self.add_blob(content)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}
        return self.add_manifest(manifest, tag)

    def add_index(self, tag: str | None, platforms: dict[str, bytes]) -> dict[str, Any]:
        manifests = []
        for platform, content in platforms.items():
            descriptor = dict(self.add_image(None, content, platform))
            os_name, arch = platform.split("/", 1)
            descriptor["platform"] = {"os": os_name, "architecture": arch}
            manifests.append(descriptor)
        return self.add_manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, tag,
                                 OCI_INDEX)

    def tag(self, descriptor: dict[str, Any], tag: str) -> None:
        self._index_entry(descriptor, tag)

    def _index_entry(self, descriptor: dict[str, Any], tag: str | None) -> None:
        index = json.loads((self.path / "index.json").read_text())
        entry = dict(descriptor)
        if tag:
            entry["annotations"] = {REF_NAME: tag}
            index["manifests"] = [m for m in index["manifests"]
                                  if (m.get("annotations") or {}).get(REF_NAME) != tag]
        index["manifests"].append(entry)
        self._write_index(index)

    def _write_index(self, index: dict[str, Any]) -> None:
        (self.path / "index.json").write_text(json.dumps(index, indent=1))
