"""A small world of images for policy suites, tests and the demo: signed, unsigned, tampered, unreachable.

Every name is fixed so suites can refer to them. `build_world(root)` writes keys, an OCI layout store and
a config under `root`; the provider started from that config answers for every image below.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from provider.devkit import cosign
from provider.devkit.layout import LayoutWriter

REGISTRY = "registry.sigwarden.test"
SIGNED = f"{REGISTRY}/team/app:v1"  # signed by release, security and the kritis authority
RELEASE_ONLY = f"{REGISTRY}/team/api:v1"  # signed by release only
UNSIGNED = f"{REGISTRY}/team/unsigned:v1"
TAMPERED = f"{REGISTRY}/team/tampered:v1"  # the tag moved to an altered manifest; the old signature was copied
DEBUG_TOOL = f"{REGISTRY}/tools/debug:v1"  # unsigned, exempted by the sample constraints
UNREACHABLE = "127.0.0.1:9/team/app:v1"  # the discard port: nothing listens, the registry is unreachable
ALPINE = "alpine:3.11"  # the kritis seed image: unsigned


@dataclass(frozen=True)
class World:
    root: Path
    config: Path
    digests: dict[str, str]


def _image(layouts: Path, reference: str, content: bytes) -> tuple[LayoutWriter, str]:
    name = reference.rsplit(":", 1)[0]
    host, repository = name.split("/", 1) if "/" in name and "." in name.split("/", 1)[0] else (
        "docker.io", name if "/" in name else f"library/{name}")
    writer = LayoutWriter(layouts / host, repository)
    return writer, writer.add_image(reference.rsplit(":", 1)[1], content)["digest"]


def build_world(root: Path) -> World:
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    release, security = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    kritis = ec.generate_private_key(ec.SECP256R1())  # a kritis AttestationAuthority's PKIX key
    (root / "release.pub").write_bytes(cosign.public_pem(release))
    (root / "security.pub").write_bytes(cosign.public_pem(security))
    layouts = root / "layouts"
    digests = {}
    for reference, keys in ((SIGNED, (release, security, kritis)), (RELEASE_ONLY, (release,)), (UNSIGNED, ()),
                            (DEBUG_TOOL, ()), (ALPINE, ())):
        writer, digest = _image(layouts, reference, reference.encode())
        if keys:
            cosign.sign_image(writer, digest, reference.rsplit(":", 1)[0], *keys)
        digests[reference] = digest
    writer, original = _image(layouts, TAMPERED, b"tampered original")
    signature = cosign.sign_image(writer, original, TAMPERED.rsplit(":", 1)[0], release)
    altered = writer.add_image("v1", b"tampered original, altered after signing")["digest"]
    writer.tag(signature, altered.replace(":", "-") + ".sig")
    digests[TAMPERED] = altered
    config = {
        "server": {"requestDeadline": "2.5s"},
        "stores": [{"type": "oci-layout", "path": str(layouts), "match": [f"{REGISTRY}/*", "docker.io/*"]},
                   {"type": "registry", "match": ["127.0.0.1:9/*"], "insecure": ["127.0.0.1:9"]}],
        "authorities": [{"name": "release", "cosign": {"publicKeys": [str(root / "release.pub")]}},
                        {"name": "security", "cosign": {"publicKeys": [str(root / "security.pub")]}},
                        {"name": "kritis-authority", "attestation": {
                            "publicKeyData": base64.b64encode(cosign.public_pem(kritis)).decode(),
                            "publicKeyId": "kritis-pkix", "dockerReference": "repository"}}],
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return World(root, path, digests)
