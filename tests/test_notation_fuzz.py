"""Fuzzing the notation envelope parsers (JWS and COSE_Sign1) with hypothesis.

Two properties:
- whatever bytes a registry serves, parsing and the raw signature check raise nothing but EnvelopeError, and
  a full check returns a result (never an exception);
- a mutation of any signed or protected byte (protected header, payload, signature, a certificate of the
  chain) never verifies, while a mutation of an unprotected header may: the oracle decodes both envelopes
  and knows which part changed.

CI runs the default profile; `make fuzz` selects the `fuzz` profile (HYPOTHESIS_PROFILE=fuzz) for many more
examples. The examples are not given here so that the profile decides.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider.config import build_config
from provider.devkit import notation
from provider.reference import parse_reference
from provider.stores.base import ResolvedImage
from provider.verifiers.base import SignatureResult
from provider.verifiers.notation.envelope import COSE_MEDIA_TYPE, JWS_MEDIA_TYPE, EnvelopeError, parse_envelope
from provider.verifiers.notation.timestamp import TimestampError, verify_timestamp
from provider.verifiers.notation.verifier import NotationVerifier, SignatureBlob
from tests.helpers import write_yaml

IDENTITY = notation.identity_with_intermediate("ec-256")
TARGET = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "ab" * 32, "size": 1234}
IMAGE = ResolvedImage(parse_reference(f"registry.example/app@{TARGET['digest']}"), TARGET["digest"],
                      TARGET["mediaType"], TARGET["size"], b"")
MEDIA = {"jws": JWS_MEDIA_TYPE, "cose": COSE_MEDIA_TYPE}
VALID = {kind: notation.sign(TARGET, IDENTITY, kind) for kind in MEDIA}
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("fuzz")
    (directory / "root.pem").write_bytes(IDENTITY.root_pem)
    policy = {"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["*"],
                                                   "signatureVerification": {"level": "strict"},
                                                   "trustStores": ["ca:acme"], "trustedIdentities": ["*"]}]}
    data = {"authorities": [{"name": "acme", "notation": {"trustStores": {"ca:acme": [str(directory / "root.pem")]},
                                                          "trustPolicy": {"inline": policy}}}]}
    return build_config(data, write_yaml(directory / "config.yaml", data)).authorities[0]


def check(authority: Any, kind: str, envelope: bytes) -> SignatureResult:
    """The full notation check of one envelope; it must return a result, whatever the bytes."""
    return NotationVerifier().check(IMAGE, SignatureBlob("sha256:" + "0" * 64, MEDIA[kind], envelope),
                                    authority.name, authority.notation)


def test_the_unmutated_envelopes_verify(authority: Any) -> None:
    """The baseline: without it the mutation properties below would hold vacuously."""
    for kind, envelope in VALID.items():
        result = check(authority, kind, envelope)
        assert result.verified is True, result.reason


# --- no input raises anything but EnvelopeError -------------------------------------------------------------

def parse_and_check(media_type: str, data: bytes) -> None:
    try:
        envelope = parse_envelope(media_type, data)
    except EnvelopeError as exc:
        assert str(exc)
        return
    assert isinstance(envelope.check_signature(), str)


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from([JWS_MEDIA_TYPE, COSE_MEDIA_TYPE]))
def test_arbitrary_bytes(data: bytes, media_type: str) -> None:
    parse_and_check(media_type, data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70)
    | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10)
JWS_HEADER_NAMES = ["alg", "crit", "cty", "io.cncf.notary.signingScheme", "io.cncf.notary.signingTime",
                    "io.cncf.notary.authenticSigningTime", "io.cncf.notary.expiry",
                    "io.cncf.notary.verificationPlugin", "io.cncf.notary.verificationPluginMinVersion"]
VALID_JWS = json.loads(VALID["jws"])
VALID_PROTECTED = json.loads(base64.urlsafe_b64decode(VALID_JWS["protected"] + "=="))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@FUZZ
@given(st.dictionaries(st.sampled_from(JWS_HEADER_NAMES), json_values, max_size=5),
       st.dictionaries(st.sampled_from(["x5c", "io.cncf.notary.timestampSignature", "io.cncf.notary.signingAgent"]),
                       json_values | st.lists(st.text(max_size=12), max_size=3), max_size=3),
       json_values, st.booleans())
def test_structured_jws(authority: Any, protected: dict[str, Any], header: dict[str, Any], payload: Any,
                        keep_payload: bool) -> None:
    """A real envelope with fuzzed protected values, unprotected values and payload."""
    raw = dict(VALID_JWS)
    headers = {**VALID_PROTECTED, **protected}
    if headers != VALID_PROTECTED:
        raw["protected"] = b64url(json.dumps(headers).encode())
    raw["header"] = {**VALID_JWS["header"], **header}
    if not keep_payload:
        raw["payload"] = b64url(json.dumps(payload).encode())
    data = json.dumps(raw).encode()
    parse_and_check(JWS_MEDIA_TYPE, data)
    if check(authority, "jws", data).verified:
        assert raw["protected"] == VALID_JWS["protected"] and raw["payload"] == VALID_JWS["payload"]
        assert raw["header"].get("x5c") == VALID_JWS["header"]["x5c"]


cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 70), max_value=2 ** 70) | st.floats()
    | st.text(max_size=20) | st.binary(max_size=40)
    | st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 18, 24, 55799]), st.integers() | st.text(max_size=8)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.integers(-3, 40) | st.text(max_size=8),
                                                                      children, max_size=4),
    max_leaves=10)
COSE_PROTECTED_LABELS = [1, 2, 3, "io.cncf.notary.signingScheme", "io.cncf.notary.signingTime",
                         "io.cncf.notary.authenticSigningTime", "io.cncf.notary.expiry",
                         "io.cncf.notary.verificationPlugin"]
VALID_COSE = list(cbor2.loads(VALID["cose"]).value)


@FUZZ
@given(st.dictionaries(st.sampled_from(COSE_PROTECTED_LABELS), cbor_values, max_size=5),
       st.dictionaries(st.sampled_from([33, "io.cncf.notary.timestampSignature", "io.cncf.notary.signingAgent"]),
                       cbor_values, max_size=3),
       st.lists(cbor_values, min_size=0, max_size=6), st.booleans())
def test_structured_cose(authority: Any, protected: dict[Any, Any], unprotected: dict[Any, Any], shape: list[Any],
                         reshape: bool) -> None:
    """A real COSE_Sign1 with fuzzed header values, or a tag-18 message of the wrong shape."""
    original = cbor2.loads(VALID_COSE[0])
    headers = {**original, **protected}
    protected_bytes = VALID_COSE[0] if headers == original else cbor2.dumps(headers)
    merged = {**VALID_COSE[1], **unprotected}
    message = [protected_bytes, merged, VALID_COSE[2], VALID_COSE[3]]
    data = cbor2.dumps(cbor2.CBORTag(18, shape if reshape else message))
    parse_and_check(COSE_MEDIA_TYPE, data)
    if check(authority, "cose", data).verified:
        assert not reshape and protected_bytes == VALID_COSE[0] and merged.get(33) == VALID_COSE[1][33]


# --- mutations of signed or protected bytes never verify ----------------------------------------------------

def jws_parts(data: bytes) -> dict[str, Any] | None:
    """What the JWS signature and chain protect, decoded independently of the parser under test."""
    try:
        raw = json.loads(data)
        header = raw.get("header") or {}
        return {"signed": (raw["protected"], raw["payload"]),
                "signature": base64.urlsafe_b64decode(raw["signature"] + "=" * (-len(raw["signature"]) % 4)),
                "chain": [base64.b64decode(c) for c in header.get("x5c") or []]}
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, RecursionError):
        return None


def cose_parts(data: bytes) -> dict[str, Any] | None:
    try:
        message = cbor2.loads(data)
        protected, unprotected, payload, signature = message.value
        chain = unprotected.get(33)
        return {"signed": (message.tag, protected, payload), "signature": signature,
                "chain": [chain] if isinstance(chain, bytes) else list(chain or [])}
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, cbor2.CBORDecodeError):
        return None


PARTS = {"jws": jws_parts, "cose": cose_parts}


def signed_view(certificate: Any) -> Any:
    """What an issuer's signature covers in a certificate: the TBS bytes, the algorithm and the signature value.

    The unused-bits count of the outer signature BIT STRING is not signed, and cryptography tolerates it, so
    a certificate that differs only there is the same signed certificate."""
    try:
        parsed = x509.load_der_x509_certificate(certificate)
        return parsed.tbs_certificate_bytes, parsed.signature_algorithm_oid, parsed.signature
    except Exception:  # the oracle must not fail where the verifier may (InvalidVersion, …): compare raw bytes
        return certificate


def protected(parts: dict[str, Any] | None) -> Any:
    return parts and {**parts, "chain": [signed_view(c) for c in parts["chain"]]}


@FUZZ
@given(st.sampled_from(sorted(MEDIA)), st.data())
def test_a_flipped_byte_anywhere_verifies_only_if_nothing_protected_changed(authority: Any, kind: str,
                                                                          data: st.DataObject) -> None:
    original = VALID[kind]
    index = data.draw(st.integers(0, len(original) - 1))
    mask = data.draw(st.integers(1, 255))
    mutated = original[:index] + bytes([original[index] ^ mask]) + original[index + 1:]
    result = check(authority, kind, mutated)
    if protected(PARTS[kind](mutated)) != protected(PARTS[kind](original)):
        assert result.verified is False, f"byte {index} ^ {mask:#x} changed protected content but verified"


COMPONENTS = ["protected", "payload", "signature", "certificate"]


def mutate_component(kind: str, component: str, position: int, mask: int, cert: int) -> bytes:
    """The valid envelope with one byte of one decoded signed or protected component changed."""
    def flip(value: bytes) -> bytes:
        at = position % len(value)
        return value[:at] + bytes([value[at] ^ mask]) + value[at + 1:]

    if kind == "jws":
        raw = dict(VALID_JWS)
        if component == "certificate":
            chain = list(raw["header"]["x5c"])
            chain[cert % len(chain)] = base64.b64encode(flip(base64.b64decode(chain[cert % len(chain)]))).decode()
            raw["header"] = {**raw["header"], "x5c": chain}
        else:
            field = component
            decoded = base64.urlsafe_b64decode(raw[field] + "=" * (-len(raw[field]) % 4))
            raw[field] = b64url(flip(decoded))
        return json.dumps(raw).encode()
    protected, unprotected, payload, signature = VALID_COSE
    if component == "protected":
        protected = flip(protected)
    elif component == "payload":
        payload = flip(payload)
    elif component == "signature":
        signature = flip(signature)
    else:
        chain = list(unprotected[33])
        chain[cert % len(chain)] = flip(chain[cert % len(chain)])
        unprotected = {**unprotected, 33: chain}
    return cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, signature]))


@FUZZ
@given(st.sampled_from(sorted(MEDIA)), st.sampled_from(COMPONENTS), st.integers(0, 10_000), st.integers(1, 255),
       st.integers(0, 2))
def test_a_mutated_signed_or_protected_component_never_verifies(authority: Any, kind: str, component: str,
                                                                position: int, mask: int, cert: int) -> None:
    mutated = mutate_component(kind, component, position, mask, cert)
    result = check(authority, kind, mutated)
    if protected(PARTS[kind](mutated)) == protected(PARTS[kind](VALID[kind])):
        return  # only the unsigned unused-bits count of a certificate's signature changed
    assert result.verified is False, f"{kind} {component} byte {position} ^ {mask:#x} still verified"


@pytest.mark.parametrize("kind", sorted(MEDIA))
def test_a_certificate_of_an_unknown_version_is_a_reason(authority: Any, kind: str) -> None:
    # Found by the test above: byte 12 of the DER is the version; cryptography raises InvalidVersion, which is
    # not a ValueError, and it escaped the envelope parser.
    result = check(authority, kind, mutate_component(kind, "certificate", 12, 0x01, 0))
    assert result.verified is False and "does not parse" in result.reason, result.reason


@FUZZ
@given(st.sampled_from(sorted(MEDIA)), st.text(max_size=40))
def test_an_unprotected_header_may_change(authority: Any, kind: str, agent: str) -> None:
    """The oracle's other side: the signing agent is unprotected, so changing it keeps the signature valid."""
    if kind == "jws":
        raw = dict(VALID_JWS, header={**VALID_JWS["header"], "io.cncf.notary.signingAgent": agent})
        envelope = json.dumps(raw).encode()
    else:
        protected, unprotected, payload, signature = VALID_COSE
        envelope = cbor2.dumps(cbor2.CBORTag(18, [protected, {**unprotected, "io.cncf.notary.signingAgent": agent},
                                                  payload, signature]))
    assert check(authority, kind, envelope).verified is True


