"""Notary Project signature envelopes, JWS (flattened JSON) and COSE_Sign1, read into one shape.

Only parsing and the raw signature check live here; trust decisions are the verifier's.
"""

from __future__ import annotations

import base64
import binascii
import re
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

from provider.verifiers.certificates import CERTIFICATE_PARSE_ERRORS
from provider.verifiers.certparse import check_serial_numbers
from provider.verifiers.limits import LimitError, load_json

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
VERIFICATION_PLUGIN = "io.cncf.notary.verificationPlugin"
VERIFICATION_PLUGIN_MIN_VERSION = "io.cncf.notary.verificationPluginMinVersion"
PLUGIN_HEADERS = (VERIFICATION_PLUGIN, VERIFICATION_PLUGIN_MIN_VERSION)
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
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


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
    # True when either plugin header is present at all, even empty: notation-go then needs the plugin.
    requires_plugin: bool = False

    @property
    def plugin_problem(self) -> str:
        """Why this signature cannot be verified here: it asks for a verification plugin; empty when it does not."""
        if not self.requires_plugin:
            return ""
        name = self.verification_plugin or "(unnamed)"
        return (f"signature requires verification plugin {name}, which is not available (notation plugins are not "
                "supported)")

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]

    def check_signature(self) -> str:
        """Empty when the signature verifies with the leaf key under an algorithm that fits it; else why not."""
        family, hash_type = ALGORITHMS[self.algorithm]
        try:
            key = self.leaf.public_key()
        except (ValueError, TypeError) as exc:
            return f"the signing certificate's public key cannot be used: {exc}"
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
    # Nothing outside the alphabet: a lenient decoder would let two texts carry one signature.
    text = value.rstrip("=")
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1 or len(value) - len(text) > 2:
        raise EnvelopeError(f"JWS {what} is not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise EnvelopeError(f"JWS {what} is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"JWS {what} is not base64") from None


