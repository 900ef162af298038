"""Signature checks with public keys the way sigstore tools make them: ECDSA, RSA (PKCS#1 v1.5, PSS), Ed25519."""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

_CURVE_HASH = {"secp256r1": hashes.SHA256, "secp384r1": hashes.SHA384, "secp521r1": hashes.SHA512}


def key_id(key: PublicKeyTypes) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo: stable across PEM formatting."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def same_key(a: PublicKeyTypes, b: PublicKeyTypes) -> bool:
    return key_id(a) == key_id(b)


def _hashes_for(key: PublicKeyTypes) -> list[hashes.HashAlgorithm]:
    # cosign signs with SHA-256 for every key; newer sigstore clients pick the curve's own hash.
    preferred = _CURVE_HASH.get(key.curve.name, hashes.SHA256) if isinstance(key, ec.EllipticCurvePublicKey) \
        else hashes.SHA256
    return [preferred()] + ([hashes.SHA256()] if preferred is not hashes.SHA256 else [])


def verify_signature(key: PublicKeyTypes, signature: bytes, data: bytes) -> bool:
    """True when `signature` over `data` verifies with `key` under any scheme sigstore tools produce."""
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
            return True
        for algorithm in _hashes_for(key):
            if _verify_with_hash(key, signature, data, algorithm):
                return True
    except InvalidSignature:
        return False
    return False


def _verify_with_hash(key: PublicKeyTypes, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
            return True
        if isinstance(key, rsa.RSAPublicKey):
            try:
                key.verify(signature, data, padding.PKCS1v15(), algorithm)
                return True
            except InvalidSignature:
                key.verify(signature, data, padding.PSS(padding.MGF1(algorithm), padding.PSS.AUTO), algorithm)
                return True
    except InvalidSignature:
        return False
    return False
