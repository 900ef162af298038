"""Fuzzing Sigstore bundles (OCI referrers) with the real public-good attestation bundle.

Properties: a bundle with any byte flipped, or any signed value changed (envelope payload and signature,
certificate, log entry body, inclusion promise, inclusion proof, checkpoint), is a result with a reason,
never an exception and never verified.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from provider.config import Authority, build_config
from provider.reference import parse_reference
from provider.stores.base import ResolvedImage
from provider.verifiers.bundle import SigstoreBundleVerifier, parse_bundle
from tests.fuzz.strategies_signed import FUZZ, flip, flip_base64, masks, positions, to_json
from tests.helpers import VECTORS, negative_serial, write_yaml

SUBJECT = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
ORIGINAL = (VECTORS / "cosign/oci-attestation.sigstore.json").read_bytes()
IMAGE = ResolvedImage(parse_reference(f"registry.example/repo@{SUBJECT}"), SUBJECT,
                      "application/vnd.oci.image.manifest.v1+json", 0, b"")
SIGNED_VALUES: list[tuple[str | int, ...]] = [
    ("dsseEnvelope", "payload"), ("dsseEnvelope", "signatures", 0, "sig"),
    ("verificationMaterial", "certificate", "rawBytes"),
    ("verificationMaterial", "tlogEntries", 0, "canonicalizedBody"),
    ("verificationMaterial", "tlogEntries", 0, "inclusionPromise", "signedEntryTimestamp"),
    ("verificationMaterial", "tlogEntries", 0, "inclusionProof", "rootHash"),
    ("verificationMaterial", "tlogEntries", 0, "inclusionProof", "hashes", 3),
]


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    data = {"authorities": [{"name": "pgi", "cosign": {"keyless": {
        "trustedRoot": str(VECTORS / "cosign/trusted_root_pgi.json"),
        "identities": [{"subject": "cody@soyland.com", "issuer": "https://github.com/login/oauth"}]}}}]}
    path = write_yaml(tmp_path_factory.mktemp("bundle-fuzz") / "config.yaml", data)
    return build_config(data, path).authorities[0]


def verified(authority: Authority, bundle_bytes: bytes) -> bool:
    """The bundle as the verifier sees it from a registry: parsed, then checked in isolation."""
    bundle = parse_bundle(bundle_bytes)
    signature, attestation = SigstoreBundleVerifier()._isolated(IMAGE, "sha256:" + "0" * 64, bundle, authority)
    result = attestation if attestation is not None else signature
    assert result is not None
    assert result.verified or result.reason
    return result.verified


def test_the_original_bundle_verifies(authority: Authority) -> None:
    assert verified(authority, ORIGINAL)


@FUZZ
@given(positions, masks)
def test_a_flipped_byte_never_verifies_unless_the_json_is_unchanged(authority: Authority, index: int,
                                                                  mask: int) -> None:
    mutated = flip(ORIGINAL, index, mask)
    if verified(authority, mutated):
        assert signed_content(mutated) == signed_content(ORIGINAL)


def signed_content(bundle_bytes: bytes) -> Any:
    """The bundle's content as the library reads it (so base64 spellings of the same bytes compare equal),
    without the one part nobody signs: the signer name on a checkpoint's signature line (the key is chosen by
    the signature's key hint; the note's own text is what is signed)."""
    from sigstore.models import Bundle

    data = json.loads(Bundle.from_json(bundle_bytes).to_json())
    for entry in data.get("verificationMaterial", {}).get("tlogEntries", []):
        checkpoint = (entry.get("inclusionProof") or {}).get("checkpoint") or {}
        note = checkpoint.get("envelope")
        if isinstance(note, str) and "\n\n" in note:
            text, signatures = note.split("\n\n", 1)
            checkpoint["envelope"] = [text, [line.rsplit(" ", 1)[-1] for line in signatures.splitlines()]]
    return data


@FUZZ
@given(st.sampled_from(SIGNED_VALUES), positions, masks)
def test_a_changed_signed_value_never_verifies(authority: Authority, path: tuple[Any, ...], index: int,
                                               mask: int) -> None:
    bundle = json.loads(ORIGINAL)
    node = bundle
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = flip_base64(node[path[-1]], index, mask)
    assert not verified(authority, to_json(bundle))


@FUZZ
@given(st.sampled_from(["note text", "signature"]), positions, masks)
def test_a_changed_checkpoint_never_verifies(authority: Authority, part: str, index: int, mask: int) -> None:
    bundle = json.loads(ORIGINAL)
    proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    text, signature_line = proof["checkpoint"]["envelope"].split("\n\n", 1)
    if part == "note text":
        text = flip(text.encode(), index, mask).decode("latin-1")
    else:
        dash_and_name, signature = signature_line.strip().rsplit(" ", 1)
        signature_line = f"{dash_and_name} {flip_base64(signature, index, mask)}\n"
    proof["checkpoint"]["envelope"] = f"{text}\n\n{signature_line}"
    assert not verified(authority, to_json(bundle))


def test_a_certificate_of_an_unknown_version_is_a_reason(authority: Authority) -> None:
    # Found by the test above: the library raised cryptography's InvalidVersion, which is not a ValueError.
    bundle = json.loads(ORIGINAL)
    material = bundle["verificationMaterial"]["certificate"]
    material["rawBytes"] = flip_base64(material["rawBytes"], 12, 0x01)  # version 3 (2) becomes 4 (3)
    parsed = parse_bundle(to_json(bundle))
    assert isinstance(parsed, str) and parsed.startswith("not a valid Sigstore bundle: InvalidVersion")
    assert not verified(authority, to_json(bundle))


def test_a_certificate_with_a_negative_serial_number_is_a_reason(authority: Authority) -> None:
    """Go's crypto/x509 parser.go (since Go 1.23), which cosign and sigstore-go use, refuses a negative serial."""
    bundle = json.loads(ORIGINAL)
    material = bundle["verificationMaterial"]["certificate"]
    der = base64.b64decode(material["rawBytes"])
    old, new = negative_serial(x509.load_der_x509_certificate(der))
    material["rawBytes"] = base64.b64encode(der.replace(old, new, 1)).decode()
    parsed = parse_bundle(to_json(bundle))
    assert not isinstance(parsed, str)
    signature, attestation = SigstoreBundleVerifier()._isolated(IMAGE, "sha256:" + "0" * 64, parsed, authority)
    assert attestation is None and signature is not None and not signature.verified
    assert signature.reason.startswith("the bundle's signing certificate cannot be used: serial number -")