def _time(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        else:
            raise ValueError(value)
        if moment.tzinfo is None:
            raise ValueError(value)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        # fromtimestamp overflows on out-of-range numbers; a time without a zone is ambiguous.
        raise EnvelopeError(f"{name} is not a valid time with a time zone: {str(value)[:64]!r}") from None


def _certificates(ders: list[bytes]) -> tuple[x509.Certificate, ...]:
    if not ders:
        raise EnvelopeError("the envelope carries no certificate chain (x5c / x5chain)")
    certificates = []
    for index, der in enumerate(ders):
        if not isinstance(der, bytes):
            raise EnvelopeError(f"certificate {index} of the envelope's chain is not a byte string")
        try:
            certificate = x509.load_der_x509_certificate(der)
            check_serial_numbers(certificate)
            # cryptography parses fields lazily: read what verification uses now, so a bad field is this
            # envelope's error and not an exception deep in chain building.
            certificate.subject.rfc4514_string()
            certificate.issuer.rfc4514_string()
            _ = (certificate.not_valid_before_utc, certificate.not_valid_after_utc, certificate.extensions,
                 certificate.signature_hash_algorithm)
            certificate.public_key()
        except CERTIFICATE_PARSE_ERRORS as exc:
            raise EnvelopeError(f"certificate {index} of the envelope's chain does not parse: "
                                f"{str(exc)[:120]}") from None
        certificates.append(certificate)
    return tuple(certificates)


def _target(payload_bytes: bytes) -> tuple[dict[str, Any], TargetArtifact]:
    try:
        payload = load_json(payload_bytes, "the payload")
        target = payload["targetArtifact"]
        media_type, digest, size = target["mediaType"], target["digest"], target["size"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise EnvelopeError("payload is not a Notary Project payload with targetArtifact") from None
    if not isinstance(media_type, str) or not isinstance(digest, str) or isinstance(size, bool) \
            or not isinstance(size, int):
        raise EnvelopeError("payload targetArtifact needs string mediaType and digest and an integer size")
    return payload, TargetArtifact(media_type, digest, size)


def _critical(value: Any, label_types: tuple[type, ...]) -> list[str | int]:
    """The `crit` header: absent, or a non-empty list of header labels."""
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not value or not all(
            isinstance(c, label_types) and not isinstance(c, bool) for c in value):
        raise EnvelopeError("the crit header must be a non-empty list of header names")
    return list(value)


def _common_checks(protected: Mapping[Any, Any], critical: list[Any], content_type: Any, algorithm: Any,
                   algorithm_type: type) -> str:
    if not isinstance(algorithm, algorithm_type) or isinstance(algorithm, bool) or algorithm not in ALGORITHMS:
        raise EnvelopeError(f"signature algorithm {str(algorithm)[:64]!r} is not supported")
    if content_type != PAYLOAD_CONTENT_TYPE:
        raise EnvelopeError(f"payload content type {str(content_type)[:64]!r} is not {PAYLOAD_CONTENT_TYPE!r}")
    scheme = protected.get(SIGNING_SCHEME)
    if scheme not in (SCHEME_X509, SCHEME_SIGNING_AUTHORITY):
        raise EnvelopeError(f"signing scheme {str(scheme)[:64]!r} is not supported")
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


def _plugin_fields(protected: Mapping[Any, Any]) -> dict[str, Any]:
    name = protected.get(VERIFICATION_PLUGIN)
    return {"verification_plugin": name[:128] if isinstance(name, str) else "",
            "requires_plugin": any(header in protected for header in PLUGIN_HEADERS)}


def _json(data: bytes | str, what: str) -> Any:
    try:
        return load_json(data, what)
    except LimitError as exc:
        raise EnvelopeError(str(exc)) from None
    except ValueError:
        raise EnvelopeError(f"{what} is not JSON") from None


def _parse_jws(data: bytes) -> Envelope:
    raw = _json(data, "JWS envelope")
    if not isinstance(raw, dict) or not all(k in raw for k in ("protected", "payload", "signature")):
        raise EnvelopeError("not a JWS JSON serialization (protected, payload, signature)")
    protected_b64, payload_b64, signature_b64 = raw["protected"], raw["payload"], raw["signature"]
    header = raw.get("header") or {}
    protected = _json(_b64url(protected_b64, "protected header"), "JWS protected header")
    if not isinstance(protected, dict) or not isinstance(header, dict):
        raise EnvelopeError("JWS headers must be JSON objects")
    critical = _critical(protected.get("crit"), (str,))
    scheme = _common_checks(protected, critical, protected.get("cty"), protected.get("alg"), str)
    # notation-core-go signature/jws/jws.go validateProtectedHeaders: each scheme has its one time header.
    if scheme == SCHEME_X509 and AUTHENTIC_SIGNING_TIME in protected:
        raise EnvelopeError(f"header {AUTHENTIC_SIGNING_TIME} must not be present for the {SCHEME_X509} "
                            "signing scheme")
    if scheme == SCHEME_SIGNING_AUTHORITY and SIGNING_TIME in protected:
        raise EnvelopeError(f"header {SIGNING_TIME} must not be present for the {SCHEME_SIGNING_AUTHORITY} "
                            "signing scheme")
    payload, target = _target(_b64url(payload_b64, "payload"))
    chain = header.get("x5c") or []
    if not isinstance(chain, list):
        raise EnvelopeError("JWS header x5c must be a list of base64 certificates")
    certificates = _certificates([_b64(c, f"x5c[{i}]") for i, c in enumerate(chain)])
    token = header.get(TIMESTAMP_SIGNATURE)
    agent = header.get(SIGNING_AGENT) or header.get("io.cncf.notary.SigningAgent")
    return _check_times(Envelope(
        format="jws", algorithm=protected["alg"], signing_scheme=scheme,
        signed=f"{protected_b64}.{payload_b64}".encode(), signature=_b64url(signature_b64, "signature"),
        certificates=certificates, target=target, signing_time=_time(protected.get(SIGNING_TIME), SIGNING_TIME),
        authentic_signing_time=_time(protected.get(AUTHENTIC_SIGNING_TIME), AUTHENTIC_SIGNING_TIME),
        expiry=_time(protected.get(EXPIRY), EXPIRY),
        timestamp_token=_b64(token, TIMESTAMP_SIGNATURE) if token else b"",
        signing_agent=agent[:256] if isinstance(agent, str) else "",
        critical=tuple(str(c) for c in critical), payload=payload, **_plugin_fields(protected),
    ))


def _check_times(envelope: Envelope) -> Envelope:
    """notation-core-go signature/internal/base/envelope.go validateSigningAndExpiryTime: an expiry must come
    after the signing time (the authentic signing time under signingAuthority)."""
    signed = envelope.authentic_signing_time if envelope.signing_scheme == SCHEME_SIGNING_AUTHORITY \
        else envelope.signing_time
    if envelope.expiry is not None and signed is not None and envelope.expiry <= signed:
        raise EnvelopeError(f"expiry {envelope.expiry:%Y-%m-%dT%H:%M:%SZ} is not after the signing time "
                            f"{signed:%Y-%m-%dT%H:%M:%SZ}")
    return envelope


def _cbor(data: bytes, what: str) -> Any:
    try:
        return cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError):
        raise EnvelopeError(f"{what} is not CBOR") from None


def _parse_cose(data: bytes) -> Envelope:
    message = _cbor(data, "COSE envelope")
    if not isinstance(message, cbor2.CBORTag) or message.tag != 18 or not isinstance(message.value, list | tuple) \
            or len(message.value) != 4:
        raise EnvelopeError("not a COSE_Sign1 message (CBOR tag 18 over a four-element array)")
    protected_bytes, unprotected, payload_bytes, signature = message.value
    if not isinstance(protected_bytes, bytes) or not isinstance(signature, bytes):
        raise EnvelopeError("COSE protected header and signature must be byte strings")
    protected = _cbor(protected_bytes, "COSE protected header")
    if not isinstance(protected, Mapping) or not isinstance(unprotected, Mapping) or not isinstance(payload_bytes,
                                                                                                     bytes):
        raise EnvelopeError("COSE headers must be maps and the payload attached")
    critical = _critical(protected.get(2), (str, int))
    scheme = _common_checks(protected, critical, protected.get(3), protected.get(1), int)
    payload, target = _target(payload_bytes)
    chain = unprotected.get(33)
    certificates = _certificates([chain] if isinstance(chain, bytes) else list(chain)
                                 if isinstance(chain, list | tuple) else [])
    token = unprotected.get(TIMESTAMP_SIGNATURE)
    if token is not None and not isinstance(token, bytes):
        raise EnvelopeError(f"COSE header {TIMESTAMP_SIGNATURE} must be a byte string")
    agent = unprotected.get(SIGNING_AGENT)
    signed = cbor2.dumps(["Signature1", protected_bytes, b"", payload_bytes])
    return _check_times(Envelope(
        format="cose", algorithm=protected[1], signing_scheme=scheme, signed=signed, signature=signature,
        certificates=certificates, target=target, signing_time=_time(protected.get(SIGNING_TIME), SIGNING_TIME),
        authentic_signing_time=_time(protected.get(AUTHENTIC_SIGNING_TIME), AUTHENTIC_SIGNING_TIME),
        expiry=_time(protected.get(EXPIRY), EXPIRY), timestamp_token=token or b"",
        signing_agent=agent[:256] if isinstance(agent, str) else "", critical=tuple(str(c) for c in critical),
        payload=payload, **_plugin_fields(protected),
    ))
