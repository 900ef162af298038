"""Content digests: compute them from bytes and check fetched content against them."""

from __future__ import annotations

import hashlib

from provider.reference import DIGEST_HEX_LENGTH, validate_digest


def compute_digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


class DigestMismatch(ValueError):
    """Fetched bytes do not hash to the digest they were requested by."""


def check_digest(data: bytes, expected: str) -> None:
    """Raise DigestMismatch unless `data` hashes to `expected` (sha256 or sha512)."""
    validate_digest(expected)
    algorithm = expected.split(":", 1)[0]
    assert algorithm in DIGEST_HEX_LENGTH
    actual = compute_digest(data, algorithm)
    if actual != expected:
        raise DigestMismatch(f"content hashes to {actual}, not the requested {expected}")
