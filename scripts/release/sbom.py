"""CycloneDX SBOMs of the wheel and of the image, made with the CycloneDX project's Python library.

Components are the distributions installed in the image's site directory (so licences and versions are what
was installed), with the dependency graph from their metadata. The serial number and timestamp derive from the
release (the wheel's digest, SOURCE_DATE_EPOCH), so two builds of one commit write the same bytes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import uuid
from datetime import UTC, datetime
from pathlib import Path

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.model import HashAlgorithm, HashType
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from scripts.release.imagefs import BaseImage

LICENSE_CLASSIFIER = "License :: OSI Approved :: "


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _licences(metadata: importlib.metadata.PackageMetadata) -> list:
    # PEP 639's License-Expression first, then a one-line License field, then the trove classifiers.
    factory = LicenseFactory()
    expression = metadata.get("License-Expression")
    if expression:
        return [factory.make_from_string(expression)]
    field = (metadata.get("License") or "").strip()
    if field and "\n" not in field and len(field) <= 64 and field.upper() != "UNKNOWN":
        return [factory.make_from_string(field)]
    return [factory.make_from_string(c.removeprefix(LICENSE_CLASSIFIER))
            for c in metadata.get_all("Classifier") or [] if c.startswith(LICENSE_CLASSIFIER)][:1]


def _purl(name: str, version: str) -> PackageURL:
    return PackageURL(type="pypi", name=canonicalize_name(name), version=version)


class Installed:
    """The distributions in one site directory, by canonical name."""

    def __init__(self, lib: Path) -> None:
        self.dists = {canonicalize_name(d.metadata["Name"]): d
                      for d in importlib.metadata.distributions(path=[str(lib)])}

    def component(self, name: str, hashes: list[HashType] | None = None) -> Component:
        dist = self.dists[name]
        purl = _purl(name, dist.version)
        return Component(name=dist.metadata["Name"], version=dist.version, type=ComponentType.LIBRARY, purl=purl,
                         bom_ref=purl.to_string(), licenses=_licences(dist.metadata), hashes=hashes or [])

    def requires(self, name: str) -> list[str]:
        needed = []
        for line in self.dists[name].requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                needed.append(canonicalize_name(requirement.name))
        return [n for n in needed if n in self.dists]


def _bom(serial: str, epoch: int, root: Component) -> Bom:
    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_OID, serial))
    bom.metadata.timestamp = datetime.fromtimestamp(epoch, UTC)
    bom.metadata.component = root
    library = importlib.metadata.version("cyclonedx-python-lib")
    bom.metadata.tools.components.add(Component(name="cyclonedx-python-lib", version=library,
                                                type=ComponentType.LIBRARY,
                                                bom_ref=f"pkg:pypi/cyclonedx-python-lib@{library}"))
    return bom


def _add_closure(bom: Bom, installed: Installed, top: Component, names: list[str],
                 hashes: dict[str, list[HashType]]) -> None:
    components = {name: installed.component(name, hashes.get(name)) for name in sorted(installed.dists)}
    for component in components.values():
        bom.components.add(component)
    for name, component in components.items():
        bom.register_dependency(component, [components[n] for n in installed.requires(name)])
    bom.register_dependency(top, [components[n] for n in names])


def wheel_sbom(wheel: Path, lib: Path, epoch: int) -> bytes:
    """The wheel and the runtime dependencies it was installed with from the lock."""
    installed = Installed(lib)
    name = canonicalize_name(wheel.name.split("-")[0])
    digest = sha256_file(wheel)
    version = installed.dists[name].version
    purl = PackageURL(type="pypi", name=name, version=version, qualifiers={"file_name": wheel.name})
    root = Component(name=name, version=version, type=ComponentType.APPLICATION, purl=purl,
                     bom_ref=purl.to_string(), licenses=_licences(installed.dists[name].metadata),
                     hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest)])
    bom = _bom(f"sigwarden-wheel-sbom:{digest}", epoch, root)
    dependencies = installed.requires(name)
    installed.dists.pop(name)
    _add_closure(bom, installed, root, dependencies, {})
    return JsonV1Dot6(bom).output_as_string(indent=None).encode()


def image_sbom(wheel: Path, lib: Path, base: BaseImage, layer_digest: str, epoch: int) -> bytes:
    """Everything the image's own layer installs, sigwarden included, and the base image by digest."""
    installed = Installed(lib)
    name = canonicalize_name(wheel.name.split("-")[0])
    version = installed.dists[name].version
    root = Component(name=name, version=version, type=ComponentType.CONTAINER, bom_ref=f"image:{name}@{version}",
                     hashes=[HashType(alg=HashAlgorithm.SHA_256, content=layer_digest.split(":", 1)[1])])
    base_hex = base.digest.split(":", 1)[1]
    base_purl = PackageURL(type="oci", name=base.name, version=base.digest, qualifiers={"tag": base.tag})
    base_component = Component(name=base.name, version=base.tag, type=ComponentType.CONTAINER, purl=base_purl,
                               bom_ref=base_purl.to_string(),
                               hashes=[HashType(alg=HashAlgorithm.SHA_256, content=base_hex)])
    bom = _bom(f"sigwarden-image-sbom:{sha256_file(wheel)}:{layer_digest}", epoch, root)
    bom.components.add(base_component)
    bom.register_dependency(base_component, [])
    wheel_hash = [HashType(alg=HashAlgorithm.SHA_256, content=sha256_file(wheel))]
    _add_closure(bom, installed, root, [name], {name: wheel_hash})
    bom.register_dependency(root, [base_component])
    return JsonV1Dot6(bom).output_as_string(indent=None).encode()