@pytest.fixture(scope="module")
def timestamping_authority(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Like `authority`, with a tsa store, so an envelope's timestamp token is always parsed and checked."""
    directory = tmp_path_factory.mktemp("fuzz-tsa")
    (directory / "root.pem").write_bytes(IDENTITY.root_pem)
    policy = {"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["*"],
                                                   "signatureVerification": {"level": "strict"},
                                                   "trustStores": ["ca:acme", "tsa:acme"],
                                                   "trustedIdentities": ["*"]}]}
    stores = {"ca:acme": [str(directory / "root.pem")], "tsa:acme": [str(directory / "root.pem")]}
    data = {"authorities": [{"name": "acme", "notation": {"trustStores": stores, "trustPolicy": {"inline": policy}}}]}
    return build_config(data, write_yaml(directory / "config.yaml", data)).authorities[0]


TIMESTAMP_TOKEN = "io.cncf.notary.timestampSignature"


@FUZZ
@given(st.sampled_from(sorted(MEDIA)), st.binary(max_size=600) | st.builds(
    lambda prefix, rest: prefix + rest, st.sampled_from([b"\x30\x82", b"\x30\x80", b"\x30\x03\x06\x01"]),
    st.binary(max_size=300)))
def test_a_garbage_timestamp_token_is_a_reason_not_an_exception(timestamping_authority: Any, kind: str,
                                                               token: bytes) -> None:
    """The token sits in the unprotected header: anyone can replace it, so it must never crash the check."""
    if not token:
        return
    if kind == "jws":
        raw = dict(VALID_JWS, header={**VALID_JWS["header"], TIMESTAMP_TOKEN: base64.b64encode(token).decode()})
        envelope = json.dumps(raw).encode()
    else:
        protected, unprotected, payload, signature = VALID_COSE
        envelope = cbor2.dumps(cbor2.CBORTag(18, [protected, {**unprotected, TIMESTAMP_TOKEN: token}, payload,
                                                  signature]))
    result = check(timestamping_authority, kind, envelope)
    assert result.verified is False
    assert result.reason.startswith("timestamp countersignature rejected: ")


