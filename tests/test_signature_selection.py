"""maxSignatures counts signature artifacts only, checks the ones a cheap look cannot reject first, and says
in the facts when it cut the list."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from provider.config import build_config
from provider.devkit import notation
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.stores.base import Descriptor, SignatureArtifact
from provider.stores.selection import DISCOVERY_FACTOR, select, signatures_only
from tests.helpers import facts_from, write_yaml

REPO = "team/app"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"


def thumbprints(identity: notation.SigningIdentity) -> str:
    return json.dumps([hashlib.sha256(c.public_bytes(Encoding.DER)).hexdigest() for c in identity.chain])


def referrer(writer: LayoutWriter, image: dict[str, Any], artifact_type: str, layer: bytes, layer_type: str,
             annotations: dict[str, str] | None = None) -> dict[str, Any]:
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": artifact_type, "config": writer.add_blob(b"{}", EMPTY_CONFIG),
                "layers": [writer.add_blob(layer, layer_type)], "subject": notation.target_of(image),
                "annotations": annotations or {}}
    return writer.add_manifest(manifest)


def setup(tmp_path: Path, before: list[tuple[str, bytes, str, dict[str, str]]], max_signatures: int | None = None,
          identity: notation.SigningIdentity | None = None) -> Engine:
    """An image with the `before` referrers first and then one valid notation signature, and an engine."""
    writer = LayoutWriter(tmp_path / "layouts/registry.example", REPO)
    image = writer.add_image("v1", b"selected")
    identity = identity or notation.identity_with_intermediate("ec-256")
    for artifact_type, layer, layer_type, notes in before:
        referrer(writer, image, artifact_type, layer, layer_type, notes)
    notation.attach(writer, image, notation.sign(notation.target_of(image), identity))
    (tmp_path / "root.pem").write_bytes(identity.root_pem)
    policy = {"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["*"],
                                                   "signatureVerification": {"level": "strict"},
                                                   "trustStores": ["ca:acme"], "trustedIdentities": ["*"]}]}
    data: dict[str, Any] = {"stores": [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["*"]}],
                            "authorities": [{"name": "acme", "notation": {
                                "trustStores": {"ca:acme": [str(tmp_path / "root.pem")]},
                                "trustPolicy": {"inline": policy}}}]}
    if max_signatures is not None:
        data["verification"] = {"maxSignatures": max_signatures}
    return Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))


def facts_of(engine: Engine) -> dict[str, Any]:
    return facts_from(engine, f"registry.example/{REPO}:v1")


def test_sboms_and_scan_reports_do_not_count(tmp_path: Path) -> None:
    sboms = [("application/spdx+json", json.dumps({"n": n}).encode(), "application/spdx+json", {})
             for n in range(20)]
    sboms += [("application/sarif+json", b"{}", "application/sarif+json", {})]
    engine = setup(tmp_path, sboms)  # default maxSignatures: 16
    facts = facts_of(engine)
    assert facts["verified"] is True, facts["reason"]
    assert [s["format"] for s in facts["signatures"]] == ["notation"]
    assert "signatureLimit" not in facts


def fakes(count: int, annotations: dict[str, str]) -> list[tuple[str, bytes, str, dict[str, str]]]:
    return [("application/vnd.cncf.notary.signature", b"{not an envelope %d}" % n, "application/jose+json",
             annotations) for n in range(count)]


def test_fakes_naming_an_unknown_signer_do_not_use_up_the_budget(tmp_path: Path) -> None:
    stranger = notation.identity_with_intermediate("ec-256")
    bogus = {"io.cncf.notary.x509chain.thumbprint#S256": thumbprints(stranger)}
    engine = setup(tmp_path, fakes(12, bogus), max_signatures=2)
    facts = facts_of(engine)
    assert facts["verified"] is True, facts["reason"]
    # The valid signature and one fake were checked; the other fakes were found, counted and reported.
    assert sum(s["verified"] for s in facts["signatures"]) == 1 and len(facts["signatures"]) == 2
    assert facts["signatureLimit"] == {"maxSignatures": 2, "found": 13, "omitted": 11}


def test_when_the_limit_cuts_a_valid_signature_out_the_facts_say_so(tmp_path: Path) -> None:
    # Fakes that copy the trusted chain's thumbprints cannot be told apart without checking them.
    identity = notation.identity_with_intermediate("ec-256")
    copied = {"io.cncf.notary.x509chain.thumbprint#S256": thumbprints(identity)}
    facts = facts_of(setup(tmp_path, fakes(3, copied), max_signatures=2, identity=identity))
    assert facts["verified"] is False
    assert facts["signatureLimit"] == {"maxSignatures": 2, "found": 4, "omitted": 2}
    assert facts["reason"].endswith("(2 more signature artifact(s) not checked: over verification.maxSignatures 2)")
    assert len(facts["signatures"]) == 2 and not any(s["verified"] for s in facts["signatures"])


def artifact(digit: str, artifact_type: str, source: str = "referrers") -> SignatureArtifact:
    return SignatureArtifact(Descriptor("application/vnd.oci.image.manifest.v1+json", "sha256:" + digit * 64, 10,
                                        artifact_type), source)


def test_discovery_keeps_signature_artifacts_only_up_to_a_multiple_of_the_limit() -> None:
    found = [artifact("a", "application/spdx+json"), artifact("b", "application/vnd.cncf.notary.signature"),
             artifact("c", "application/vnd.dev.sigstore.bundle.v0.3+json"), artifact("d", ""),
             artifact("e", "", source="cosign-tag"), artifact("f", "application/vnd.in-toto+json")]
    assert [a.descriptor.digest[7] for a in signatures_only(found, 16)] == ["e", "b", "c", "d"]
    many = [artifact("b", "application/vnd.cncf.notary.signature")] * 50
    assert len(signatures_only(many, 2)) == 2 * DISCOVERY_FACTOR
    selection = select(found, 3)
    assert [a.descriptor.digest[7] for a in selection.artifacts] == ["e", "b", "c"]
    assert (selection.found, selection.omitted) == (4, 1)
    # cosign's tags are never pushed out by referrers, however many.
    assert signatures_only([*many, artifact("e", "", source="cosign-tag")], 1)[0].source == "cosign-tag"
    assert select([*many, artifact("e", "", source="cosign-tag")], 1).artifacts[0].source == "cosign-tag"
