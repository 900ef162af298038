"""Sigstore bundles (OCI referrers): Rekor v2 entries, entry kinds the library refuses, and trust material
that is loaded once per config generation.

Vectors are from sigstore-conformance: a Rekor v2 (hashedrekord 0.0.2 over DSSE) bundle with its staging
trusted root, and a Rekor v1 bundle with an `intoto` 0.0.2 entry.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sigstore.models import Bundle

from provider.config import build_config
from provider.devkit import cosign
from provider.reference import parse_reference
from provider.state import ProviderState
from provider.stores.base import ResolvedImage
from provider.verifiers.bundle import SigstoreBundleVerifier, parse_bundle, signing_time
from tests.helpers import VECTORS, write_yaml
from tests.test_attestations import BUNDLE_SUBJECT
from tests.test_cosign import REG, keyed, own_image, verify, write_key

CONFORMANCE = VECTORS / "sigstore-conformance"
REKOR2 = CONFORMANCE / "rekor2-dsse-happy-path"
INTOTO2 = CONFORMANCE / "intoto-with-custom-trust-root"
BEACON = {"subject": "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/"
                     "workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
          "issuer": "https://token.actions.githubusercontent.com"}
REKOR2_SUBJECT = "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf"
INTOTO2_SUBJECT = "sha256:330a043220fa13e01d68a7db39c89e12b0c4c3b6a0346fe624b0903f1303b5b2"


def keyless(trusted_root: Path, identities: list[dict[str, str]]) -> dict[str, Any]:
    return {"name": "ci", "cosign": {"keyless": {"trustedRoot": str(trusted_root), "identities": identities}}}


def check(tmp_path: Path, vector: Path, digest: str, identities: list[dict[str, str]]) -> tuple[Any, Any]:
    data = {"authorities": [keyless(vector / "trusted_root.json", identities)]}
    (authority,) = build_config(data, write_yaml(tmp_path / "c.yaml", data)).authorities
    image = ResolvedImage(parse_reference(f"{REG}/repo@{digest}"), digest,
                          "application/vnd.oci.image.manifest.v1+json", 0, b"")
    bundle = parse_bundle((vector / "bundle.sigstore.json").read_bytes())  # a string says why it is none
    return SigstoreBundleVerifier().check(image, "sha256:" + "0" * 64, bundle, authority)


def test_rekor_v2_bundle_verifies_with_its_timestamp_as_signing_time(tmp_path: Path) -> None:
    signature, attestation = check(tmp_path, REKOR2, REKOR2_SUBJECT, [BEACON])
    assert signature is None
    assert attestation.verified is True, attestation.reason
    assert attestation.predicate_type == "https://slsa.dev/provenance/v1"
    data = {"authorities": [keyless(REKOR2 / "trusted_root.json", [BEACON])]}
    (authority,) = build_config(data, write_yaml(tmp_path / "t.yaml", data)).authorities
    bundle = Bundle.from_json((REKOR2 / "bundle.sigstore.json").read_bytes())
    tlog, timestamp = signing_time(authority.cosign.keyless.bundle_verifier, bundle)
    assert tlog.integrated_time == "" and tlog.log_index == bundle.log_entry._inner.log_index
    assert timestamp is not None and timestamp.startswith("20")


def test_rekor_v2_bundle_for_another_identity_is_rejected(tmp_path: Path) -> None:
    signature, _ = check(tmp_path, REKOR2, REKOR2_SUBJECT, [{"subject": "someone@example.com"}])
    assert signature.verified is False
    assert "does not match subject someone@example.com" in signature.reason


def test_tampered_rekor_v2_inclusion_proof_is_a_rejection_not_an_error(tmp_path: Path) -> None:
    tampered = tmp_path / "tampered"
    shutil.copytree(REKOR2, tampered)
    bundle = json.loads((tampered / "bundle.sigstore.json").read_text())
    proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    proof["hashes"][0] = proof["hashes"][1]
    (tampered / "bundle.sigstore.json").write_text(json.dumps(bundle))
    signature, _ = check(tmp_path, tampered, REKOR2_SUBJECT, [BEACON])
    assert signature.verified is False
    assert signature.reason.startswith("Sigstore bundle rejected: invalid log entry")


# sigstore-conformance test/test_bundle.py test_verify over bundle-verify/intoto-*: sigstore-go accepts Rekor v1
# intoto 0.0.2 entries (pkg/tlog/entry.go, pkg/verify/tlog.go VerifyTlogEntry).
def test_verify_intoto_with_custom_trust_root(tmp_path: Path) -> None:
    signature, attestation = check(tmp_path, INTOTO2, INTOTO2_SUBJECT, [BEACON])
    assert signature is None, signature.reason
    assert attestation.verified is True, attestation.reason


@pytest.mark.parametrize(("case", "reason"), [
    # README: "Certificate was issued outside the validity window defined in trusted root" (valid only in 2030)
    ("intoto-expired-certificate_fail", "cert is not valid at validation time"),
    # README: "log entry does not match the signed artifact"
    ("intoto-log-entry-mismatch_fail", "log entry does not match the bundle"),
    # README: "A v0.2 bundle where log entry does not contain an inclusion proof is invalid"
    ("intoto-missing-inclusion-proof_fail", "tlogEntries.0.inclusionProof Field required"),
    # README: "A Signed Entry Timestamp (integrated time) that falls outside the validity window of the signing
    # certificate is invalid"
    ("intoto-set-outside-signing-cert-validity_fail", "cert is not valid at validation time"),
    # README: "TSA timestamp is outside of the validity window of the signing certificate"
    ("intoto-tsa-timestamp-outside-cert-validity_fail", "cert is not valid at validation time"),
])
def test_verify_intoto_fail_cases(tmp_path: Path, case: str, reason: str) -> None:
    signature, attestation = check(tmp_path, CONFORMANCE / case, INTOTO2_SUBJECT, [BEACON])
    assert attestation is None and signature.verified is False
    assert reason in signature.reason, signature.reason
    assert "\n" not in signature.reason


def test_stray_rekor_v2_bundle_next_to_a_key_signature_does_not_block_the_image(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    writer, digest = own_image(tmp_path)
    cosign.sign_image(writer, digest, f"{REG}/own", key)
    image = next(m for m in json.loads((writer.path / "index.json").read_text())["manifests"]
                 if m["digest"] == digest)
    cosign.attach_bundle(writer, image, (REKOR2 / "bundle.sigstore.json").read_bytes())
    facts = verify(tmp_path, f"{REG}/own:v1", [keyed("keys", write_key(tmp_path, key)),
                                               keyless(REKOR2 / "trusted_root.json", [BEACON])])
    assert facts["verified"] is True and facts["authorities"] == ["keys"]
    (stray,) = facts["attestations"]
    assert stray["authority"] == "ci" and stray["verified"] is False
    assert stray["reason"] == f"statement is about {REKOR2_SUBJECT}, not {digest}"


def test_trusted_root_is_read_once_per_config_generation(tmp_path: Path) -> None:
    root = tmp_path / "trusted_root.json"
    shutil.copy(VECTORS / "cosign/trusted_root_pgi.json", root)
    write_yaml(tmp_path / "config.yaml", {"authorities": [keyless(root, [{"subject": "cody@soyland.com"}])]})
    state = ProviderState(tmp_path / "config.yaml")
    image = ResolvedImage(parse_reference(f"{REG}/repo@{BUNDLE_SUBJECT}"), BUNDLE_SUBJECT,
                          "application/vnd.oci.image.manifest.v1+json", 0, b"")
    bundle = Bundle.from_json((VECTORS / "cosign/oci-attestation.sigstore.json").read_bytes())

    def verified(runtime: Any) -> bool:
        signature, attestation = SigstoreBundleVerifier().check(image, "sha256:" + "0" * 64, bundle,
                                                                runtime.config.authorities[0])
        return (attestation or signature).verified

    first = state.load()
    try:
        root.unlink()  # a request must not need the file
        assert verified(first) is True
        shutil.copy(REKOR2 / "trusted_root.json", root)  # another root: only the next generation sees it
        assert verified(first) is True
        assert state.reload_if_changed() is True
        assert state.runtime is not None and state.runtime is not first
        assert verified(state.runtime) is False
    finally:
        if state.runtime is not None:
            state.runtime.engine.shutdown()


def windowed_root(tmp_path: Path, section: str, end: str) -> Path:
    """The intoto vector's trusted root with the validFor of its CA or Rekor key ending at `end`."""
    shutil.copytree(INTOTO2, tmp_path / "vector")
    root = json.loads((INTOTO2 / "trusted_root.json").read_text())
    entry = root[section][0] if section == "certificateAuthorities" else root[section][0]["publicKey"]
    entry["validFor"]["end"] = end
    (tmp_path / "vector/trusted_root.json").write_text(json.dumps(root))
    return tmp_path / "vector"