# --- one property per Notary Project certificate and envelope rule ------------------------------------------
# The oracles restate the upstream rules as tables, independently of certrules.py.

KEY_USAGE_BITS = ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                  "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"]
# notation-core-go x509/helper.go validateLeafKeyUsage: digitalSignature required, nonRepudiation allowed.
LEAF_KEY_USAGE_ALLOWED = {"digital_signature", "content_commitment"}
EKUS = {"serverAuth": ExtendedKeyUsageOID.SERVER_AUTH, "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
        "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING, "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
        "timeStamping": ExtendedKeyUsageOID.TIME_STAMPING, "OCSPSigning": ExtendedKeyUsageOID.OCSP_SIGNING,
        "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE, "private": x509.ObjectIdentifier("1.3.6.1.4.1.99999.7")}
# notation-core-go validateCodeSigningExtendedKeyUsage's excluded list.
EXCLUDED_EKUS = {"serverAuth", "clientAuth", "emailProtection", "timeStamping", "OCSPSigning"}
FEW = settings(FUZZ, max_examples=40)


def check_identity(authority_for: Any, identity: notation.SigningIdentity, envelope: bytes) -> SignatureResult:
    return check(authority_for(identity), "jws", envelope)


@pytest.fixture(scope="module")
def authority_for(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """An authority trusting the given identity's root, at level audit: only integrity failures refuse."""
    directory = tmp_path_factory.mktemp("fuzz-rules")

    def make(identity: notation.SigningIdentity) -> Any:
        (directory / "root.pem").write_bytes(identity.root_pem)
        policy = {"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["*"],
                                                       "signatureVerification": {"level": "audit"},
                                                       "trustStores": ["ca:acme"], "trustedIdentities": ["*"]}]}
        data = {"authorities": [{"name": "acme", "notation": {
            "trustStores": {"ca:acme": [str(directory / "root.pem")]}, "trustPolicy": {"inline": policy}}}]}
        return build_config(data, write_yaml(directory / "config.yaml", data)).authorities[0]
    return make


