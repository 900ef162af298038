"""Rekor bundles on cosign signatures and attestations: a bundle must bind exactly the signature it rides on.

Every bundle here carries a valid SET from a test log key, so the only thing that can reject it is the
body: the entry must record this signature, this key or certificate and this content, for each entry
kind cosign and Rekor produce (hashedrekord, intoto 0.0.1/0.0.2, dsse).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from provider.devkit import cosign, rekor
from provider.devkit.pki import make_ca
from tests.test_cosign import REG, code_signing_cert, keyed, own_image, verify, write_key

SLSA = "https://slsa.dev/provenance/v1"
BUNDLE = "dev.sigstore.cosign/bundle"
CERTIFICATE = "dev.sigstore.cosign/certificate"
NOW = int(datetime.datetime.now(datetime.UTC).timestamp())


@pytest.fixture
def log_key(tmp_path: Path) -> ec.EllipticCurvePrivateKey:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "rekor.pub").write_bytes(cosign.public_pem(key))
    return key


def signed_image(tmp_path: Path, key: Any, bundle: Callable[[bytes, bytes], str] | None) -> None:
    """An image with one cosign signature by `key`; `bundle(payload, signature)` makes its annotation."""
    writer, digest = own_image(tmp_path)
    body = cosign.payload(digest, f"{REG}/own")
    signature = cosign.sign(key, body)
    notes = {BUNDLE: bundle(body, signature)} if bundle else {}
    cosign.attach(writer, digest, [cosign.signature_layer(writer, body, signature, notes)])


def test_tlog_optional_with_an_invalid_bundle_is_a_failed_signature(tmp_path: Path, log_key: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    other = cosign.payload("sha256:" + "e" * 64, f"{REG}/own")
    # A valid entry, but for another signature: present and wrong, so the signature fails.
    signed_image(tmp_path, key, lambda _body, _sig: rekor.hashedrekord_bundle(
        log_key, other, cosign.sign(key, other), cosign.public_pem(key), NOW))
    facts = verify(tmp_path, f"{REG}/own:v1", [keyed("a", write_key(tmp_path, key), tlog="optional",
                                                     rekorKeys=[str(tmp_path / "rekor.pub")])])
    assert facts["verified"] is False
    assert facts["signatures"][0]["reason"] == ("transparency log entry rejected: the Rekor entry records a "
                                                "different payload hash")


def test_tlog_optional_with_a_forged_set_is_a_failed_signature(tmp_path: Path, log_key: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    forger = ec.generate_private_key(ec.SECP256R1())

    def forged(body: bytes, signature: bytes) -> str:
        text = rekor.hashedrekord_bundle(forger, body, signature, cosign.public_pem(key), NOW)
        return text.replace(rekor.key_id(forger.public_key()), rekor.key_id(log_key.public_key()))

    signed_image(tmp_path, key, forged)
    facts = verify(tmp_path, f"{REG}/own:v1", [keyed("a", write_key(tmp_path, key),
                                                     rekorKeys=[str(tmp_path / "rekor.pub")])])
    assert facts["verified"] is False
    assert "the signed entry timestamp does not verify with Rekor key" in facts["signatures"][0]["reason"]


def test_tlog_optional_without_rekor_keys_notes_the_unchecked_bundle(tmp_path: Path, log_key: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signed_image(tmp_path, key, lambda body, sig: rekor.hashedrekord_bundle(log_key, body, sig,
                                                                            cosign.public_pem(key), NOW))
    facts = verify(tmp_path, f"{REG}/own:v1", [keyed("a", write_key(tmp_path, key))])
    assert facts["verified"] is True
    assert facts["signatures"][0]["warnings"] == [
        "a Rekor bundle is attached but the authority has no rekorKeys to check it"]
    assert "tlog" not in facts["signatures"][0]


def test_a_valid_bundle_still_verifies_under_optional(tmp_path: Path, log_key: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signed_image(tmp_path, key, lambda body, sig: rekor.hashedrekord_bundle(log_key, body, sig,
                                                                            cosign.public_pem(key), NOW, 7))
    facts = verify(tmp_path, f"{REG}/own:v1", [keyed("a", write_key(tmp_path, key),
                                                     rekorKeys=[str(tmp_path / "rekor.pub")])])
    assert facts["verified"] is True and facts["signatures"][0]["tlog"]["logIndex"] == 7


@pytest.mark.parametrize(("case", "reason"), [
    ("same payload, another signature", "records a different signature"),
    ("same payload, another key", "records a different signature"),
    ("another key's entry naming our key", "records a different signature"),
    ("our signature, another key recorded", "records a different signing key"),
    ("another kind", "is of kind intoto, which records a DSSE envelope, but this is not a DSSE signature"),
])
@pytest.mark.parametrize("tlog", ["optional", "required"])
def test_hashedrekord_entry_from_another_signature_is_rejected(tmp_path: Path, log_key: Any, case: str,
                                                               reason: str, tlog: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    stranger = ec.generate_private_key(ec.SECP256R1())
    pem = cosign.public_pem(key)

    def entry(body: bytes, signature: bytes) -> str:
        if case == "same payload, another signature":  # ECDSA: signing again gives other valid bytes
            return rekor.hashedrekord_bundle(log_key, body, cosign.sign(key, body), pem, NOW)
        if case == "same payload, another key":
            return rekor.hashedrekord_bundle(log_key, body, cosign.sign(stranger, body),
                                             cosign.public_pem(stranger), NOW)
        if case == "another key's entry naming our key":
            return rekor.hashedrekord_bundle(log_key, body, cosign.sign(stranger, body), pem, NOW)
        if case == "our signature, another key recorded":
            return rekor.hashedrekord_bundle(log_key, body, signature, cosign.public_pem(stranger), NOW)
        envelope = cosign.attestation_envelope(key, "sha256:" + "a" * 64, SLSA, {})
        return rekor.entry_bundle(log_key, rekor.intoto_body(envelope, pem), NOW)

    signed_image(tmp_path, key, entry)
    facts = verify(tmp_path, f"{REG}/own:v1", [keyed("a", write_key(tmp_path, key), tlog=tlog,
                                                     rekorKeys=[str(tmp_path / "rekor.pub")])])
    assert facts["verified"] is False
    assert reason in facts["signatures"][0]["reason"], facts["signatures"][0]["reason"]


# --- keyless attestations: the entry kinds `cosign attest` has used ------------------------------------

ENTRY_KINDS: dict[str, Callable[[bytes, bytes], dict[str, Any]]] = {
    "intoto/0.0.1": lambda env, pem: rekor.intoto_body(env, pem, "0.0.1"),
    "intoto/0.0.2": lambda env, pem: rekor.intoto_body(env, pem, "0.0.2"),
    "dsse/0.0.1": rekor.dsse_body,
}


def keyless_attestation(tmp_path: Path, log_key: Any, entry_for: Callable[[bytes, bytes, bytes], str]
                        ) -> dict[str, Any]:
    """A `.att` signed with a short-lived code-signing certificate; `entry_for(envelope, other, pem)` makes
    the bundle (`other` is a second envelope by the same certificate, for binding tests)."""
    ca = make_ca("test Fulcio", days=3650, backdate_days=30)
    (tmp_path / "fulcio.pem").write_bytes(ca.cert_pem)
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    key, cert_pem = code_signing_cert(ca, "builder@ci.example", start, start + datetime.timedelta(minutes=10))
    writer, digest = own_image(tmp_path)
    envelope = cosign.attestation_envelope(key, digest, SLSA, {"builder": {"id": "https://ci.example"}})
    other = cosign.attestation_envelope(key, digest, SLSA, {"builder": {"id": "https://elsewhere.example"}})
    cosign.attach_attestations(writer, digest, [envelope], [{CERTIFICATE: cert_pem.decode(),
                                                             BUNDLE: entry_for(envelope, other, cert_pem)}])
    keyless = {"fulcioRoots": [str(tmp_path / "fulcio.pem")], "rekorKeys": [str(tmp_path / "rekor.pub")],
               "identities": [{"subject": "builder@ci.example"}]}
    facts = verify(tmp_path, f"{REG}/own:v1", [{"name": "ci", "cosign": {"keyless": keyless}}])
    (attestation,) = facts["attestations"]
    return attestation


def in_window() -> int:
    return int((datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1, minutes=-5)).timestamp())


@pytest.mark.parametrize("kind", sorted(ENTRY_KINDS))
def test_keyless_attestation_verifies_with_each_entry_kind(tmp_path: Path, log_key: Any, kind: str) -> None:
    attestation = keyless_attestation(tmp_path, log_key, lambda env, _other, pem: rekor.entry_bundle(
        log_key, ENTRY_KINDS[kind](env, pem), in_window()))
    assert attestation["verified"] is True, attestation["reason"]
    assert attestation["predicate"] == {"builder": {"id": "https://ci.example"}}


@pytest.mark.parametrize(("kind", "reason"), [
    ("intoto/0.0.1", "records a different DSSE envelope"),
    ("intoto/0.0.2", "records a different DSSE payload"),
    ("dsse/0.0.1", "records a different DSSE payload"),
])
def test_keyless_attestation_entry_for_another_envelope_is_rejected(tmp_path: Path, log_key: Any, kind: str,
                                                                    reason: str) -> None:
    attestation = keyless_attestation(tmp_path, log_key, lambda _env, other, pem: rekor.entry_bundle(
        log_key, ENTRY_KINDS[kind](other, pem), in_window()))
    assert attestation["verified"] is False
    assert reason in attestation["reason"], attestation["reason"]


@pytest.mark.parametrize("kind", ["intoto/0.0.2", "dsse/0.0.1"])
def test_dsse_entry_with_our_payload_but_another_signature_is_rejected(tmp_path: Path, log_key: Any,
                                                                       kind: str) -> None:
    def swapped(env: bytes, other: bytes, pem: bytes) -> str:
        # Our payload hash, but the signatures of another envelope by the same certificate.
        body, foreign = ENTRY_KINDS[kind](env, pem), ENTRY_KINDS[kind](other, pem)
        if kind.startswith("intoto"):
            body["spec"]["content"]["envelope"] = foreign["spec"]["content"]["envelope"]
        else:
            body["spec"]["signatures"] = foreign["spec"]["signatures"]
        return rekor.entry_bundle(log_key, body, in_window())

    attestation = keyless_attestation(tmp_path, log_key, swapped)
    assert attestation["verified"] is False
    assert "records a different signature" in attestation["reason"], attestation["reason"]


def test_simple_signing_signature_with_a_dsse_entry_is_rejected(tmp_path: Path, log_key: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signed_image(tmp_path, key, lambda body, _sig: rekor.entry_bundle(
        log_key, rekor.dsse_body(cosign.attestation_envelope(key, "sha256:" + "b" * 64, SLSA, {}),
                                 cosign.public_pem(key)), NOW))
    facts = verify(tmp_path, f"{REG}/own:v1", [keyed("a", write_key(tmp_path, key),
                                                     rekorKeys=[str(tmp_path / "rekor.pub")])])
    assert facts["verified"] is False
    assert facts["signatures"][0]["reason"] == ("transparency log entry rejected: the Rekor entry is of kind dsse, "
                                                "which records a DSSE envelope, but this is not a DSSE signature")
