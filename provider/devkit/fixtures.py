"""A small world of images for policy suites, tests and the demo: signed, unsigned, tampered, unreachable.

Every name is fixed so suites can refer to them. `build_world(root)` writes keys, an OCI layout store and
a config under `root`; the provider started from that config answers for every image below.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import pysequoia
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from provider.content import kinds
from provider.devkit import content, cosign, fulcio, notation
from provider.devkit.layout import LayoutWriter
from provider.facts import rfc3339
from provider.stores.base import OCI_INDEX
from provider.verifiers.simplesigning import ATOMIC_TYPE

REGISTRY = "registry.sigwarden.test"
SIGNED = f"{REGISTRY}/team/app:v1"  # signed by release, security and the kritis authority
RELEASE_ONLY = f"{REGISTRY}/team/api:v1"  # signed by release only
UNSIGNED = f"{REGISTRY}/team/unsigned:v1"
TAMPERED = f"{REGISTRY}/team/tampered:v1"  # the tag moved to an altered manifest; the old signature was copied
DEBUG_TOOL = f"{REGISTRY}/tools/debug:v1"  # unsigned, exempted by the sample constraints
UNREACHABLE = "127.0.0.1:9/team/app:v1"  # the discard port: nothing listens, the registry is unreachable
ALPINE = "alpine:3.11"  # the kritis seed image: unsigned
# Images with content (all signed by release; reports and SBOMs signed by the scanner unless said otherwise).
CONTENT_CLEAN = f"{REGISTRY}/content/clean:v1"  # LOW fixable CVE-2024-0001; SBOM: MIT, Apache-2.0
# CRITICAL fixable CVE-2024-1111, HIGH unfixable CVE-2024-2222; SBOM: GPL-3.0-only, (Zlib OR AGPL-3.0-only)
CONTENT_CRITICAL = f"{REGISTRY}/content/critical:v1"
CONTENT_VEX = f"{REGISTRY}/content/vex:v1"  # CRITICAL CVE-2024-1111, declared not_affected by a scanner VEX
CONTENT_UNSIGNED = f"{REGISTRY}/content/unsigned-report:v1"  # only an unsigned SARIF referrer
CONTENT_WRONG_PURPOSE = f"{REGISTRY}/content/wrong-purpose:v1"  # clean report signed by release (purposes: image)
CONTENT_OTHER_DIGEST = f"{REGISTRY}/content/other-digest:v1"  # clean report whose subject is another digest
CONTENT_STALE = f"{REGISTRY}/content/stale:v1"  # clean report made 2020-01-01
CONTENT_NO_REPORT = f"{REGISTRY}/content/no-report:v1"  # signed, nothing attached
# Unsigned, in a repository whose notation trust policy statement has level skip (authority notation-skip).
SKIPPED = f"{REGISTRY}/skipped/app:v1"
# An index (signed) of linux/amd64 (signed), linux/arm64 (not signed) and a BuildKit attestation manifest.
MULTIARCH = f"{REGISTRY}/content/multiarch:v1"
# One image per other kind of authority, each trusted only for its own repository.
NOTATION_SIGNED = f"{REGISTRY}/notation/app:v1"  # notation (JWS), authority notation-release
KEYLESS_SIGNED = f"{REGISTRY}/keyless/app:v1"  # cosign keyless (Fulcio certificate, Rekor bundle), keyless-ci
GPG_SIGNED = f"{REGISTRY}/gpg/app:v1"  # simple signing with a GPG key in a file lookaside, gpg-release
KEYLESS_IDENTITY = "ci@sigwarden.test"


@dataclass(frozen=True)
class Fixture:
    """One image of the world, for `sigwarden policy fixtures` and the policy skeleton's suite."""

    reference: str
    signed_by: tuple[str, ...]  # the authorities that verify it
    about: str