@FEW
@given(st.sets(st.sampled_from(KEY_USAGE_BITS), max_size=4), st.booleans())
def test_leaf_key_usage_property(authority_for: Any, bits: set[str], critical: bool) -> None:
    if {"encipher_only", "decipher_only"} & bits:
        bits = bits | {"key_agreement"}  # X.509 gives those bits meaning only with keyAgreement
    identity = notation.identity_with_intermediate("ec-256", notation.CertSpec(
        "Acme Release Signer", key_usage=tuple(sorted(bits)), key_usage_critical=critical))
    expected = bool(bits) and critical and "digital_signature" in bits and bits <= LEAF_KEY_USAGE_ALLOWED
    result = check_identity(authority_for, identity, notation.sign(TARGET, identity))
    assert result.verified is expected, (bits, critical, result.reason)


@FEW
@given(st.sets(st.sampled_from(sorted(EKUS)), max_size=3))
def test_leaf_extended_key_usage_property(authority_for: Any, names: set[str]) -> None:
    identity = notation.identity_with_intermediate("ec-256", notation.CertSpec(
        "Acme Release Signer", ekus=tuple(EKUS[name] for name in sorted(names))))
    result = check_identity(authority_for, identity, notation.sign(TARGET, identity))
    assert result.verified is not (names & EXCLUDED_EKUS), (names, result.reason)


