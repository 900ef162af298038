"""Notary Project signature envelopes, JWS (flattened JSON) and COSE_Sign1, read into one shape.

Only parsing and the raw signature check live here; trust decisions are the verifier's.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

JWS_MEDIA_TYPE = "application/jose+json"
COSE_MEDIA_TYPE = "application/cose"
PAYLOAD_CONTENT_TYPE = "application/vnd.cncf.notary.payload.v1+json"
SCHEME_X509 = "notary.x509"
SCHEME_SIGNING_AUTHORITY = "notary.x509.signingAuthority"

SIGNING_SCHEME = "io.cncf.notary.signingScheme"
SIGNING_TIME = "io.cncf.notary.signingTime"
AUTHENTIC_SIGNING_TIME = "io.cncf.notary.authenticSigningTime"
EXPIRY = "io.cncf.notary.expiry"
TIMESTAMP_SIGNATURE = "io.cncf.notary.timestampSignature"
SIGNING_AGENT = "io.cncf.notary.signingAgent"
PLUGIN_HEADERS = ("io.cncf.notary.verificationPlugin", "io.cncf.notary.verificationPluginMinVersion")
# Protected headers a verifier must understand when they are marked critical.
KNOWN_CRITICAL = {SIGNING_SCHEME, AUTHENTIC_SIGNING_TIME, EXPIRY, *PLUGIN_HEADERS}

# JWS names and COSE algorithm numbers, as (family, hash).
ALGORITHMS: dict[str | int, tuple[str, type[hashes.HashAlgorithm]]] = {
    "PS256": ("rsa-pss", hashes.SHA256), "PS384": ("rsa-pss", hashes.SHA384), "PS512": ("rsa-pss", hashes.SHA512),
    "ES256": ("ecdsa", hashes.SHA256), "ES384": ("ecdsa", hashes.SHA384), "ES512": ("ecdsa", hashes.SHA512),
    -37: ("rsa-pss", hashes.SHA256), -38: ("rsa-pss", hashes.SHA384), -39: ("rsa-pss", hashes.SHA512),
    -7: ("ecdsa", hashes.SHA256), -35: ("ecdsa", hashes.SHA384), -36: ("ecdsa", hashes.SHA512),
}
_CURVE_FOR_HASH = {hashes.SHA256: "secp256r1", hashes.SHA384: "secp384r1", hashes.SHA512: "secp521r1"}
_RSA_HASH_FOR_SIZE = ((2048, hashes.SHA256), (3072, hashes.SHA384), (4096, hashes.SHA512))


class EnvelopeError(ValueError):
    """The envelope is malformed; the message says what notation would report."""


@dataclass(frozen=True)
class TargetArtifact:
    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class Envelope:
    """Everything the verifier needs from one signature envelope."""

    format: str  # jws | cose
    algorithm: str | int
    signing_scheme: str
    signed: bytes  # the exact bytes the signature covers
    signature: bytes
    certificates: tuple[x509.Certificate, ...]  # leaf first
    target: TargetArtifact
    signing_time: datetime | None = None
    authentic_signing_time: datetime | None = None
    expiry: datetime | None = None
    timestamp_token: bytes = b""
    signing_agent: str = ""
    critical: tuple[str, ...] = ()
    payload: dict[str, Any] = field(default_factory=dict)
    verification_plugin: str = ""

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]

    def check_signature(self) -> str:
        """Empty when the signature verifies with the leaf key under an algorithm that fits it; else why not."""
        family, hash_type = ALGORITHMS[self.algorithm]
        key = self.leaf.public_key()
        if family == "rsa-pss":
            if not isinstance(key, rsa.RSAPublicKey):
                return f"algorithm {self.algorithm} does not match the signing certificate's {_key_name(key)} key"
            expected = next((h for size, h in _RSA_HASH_FOR_SIZE if key.key_size <= size), hashes.SHA512)
            if hash_type is not expected:
                return f"algorithm {self.algorithm} does not match an RSA-{key.key_size} signing key"
            try:
                key.verify(self.signature, self.signed, padding.PSS(padding.MGF1(hash_type()), hash_type.digest_size),
                           hash_type())
            except InvalidSignature:
                return "signature is not valid: the envelope was modified or signed by another key"
            return ""
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != _CURVE_FOR_HASH[hash_type]:
            return f"algorithm {self.algorithm} does not match the signing certificate's {_key_name(key)} key"
        size = (key.curve.key_size + 7) // 8
        if len(self.signature) != 2 * size:
            return "ECDSA signature has the wrong length"
        der = encode_dss_signature(int.from_bytes(self.signature[:size], "big"),
                                   int.from_bytes(self.signature[size:], "big"))
        try:
            key.verify(der, self.signed, ec.ECDSA(hash_type()))
        except InvalidSignature:
            return "signature is not valid: the envelope was modified or signed by another key"
        return ""


def _key_name(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    return type(key).__name__


def parse_envelope(media_type: str, data: bytes) -> Envelope:
    if media_type == JWS_MEDIA_TYPE:
        return _parse_jws(data)
    if media_type == COSE_MEDIA_TYPE:
        return _parse_cose(data)
    raise EnvelopeError(f"unsupported signature envelope media type {media_type!r}")


def _b64url(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeError(f"JWS {what} is missing")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"JWS {what} is not base64url") from None


def _time(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise EnvelopeError(f"{name} is not a valid time: {value!r}") from None


def _certificates(ders: Any) -> tuple[x509.Certificate, ...]:
    if not ders:
        raise EnvelopeError("the envelope carries no certificate chain (x5c / x5chain)")
    try:
        return tuple(x509.load_der_x509_certificate(der) for der in ders)
    except (ValueError, TypeError):
        raise EnvelopeError("a certificate of the envelope's chain does not parse") from None


def _target(payload_bytes: bytes) -> tuple[dict[str, Any], TargetArtifact]:
    try:
        payload = json.loads(payload_bytes)
        target = payload["targetArtifact"]
        artifact = TargetArtifact(str(target["mediaType"]), str(target["digest"]), int(target["size"]))
    except (ValueError, KeyError, TypeError):
        raise EnvelopeError("payload is not a Notary Project payload with targetArtifact") from None
    return payload, artifact


def _common_checks(protected: Mapping[Any, Any], critical: list[Any], content_type: Any, algorithm: Any) -> str:
    if algorithm not in ALGORITHMS:
        raise EnvelopeError(f"signature algorithm {algorithm!r} is not supported")
    if content_type != PAYLOAD_CONTENT_TYPE:
        raise EnvelopeError(f"payload content type {content_type!r} is not {PAYLOAD_CONTENT_TYPE!r}")
    scheme = protected.get(SIGNING_SCHEME)
    if scheme not in (SCHEME_X509, SCHEME_SIGNING_AUTHORITY):
        raise EnvelopeError(f"signing scheme {scheme!r} is not supported")
    required = {SIGNING_SCHEME} | ({EXPIRY} if EXPIRY in protected else set()) | (
        {AUTHENTIC_SIGNING_TIME} if scheme == SCHEME_SIGNING_AUTHORITY else set())
    missing = required - set(critical)
    if missing:
        raise EnvelopeError(f"headers {sorted(missing)} must be marked critical")
    unknown = [c for c in critical if c not in KNOWN_CRITICAL]
    if unknown:
        raise EnvelopeError(f"critical headers {unknown} are not understood")
    absent = [c for c in critical if c not in protected]
    if absent:
        raise EnvelopeError(f"critical headers {absent} are not in the protected header")
    if scheme == SCHEME_X509 and SIGNING_TIME not in protected:
        raise EnvelopeError("notary.x509 signatures need io.cncf.notary.signingTime")
    if scheme == SCHEME_SIGNING_AUTHORITY and AUTHENTIC_SIGNING_TIME not in protected:
        raise EnvelopeError("signingAuthority signatures need io.cncf.notary.authenticSigningTime")
    return str(scheme)


def _parse_jws(data: bytes) -> Envelope:
    try:
        raw = json.loads(data)
        protected_b64, payload_b64, signature_b64 = raw["protected"], raw["payload"], raw["signature"]
        header = raw.get("header") or {}
    except (ValueError, KeyError, TypeError):
        raise EnvelopeError("not a JWS JSON serialization (protected, payload, signature)") from None
    try:
        protected = json.loads(_b64url(protected_b64, "protected header"))
    except ValueError:
        raise EnvelopeError("JWS protected header is not JSON") from None
    if not isinstance(protected, dict) or not isinstance(header, dict):
        raise EnvelopeError("JWS headers must be JSON objects")
    critical = protected.get("crit") or []
    scheme = _common_checks(protected, critical, protected.get("cty"), protected.get("alg"))
    payload_bytes = _b64url(payload_b64, "payload")
    payload, target = _target(payload_bytes)
    certificates = _certificates([base64.b64decode(c) for c in header.get("x5c") or []])
    return Envelope(
        format="jws", algorithm=protected["alg"], signing_scheme=scheme,
        signed=f"{protected_b64}.{payload_b64}".encode(), signature=_b64url(signature_b64, "signature"),
        certificates=certificates, target=target, signing_time=_time(protected.get(SIGNING_TIME), SIGNING_TIME),
        authentic_signing_time=_time(protected.get(AUTHENTIC_SIGNING_TIME), AUTHENTIC_SIGNING_TIME),
        expiry=_time(protected.get(EXPIRY), EXPIRY),
        timestamp_token=base64.b64decode(header[TIMESTAMP_SIGNATURE]) if header.get(TIMESTAMP_SIGNATURE) else b"",
        signing_agent=str(header.get(SIGNING_AGENT) or header.get("io.cncf.notary.SigningAgent") or ""),
        critical=tuple(critical), payload=payload, verification_plugin=str(protected.get(PLUGIN_HEADERS[0]) or ""),
    )


def _parse_cose(data: bytes) -> Envelope:
    try:
        message = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError):
        raise EnvelopeError("not CBOR") from None
    if not isinstance(message, cbor2.CBORTag) or message.tag != 18 or len(message.value) != 4:
        raise EnvelopeError("not a COSE_Sign1 message (CBOR tag 18)")
    protected_bytes, unprotected, payload_bytes, signature = message.value
    try:
        protected = cbor2.loads(protected_bytes)
    except (cbor2.CBORDecodeError, ValueError):
        raise EnvelopeError("COSE protected header is not CBOR") from None
    if not isinstance(protected, Mapping) or not isinstance(unprotected, Mapping) or not isinstance(payload_bytes,
                                                                                                     bytes):
        raise EnvelopeError("COSE headers must be maps and the payload attached")
    critical = list(protected.get(2) or [])
    scheme = _common_checks(protected, critical, protected.get(3), protected.get(1))
    payload, target = _target(payload_bytes)
    chain = unprotected.get(33)
    certificates = _certificates([chain] if isinstance(chain, bytes) else list(chain or []))
    signed = cbor2.dumps(["Signature1", protected_bytes, b"", payload_bytes])
    return Envelope(
        format="cose", algorithm=protected[1], signing_scheme=scheme, signed=signed, signature=signature,
        certificates=certificates, target=target, signing_time=_time(protected.get(SIGNING_TIME), SIGNING_TIME),
        authentic_signing_time=_time(protected.get(AUTHENTIC_SIGNING_TIME), AUTHENTIC_SIGNING_TIME),
        expiry=_time(protected.get(EXPIRY), EXPIRY), timestamp_token=bytes(unprotected.get(TIMESTAMP_SIGNATURE) or b""),
        signing_agent=str(unprotected.get(SIGNING_AGENT) or ""), critical=tuple(str(c) for c in critical),
        payload=payload, verification_plugin=str(protected.get(PLUGIN_HEADERS[0]) or ""),
    )