# sigstore-go pkg/root/certificate_authority.go FulcioCertificateAuthority.Verify: sigstore-python only checks the
# CA's window against the current time; the bundle's signing time (2023-02-01) must lie inside it.
def test_FulcioCertificateAuthority_Verify_window_applies_to_bundles(tmp_path: Path) -> None:
    vector = windowed_root(tmp_path, "certificateAuthorities", "2023-01-15T00:00:00Z")
    signature, attestation = check(tmp_path, vector, INTOTO2_SUBJECT, [BEACON])
    assert attestation is None and signature.verified is False
    assert "is valid from 2023-01-01T00:00:00Z until 2023-01-15T00:00:00Z, not at 2023-02-01T00:00:00Z" in \
        signature.reason


# sigstore-go pkg/tlog/entry.go VerifySET: "rekor log public key not valid at payload integrated time".
def test_VerifySET_window_applies_to_bundles(tmp_path: Path) -> None:
    vector = windowed_root(tmp_path, "tlogs", "2023-01-15T00:00:00Z")
    signature, _ = check(tmp_path, vector, INTOTO2_SUBJECT, [BEACON])
    assert signature.verified is False
    assert signature.reason == ("Sigstore bundle rejected: Rekor key trustedRoot.tlogs[0] is not valid at the "
                                "entry's integrated time 2023-02-01T00:00:00Z")


def test_a_trusted_root_window_that_is_not_a_time_names_the_field(tmp_path: Path) -> None:
    from provider.config import ConfigError

    shutil.copytree(INTOTO2, tmp_path / "vector")
    root = json.loads((INTOTO2 / "trusted_root.json").read_text())
    root["certificateAuthorities"][0]["validFor"]["end"] = "next tuesday"
    (tmp_path / "vector/trusted_root.json").write_text(json.dumps(root))
    data = {"authorities": [keyless(tmp_path / "vector/trusted_root.json", [BEACON])]}
    with pytest.raises(ConfigError, match="not a Sigstore trusted root") as caught:
        build_config(data, write_yaml(tmp_path / "c.yaml", data))
    assert caught.value.field_path == "authorities[0].cosign.keyless.trustedRoot"