@FEW
@given(st.sampled_from(sorted(MEDIA)), st.integers(-7200, 7200))
def test_expiry_after_signing_time_property(authority: Any, kind: str, offset: int) -> None:
    """validateSigningAndExpiryTime: only an expiry strictly after the signing time can verify (both lie in the
    future here, so the expiry validation itself never objects)."""
    signed_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(hours=3)
    envelope = notation.sign(TARGET, IDENTITY, kind, signing_time=signed_at,
                             expiry=signed_at + datetime.timedelta(seconds=offset))
    assert check(authority, kind, envelope).verified is (offset > 0)


TSA_EKUS = {"timeStamping": ExtendedKeyUsageOID.TIME_STAMPING, "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
            "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}


@FEW
@given(st.sets(st.sampled_from(sorted(TSA_EKUS)), max_size=2), st.booleans(), st.booleans())
def test_timestamp_token_property(names: set[str], critical: bool, ess: bool) -> None:
    """tspclient-go SignedToken.Verify: a token counts only with an ESS signingCertificateV2 attribute and a TSA
    certificate whose EKU extension is critical and names exactly timeStamping."""
    tsa = notation.tsa_identity(notation.CertSpec("Acme Timestamping Authority",
                                                  ekus=tuple(TSA_EKUS[n] for n in sorted(names)),
                                                  eku_critical=critical))
    token = notation.timestamp_token(b"signature", tsa, ess=ess)
    expected = ess and critical and names == {"timeStamping"}
    try:
        verify_timestamp(token, b"signature", [tsa.root])
    except TimestampError:
        assert not expected
    else:
        assert expected
