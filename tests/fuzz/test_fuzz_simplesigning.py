"""Fuzzing simple-signing payloads and signatures: cosign payloads, sigstore-json lookaside blobs and
OpenPGP signed messages.

Properties: any input gives a result with a reason, never an exception; changing any signed byte never
verifies; a mutated OpenPGP message verifies only when its signed literal data is unchanged (the literal
packet's file name and date are not signed, so they may change).
"""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path

import pysequoia
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import example, given
from hypothesis import strategies as st

from provider.config import AttestationAuthority, AttestationKey, CosignAuthority, PKIConfig, PublicKey, SignedIdentity
from provider.devkit import cosign
from provider.devkit.pki import make_ca
from provider.reference import parse_reference
from provider.stores.base import ResolvedImage
from provider.verifiers.cosign import COSIGN_IDENTITY, check_payload
from provider.verifiers.signers import Rejected, SignedBlob, authenticate
from provider.verifiers.simplesigning import ATOMIC_TYPE, SIGSTORE_JSON_MAGIC, SimpleSigningVerifier
from tests.fuzz.strategies_signed import FUZZ, flip, json_values, masks, maybe_base64, positions, to_json
from tests.test_cosign import REG, code_signing_cert, keyed, own_image, verify, write_key

DIGEST = "sha256:" + "d" * 64
IMAGE = ResolvedImage(parse_reference(f"registry.example/app@{DIGEST}"), DIGEST,
                      "application/vnd.oci.image.manifest.v1+json", 0, b"")
KEY = ec.generate_private_key(ec.SECP256R1())
PAYLOAD = cosign.payload(DIGEST, "registry.example/app")
SIGNATURE = cosign.sign(KEY, PAYLOAD)
COSIGN = CosignAuthority(public_keys=(PublicKey("fuzz.pub", KEY.public_key()),))

PGP = pysequoia.Tsk.generate("Fuzz <fuzz@sigwarden.test>")
ATOMIC = json.dumps({"critical": {"type": ATOMIC_TYPE, "image": {"docker-manifest-digest": DIGEST},
                                  "identity": {"docker-reference": "registry.example/app:v1"}},
                     "optional": {}}).encode()
MESSAGE = pysequoia.sign(PGP.signer(), ATOMIC, armor=False)
KRITIS = AttestationAuthority(keys=(
    AttestationKey("fuzz-pgp", "pgp", pgp=PGP.extract_certificate()),
    AttestationKey("fuzz-pkix", "pkix", pkix=PublicKey("fuzz.pub", KEY.public_key()))),
    # PAYLOAD names only the repository, as cosign writes it: containers/image needs matchRepository for that.
    signed_identity=SignedIdentity("matchRepository"))
SIGSTORE_JSON = SIGSTORE_JSON_MAGIC + json.dumps({
    "mimeType": "application/vnd.dev.cosign.simplesigning.v1+json",
    "payload": base64.b64encode(PAYLOAD).decode(),
    "annotations": {"dev.cosignproject.cosign/signature": base64.b64encode(SIGNATURE).decode()}}).encode()


CA = make_ca("fuzz code signing CA", days=3650, backdate_days=1)
_now = datetime.datetime.now(datetime.UTC)
LEAF_KEY, LEAF_PEM = code_signing_cert(CA, "builder@fuzz.example", _now - datetime.timedelta(hours=1),
                                       _now + datetime.timedelta(days=30))
LEAF_SIGNATURE = cosign.sign(LEAF_KEY, PAYLOAD)
PKI = CosignAuthority(pki=PKIConfig(roots=(CA.cert,), intermediates=(), identities=()))


def pki_accepts(certificate_pem: bytes) -> bool:
    try:
        authenticate(SignedBlob(PAYLOAD, LEAF_SIGNATURE, certificate_pem.decode("latin-1")), "fuzz", PKI, "")
    except Rejected:
        return False
    return True


def cosign_accepts(payload: bytes, signature: bytes = SIGNATURE) -> bool:
    try:
        authenticate(SignedBlob(payload, signature), "fuzz", COSIGN,
                     check_payload(payload, IMAGE, COSIGN_IDENTITY["ignore"]))
    except Rejected:
        return False
    return True


def lookaside_verifies(blob: bytes) -> bool:
    result = SimpleSigningVerifier().check_blob(IMAGE, blob, "signature-1", "kritis", KRITIS)
    assert result.verified or result.reason
    return result.verified


def test_the_originals_verify() -> None:
    assert cosign_accepts(PAYLOAD)
    assert pki_accepts(LEAF_PEM)
    assert lookaside_verifies(MESSAGE)
    assert lookaside_verifies(SIGSTORE_JSON)


@FUZZ
@given(st.binary(max_size=2048) | json_values.map(to_json) | st.fixed_dictionaries({
    "critical": json_values | st.fixed_dictionaries({
        "type": st.just("cosign container image signature") | json_values,
        "image": json_values | st.fixed_dictionaries({"docker-manifest-digest": st.just(DIGEST) | json_values}),
        "identity": json_values | st.fixed_dictionaries({"docker-reference": json_values})}),
    "optional": json_values}).map(to_json))
@example(b'{"critical":{"type":"","image":{"docker-manifest-digest":""},"identity":[null]}}')  # was AttributeError
@example(b'{"critical":{"type":"","image":{"docker-manifest-digest":""},"identity":{"docker-reference":[1]}}}')
def test_payloads_give_a_reason_never_an_exception(payload: bytes) -> None:
    for docker_reference in COSIGN_IDENTITY.values():
        assert isinstance(check_payload(payload, IMAGE, docker_reference), str)
    assert not cosign_accepts(payload)  # no key signed it


