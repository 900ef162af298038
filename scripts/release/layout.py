"""The release as one OCI image layout: the image, the wheel, the sdist and the chart, each tagged and signed in
cosign's format, with the SBOMs and the provenance attached as cosign attestations.

Everything is made with the project's own signing helpers (provider.devkit), so what `sigwarden verify` checks
here is the same format it checks in a registry. One repository, distinct tags (one layout shares one tag
namespace): `<version>` the image, `<version>-wheel`, `<version>-sdist`, `chart-<chart version>`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from provider.content.kinds import CYCLONEDX_PREDICATE
from provider.devkit import cosign
from provider.devkit.layout import EMPTY_CONFIG, IMAGE_CONFIG, LAYER, LayoutWriter, canonical
from provider.stores.base import OCI_MANIFEST
from scripts.release.chart import CHART_LAYER_MEDIA_TYPE, CONFIG_MEDIA_TYPE, PackagedChart
from scripts.release.imagefs import BaseImage
from scripts.release.provenance import SLSA_PREDICATE, iso

REPOSITORY = "release.local/sigwarden"
WHEEL_ARTIFACT = "application/vnd.sigwarden.wheel.v1+zip"
SDIST_ARTIFACT = "application/vnd.sigwarden.sdist.v1.tar+gzip"
TITLE = "org.opencontainers.image.title"


@dataclass(frozen=True)
class Release:
    """What goes into the layout; every byte of it was built before signing starts."""

    version: str
    commit: str
    epoch: int
    wheel: Path
    sdist: Path
    chart: PackagedChart
    layer: bytes
    image_config: dict[str, Any]
    base: BaseImage
    wheel_sbom: bytes
    image_sbom: bytes
    provenance: dict[str, Any]

    def tags(self) -> dict[str, str]:
        return {"image": self.version, "wheel": f"{self.version}-wheel", "sdist": f"{self.version}-sdist",
                "chart": f"chart-{self.chart.version}"}


def _artifact(writer: LayoutWriter, tag: str, artifact_type: str, layer_type: str, data: bytes, title: str,
              created: str) -> dict[str, Any]:
    layer = writer.add_blob(data, layer_type)
    layer["annotations"] = {TITLE: title}
    return writer.add_manifest({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                                "config": writer.add_blob(b"{}", EMPTY_CONFIG), "layers": [layer],
                                "annotations": {"org.opencontainers.image.created": created}}, tag)


def _image(writer: LayoutWriter, release: Release, tag: str) -> dict[str, Any]:
    config = writer.add_blob(canonical(release.image_config), IMAGE_CONFIG)
    annotations = {"org.opencontainers.image.base.name": f"{release.base.name}:{release.base.tag}",
                   "org.opencontainers.image.base.digest": release.base.digest,
                   "org.opencontainers.image.revision": release.commit,
                   "org.opencontainers.image.version": release.version,
                   "org.opencontainers.image.created": iso(release.epoch)}
    return writer.add_manifest({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                                "layers": [writer.add_blob(release.layer, LAYER)], "annotations": annotations}, tag)


def _chart(writer: LayoutWriter, chart: PackagedChart, tag: str, created: str) -> dict[str, Any]:
    # The manifest `helm push` writes: Helm's config and chart layer media types, and the annotations of
    # helm's generateChartOCIAnnotations (pkg/registry/util.go) for the Chart.yaml fields this chart has.
    metadata = json.loads(chart.config)
    annotations = {"org.opencontainers.image.title": chart.name, "org.opencontainers.image.version": chart.version,
                   "org.opencontainers.image.created": created}
    if metadata.get("description"):
        annotations["org.opencontainers.image.description"] = metadata["description"]
    layer = writer.add_blob(chart.archive, CHART_LAYER_MEDIA_TYPE)
    return writer.add_manifest({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                "config": writer.add_blob(chart.config, CONFIG_MEDIA_TYPE), "layers": [layer],
                                "annotations": annotations}, tag)


def write(out: Path, release: Release, key: PrivateKeyTypes) -> dict[str, str]:
    """Lay the release into a fresh layout at `out`; returns `tag -> manifest digest`."""
    shutil.rmtree(out, ignore_errors=True)
    writer = LayoutWriter(out.parent, out.name)
    tags = release.tags()
    created = iso(release.epoch)
    subjects = {
        "image": _image(writer, release, tags["image"]),
        "wheel": _artifact(writer, tags["wheel"], WHEEL_ARTIFACT, "application/zip", release.wheel.read_bytes(),
                           release.wheel.name, created),
        "sdist": _artifact(writer, tags["sdist"], SDIST_ARTIFACT, "application/gzip", release.sdist.read_bytes(),
                           release.sdist.name, created),
        "chart": _chart(writer, release.chart, tags["chart"], created),
    }
    sboms = {"image": release.image_sbom, "wheel": release.wheel_sbom}
    for kind, descriptor in subjects.items():
        digest = descriptor["digest"]
        cosign.sign_image(writer, digest, REPOSITORY, key)
        envelopes = [cosign.attestation_envelope(key, digest, SLSA_PREDICATE, release.provenance)]
        if kind in sboms:
            envelopes.append(cosign.attestation_envelope(key, digest, CYCLONEDX_PREDICATE, json.loads(sboms[kind])))
        cosign.attach_attestations(writer, digest, envelopes)
    return {tags[kind]: descriptor["digest"] for kind, descriptor in subjects.items()}