FIXTURES = (
    Fixture(SIGNED, ("release", "security", "kritis-authority"), "cosign key signatures by three authorities"),
    Fixture(RELEASE_ONLY, ("release",), "a cosign key signature by release only"),
    Fixture(KEYLESS_SIGNED, ("keyless-ci",),
            f"cosign keyless: a Fulcio certificate for {KEYLESS_IDENTITY} with a Rekor entry"),
    Fixture(NOTATION_SIGNED, ("notation-release",), "a notation signature (JWS) under a trust policy"),
    Fixture(GPG_SIGNED, ("gpg-release",), "a GPG simple signature (containers/image) in a file lookaside"),
    Fixture(UNSIGNED, (), "no signature"),
    Fixture(TAMPERED, (), "the tag moved to an altered manifest; the old signature was copied next to it"),
    Fixture(ALPINE, (), "unsigned, on Docker Hub"),
    Fixture(DEBUG_TOOL, (), "unsigned; the sample constraints exempt it"),
    Fixture(UNREACHABLE, (), "on a registry that does not answer: an item error, never verified"),
    Fixture(SKIPPED, (), "unsigned, under a notation trust policy statement of level skip (notation-skip)"),
    Fixture(CONTENT_CLEAN, ("release",), "a scanner-signed vulnerability report (one LOW CVE) and SBOM (MIT, "
            "Apache-2.0)"),
    Fixture(CONTENT_CRITICAL, ("release",), "a scanner-signed report with a fixable CRITICAL CVE-2024-1111; a "
            "copyleft SBOM"),
    Fixture(CONTENT_VEX, ("release",), "CRITICAL CVE-2024-1111 declared not_affected by a scanner-signed VEX"),
    Fixture(CONTENT_UNSIGNED, ("release",), "only an unsigned SARIF report attached"),
    Fixture(CONTENT_WRONG_PURPOSE, ("release",), "a report signed by release, which is not trusted for reports"),
    Fixture(CONTENT_OTHER_DIGEST, ("release",), "a report about another image's digest"),
    Fixture(CONTENT_STALE, ("release",), "a report made 2020-01-01"),
    Fixture(CONTENT_NO_REPORT, ("release",), "signed, nothing attached"),
    Fixture(MULTIARCH, ("release",), "an index of linux/amd64 (signed) and linux/arm64 (not signed)"),
)


NOTATION_POLICY = {"version": "1.0", "trustPolicies": [
    {"name": "release", "registryScopes": [NOTATION_SIGNED.rsplit(":", 1)[0]],
     "signatureVerification": {"level": "strict"}, "trustStores": ["ca:fixtures"], "trustedIdentities": ["*"]}]}