@FUZZ
@given(positions, masks)
def test_a_changed_payload_byte_never_verifies(index: int, mask: int) -> None:
    assert not cosign_accepts(flip(PAYLOAD, index, mask))


def certificate_with_flip(index: int, mask: int) -> bytes:
    der = base64.b64decode(LEAF_PEM.decode().split("-----")[2])
    mutated = base64.b64encode(flip(der, index, mask)).decode()
    return b"-----BEGIN CERTIFICATE-----\n" + mutated.encode() + b"\n-----END CERTIFICATE-----\n"


@FUZZ
@given(positions, masks)
def test_a_changed_certificate_byte_verifies_only_when_the_signed_certificate_is_unchanged(index: int,
                                                                                         mask: int) -> None:
    mutated = certificate_with_flip(index, mask)
    if pki_accepts(mutated):
        # The unused-bits count of the outer signature BIT STRING is not signed, and cryptography tolerates it.
        original, changed = (x509.load_pem_x509_certificate(pem) for pem in (LEAF_PEM, mutated))
        assert changed.tbs_certificate_bytes == original.tbs_certificate_bytes
        assert changed.signature == original.signature


def test_a_certificate_of_an_unknown_version_is_a_reason() -> None:
    # Found by the test above: byte 12 of the DER is the version number; cryptography raises InvalidVersion.
    with pytest.raises(Rejected, match="certificate does not parse"):
        authenticate(SignedBlob(PAYLOAD, LEAF_SIGNATURE, certificate_with_flip(12, 0x01).decode()), "fuzz", PKI, "")


def test_a_certificate_with_two_subject_alternative_names_is_a_reason() -> None:
    # Found by the test above: cryptography raises DuplicateExtension (not a ValueError) on first access.
    der = base64.b64decode(LEAF_PEM.decode().split("-----")[2])
    eku = bytes.fromhex("0603551d25")  # the extendedKeyUsage OID, turned into a second subjectAltName
    doubled = der.replace(eku, bytes.fromhex("0603551d11"), 1)
    pem = b"-----BEGIN CERTIFICATE-----\n" + base64.b64encode(doubled) + b"\n-----END CERTIFICATE-----\n"
    with pytest.raises(Rejected, match="the signing certificate cannot be used: Duplicate"):
        authenticate(SignedBlob(PAYLOAD, LEAF_SIGNATURE, pem.decode()), "fuzz", PKI, "")


def test_a_certificate_key_on_an_unknown_curve_is_a_reason() -> None:
    # Its key does not load (UnsupportedAlgorithm): a reason, not an exception. The bounded certificate loader
    # reads every key when the chain is loaded, so the reason is given there.
    der = base64.b64decode(LEAF_PEM.decode().split("-----")[2])
    curve = der.index(bytes.fromhex("06082a8648ce3d030107"))  # the P-256 OID in the subject public key
    with pytest.raises(Rejected, match=r"certificate does not parse: Curve .* is not supported"):
        authenticate(SignedBlob(PAYLOAD, LEAF_SIGNATURE, certificate_with_flip(curve + 9, 0x01).decode()), "fuzz",
                     PKI, "")


@FUZZ
@given(positions, masks)
def test_a_changed_signature_byte_never_verifies(index: int, mask: int) -> None:
    assert not cosign_accepts(PAYLOAD, flip(SIGNATURE, index, mask))


@FUZZ
@given(st.binary(max_size=2048) | json_values.map(lambda v: SIGSTORE_JSON_MAGIC + to_json(v))
       | st.fixed_dictionaries({"payload": maybe_base64, "annotations": json_values | st.fixed_dictionaries(
           {"dev.cosignproject.cosign/signature": maybe_base64})}).map(lambda v: SIGSTORE_JSON_MAGIC + to_json(v)))
def test_lookaside_blobs_give_a_reason_never_an_exception(blob: bytes) -> None:
    assert not lookaside_verifies(blob)


@FUZZ
@given(positions, masks)
def test_a_flipped_sigstore_json_byte_verifies_only_when_payload_and_signature_are_unchanged(index: int,
                                                                                            mask: int) -> None:
    mutated = flip(SIGSTORE_JSON, index, mask)
    if lookaside_verifies(mutated):
        layer = json.loads(mutated[len(SIGSTORE_JSON_MAGIC):])
        assert base64.b64decode(layer["payload"]) == PAYLOAD
        assert base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"]) == SIGNATURE


@FUZZ
@given(positions, masks)
def test_a_flipped_openpgp_byte_verifies_only_when_the_literal_data_is_unchanged(index: int, mask: int) -> None:
    mutated = flip(MESSAGE, index, mask)
    if lookaside_verifies(mutated):
        signed = pysequoia.verify(bytes=mutated, store=lambda _ids: [PGP.extract_certificate()])
        assert signed.bytes == ATOMIC


def test_a_malformed_payload_next_to_a_valid_signature_does_not_sink_the_image(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    writer, digest = own_image(tmp_path)
    good = cosign.payload(digest, f"{REG}/own")
    odd = json.dumps({"critical": {"type": "cosign container image signature",
                                   "image": {"docker-manifest-digest": digest}, "identity": [None]}}).encode()
    cosign.attach(writer, digest, [cosign.signature_layer(writer, odd, cosign.sign(key, odd)),
                                   cosign.signature_layer(writer, good, cosign.sign(key, good))])
    facts = verify(tmp_path, f"{REG}/own:v1", [keyed("a", write_key(tmp_path, key))])
    assert facts["verified"] is True
    assert [s["reason"] for s in facts["signatures"]] == ["payload is not a simple-signing JSON document", ""]