SKIP_POLICY = {"version": "1.0", "trustPolicies": [
    {"name": "skip-verification", "registryScopes": [SKIPPED.rsplit(":", 1)[0]],
     "signatureVerification": {"level": "skip"}}]}


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
                            (DEBUG_TOOL, ()), (ALPINE, ()), (SKIPPED, ())):
        writer, digest = _image(layouts, reference, reference.encode())
        if keys:
            cosign.sign_image(writer, digest, reference.rsplit(":", 1)[0], *keys)
        digests[reference] = digest
    writer, original = _image(layouts, TAMPERED, b"tampered original")
    signature = cosign.sign_image(writer, original, TAMPERED.rsplit(":", 1)[0], release)
    altered = writer.add_image("v1", b"tampered original, altered after signing")["digest"]
    writer.tag(signature, altered.replace(":", "-") + ".sig")
    digests[TAMPERED] = altered
    scanner = ec.generate_private_key(ec.SECP256R1())
    (root / "scanner.pub").write_bytes(cosign.public_pem(scanner))
    digests.update(_content_images(layouts, release, scanner))
    notation_signer = notation.identity_with_intermediate("ec-256")
    (root / "notation-root.pem").write_bytes(notation_signer.root_pem)
    digests.update(_other_kinds(root, layouts, notation_signer))
    config = {
        # maxKeys low enough for a sample Pod to go over it (the allow-on-error suite), above audit's batch of 100.
        "server": {"requestDeadline": "2.5s", "maxKeys": 128},
        "stores": [{"type": "oci-layout", "path": str(layouts), "match": [f"{REGISTRY}/*", "docker.io/*"]},
                   {"type": "registry", "match": ["127.0.0.1:9/*"], "insecure": ["127.0.0.1:9"]}],
        "authorities": [{"name": "release", "purposes": ["image"],
                         "cosign": {"publicKeys": [str(root / "release.pub")]}},
                        {"name": "scanner", "purposes": ["vulnerability-report", "sbom", "vex"],
                         "scopes": [f"{REGISTRY}/content/*"], "cosign": {"publicKeys": [str(root / "scanner.pub")]}},
                        {"name": "security", "cosign": {"publicKeys": [str(root / "security.pub")]}},
                        {"name": "kritis-authority", "attestation": {
                            "publicKeyData": base64.b64encode(cosign.public_pem(kritis)).decode(),
                            "publicKeyId": "kritis-pkix", "dockerReference": "repository"}},
                        {"name": "notation-skip", "purposes": ["image"], "scopes": [f"{REGISTRY}/skipped/*"],
                         "notation": {"trustStores": {"ca:fixtures": [str(root / "notation-root.pem")]},
                                      "trustPolicy": {"inline": SKIP_POLICY}}},
                        {"name": "notation-release", "purposes": ["image"], "scopes": [f"{REGISTRY}/notation/*"],
                         "notation": {"trustStores": {"ca:fixtures": [str(root / "notation-root.pem")]},
                                      "trustPolicy": {"inline": NOTATION_POLICY}}},
                        {"name": "keyless-ci", "purposes": ["image"], "scopes": [f"{REGISTRY}/keyless/*"],
                         "cosign": {"keyless": {"trustedRoot": str(root / "keyless-root.json"), "identities": [
                             {"subject": KEYLESS_IDENTITY, "issuer": fulcio.ISSUER}]}}},
                        {"name": "gpg-release", "purposes": ["image"], "scopes": [f"{REGISTRY}/gpg/*"],
                         "attestation": {"lookaside": (root / "sigstore").as_uri(), "publicKeys": [
                             {"keyType": "PGP", "keyId": "gpg-release",
                              "asciiArmoredPgpPublicKey": (root / "gpg-release.asc").read_text()}]}}],
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return World(root, path, digests)


def _other_kinds(root: Path, layouts: Path, notation_signer: notation.SigningIdentity) -> dict[str, str]:
    """The notation, keyless and GPG images, with the trust material their authorities read (files in `root`)."""
    writer = LayoutWriter(layouts / REGISTRY, "notation/app")
    image = writer.add_image("v1", NOTATION_SIGNED.encode())
    notation.attach(writer, image, notation.sign(notation.target_of(image), notation_signer, "jws"), "jws")
    digests = {NOTATION_SIGNED: str(image["digest"])}

    sigstore = fulcio.Sigstore()
    sigstore.trusted_root(root / "keyless-root.json")
    writer, digest = _image(layouts, KEYLESS_SIGNED, KEYLESS_SIGNED.encode())
    signer = fulcio.leaf(sigstore.intermediate or sigstore.root, KEYLESS_IDENTITY, sigstore.ct_log)
    sigstore.sign_image(writer, digest, KEYLESS_SIGNED.rsplit(":", 1)[0], signer)
    digests[KEYLESS_SIGNED] = digest

    key = pysequoia.Tsk.generate("gpg-release <release@sigwarden.test>")
    (root / "gpg-release.asc").write_text(str(key.extract_certificate()))
    writer, digest = _image(layouts, GPG_SIGNED, GPG_SIGNED.encode())
    # containers/image lookaside layout: <base>/<repository path>@<algorithm>=<hex>/signature-<n>
    signatures = root / "sigstore" / f"{GPG_SIGNED.split('/', 1)[1].rsplit(':', 1)[0]}@{digest.replace(':', '=')}"
    signatures.mkdir(parents=True)
    message = pysequoia.sign(key.signer(), cosign.payload(digest, GPG_SIGNED, kind=ATOMIC_TYPE), armor=False)
    (signatures / "signature-1").write_bytes(bytes(message))
    digests[GPG_SIGNED] = digest
    return digests


def _content_images(layouts: Path, release: ec.EllipticCurvePrivateKey,
                    scanner: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    now = rfc3339()
    clean = content.vuln_predicate(content.trivy_report([("CVE-2024-0001", "LOW", "1.1")], now), now)
    critical = content.vuln_predicate(content.trivy_report(
        [("CVE-2024-1111", "CRITICAL", "2.0"), ("CVE-2024-2222", "HIGH", "")], now), now)
    sbom = content.cyclonedx({"left-pad": "MIT", "requests": "Apache-2.0"}, now)
    copyleft = content.cyclonedx({"readline": "GPL-3.0-only", "zlib-ng": "(Zlib OR AGPL-3.0-only)"}, now)
    stale = content.vuln_predicate(content.trivy_report([("CVE-2024-0001", "LOW", "1.1")], "2020-01-01T00:00:00Z"),
                                   "2020-01-01T00:00:00Z")
    plans: dict[str, list[tuple[ec.EllipticCurvePrivateKey, str, object]]] = {
        CONTENT_CLEAN: [(scanner, kinds.VULN_PREDICATE, clean), (scanner, kinds.CYCLONEDX_PREDICATE, sbom)],
        CONTENT_CRITICAL: [(scanner, kinds.VULN_PREDICATE, critical),
                           (scanner, kinds.CYCLONEDX_PREDICATE, copyleft)],
        CONTENT_VEX: [(scanner, kinds.VULN_PREDICATE, content.vuln_predicate(
            content.trivy_report([("CVE-2024-1111", "CRITICAL", "2.0")], now), now)),
                      (scanner, kinds.OPENVEX_PREDICATES[1], lambda digest: content.openvex(
                          ["CVE-2024-1111"], "security team", now, f"pkg:oci/vex@{digest.replace(':', '%3A')}"))],
        CONTENT_WRONG_PURPOSE: [(release, kinds.VULN_PREDICATE, clean)],
        CONTENT_STALE: [(scanner, kinds.VULN_PREDICATE, stale)],
        CONTENT_NO_REPORT: [], CONTENT_UNSIGNED: [],
    }
    digests = {}
    for reference, statements in plans.items():
        writer, digest = _image(layouts, reference, reference.encode())
        cosign.sign_image(writer, digest, reference.rsplit(":", 1)[0], release)
        if statements:  # a callable predicate is about the image's digest (a VEX statement's product)
            content.attest(writer, digest, [(key, kind, predicate(digest) if callable(predicate) else predicate)
                                            for key, kind, predicate in statements])
        digests[reference] = digest
    writer, digest = _image(layouts, CONTENT_OTHER_DIGEST, CONTENT_OTHER_DIGEST.encode())
    cosign.sign_image(writer, digest, CONTENT_OTHER_DIGEST.rsplit(":", 1)[0], release)
    content.attest(writer, digest, [(scanner, kinds.VULN_PREDICATE, clean)], subject=digests[CONTENT_CLEAN])
    digests[CONTENT_OTHER_DIGEST] = digest
    writer = LayoutWriter(layouts / REGISTRY, CONTENT_UNSIGNED.split("/", 1)[1].rsplit(":", 1)[0])
    image = next(m for m in json.loads((writer.path / "index.json").read_text())["manifests"]
                 if m["digest"] == digests[CONTENT_UNSIGNED])
    sarif = {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Trivy", "version": "0.50.0", "rules": []}},
                                           "results": []}]}
    content.attach_referrer(writer, image, json.dumps(sarif).encode())
    digests[MULTIARCH] = _multiarch(layouts, release)
    return digests


def _multiarch(layouts: Path, release: ec.EllipticCurvePrivateKey) -> str:
    """An index of two platforms and a BuildKit attestation manifest; the index and amd64 are signed."""
    name = MULTIARCH.rsplit(":", 1)[0]
    writer = LayoutWriter(layouts / REGISTRY, name.split("/", 1)[1])
    amd64 = writer.add_image(None, b"multiarch amd64", "linux/amd64")
    arm64 = writer.add_image(None, b"multiarch arm64", "linux/arm64")
    attestation = writer.add_image(None, b"buildkit attestation manifest", "unknown/unknown")
    manifests = [{**amd64, "platform": {"os": "linux", "architecture": "amd64"}},
                 {**arm64, "platform": {"os": "linux", "architecture": "arm64"}},
                 {**attestation, "platform": {"os": "unknown", "architecture": "unknown"},
                  "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                  "vnd.docker.reference.digest": amd64["digest"]}}]
    index = writer.add_manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, "v1", OCI_INDEX)
    cosign.sign_image(writer, index["digest"], name, release)
    cosign.sign_image(writer, amd64["digest"], name, release)
    return str(index["digest"])
