"""OpenPGP signing keys: which configured key made a signature, and whether that key may sign now.

pysequoia reports every failed verification as "no valid signatures"; the operator's next step differs for
an unknown key, an expired key, a revoked subkey and a corrupted signature, so the packets say which.
Sequoia judges a key at the signature's creation time; like containers/image (gpgme refuses signatures by
keys that are expired or revoked now), a key that has expired or been revoked since is refused too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pysequoia.packet import PacketPile, SignatureType, Tag

from provider.facts import rfc3339


@dataclass(frozen=True)
class SigningKey:
    """A configured key (primary or subkey) and why it may not sign now ("" when it may)."""

    fingerprint: str  # of the key that signs, upper-case hex
    certificate: str  # of the certificate's primary key
    problem: str = ""


def signature_issuers(message: bytes) -> tuple[str, ...]:
    """Issuer fingerprints or key IDs (upper-case hex) that the signatures in an OpenPGP message name."""
    try:
        packets = list(PacketPile.from_bytes(message))
    except Exception:  # pysequoia raises bare exceptions for unparseable input; no issuer then
        return ()
    issuers = []
    for packet in packets:
        if packet.tag == Tag.Signature:
            issuers.append(packet.issuer_fingerprint or packet.issuer_key_id)
        elif packet.tag == Tag.OnePassSig:
            issuers.append(packet.ops_issuer)
    return tuple(dict.fromkeys(str(i).upper() for i in issuers if i))


def signature_count(message: bytes) -> int:
    """How many signature packets an OpenPGP message carries (inside compression too); 0 if it does not parse."""
    try:
        return sum(1 for packet in PacketPile.from_bytes(message) if packet.tag == Tag.Signature)
    except Exception:  # pysequoia raises bare exceptions for unparseable input
        return 0


def find_signing_key(certs: Sequence[Any], issuers: Sequence[str], now: datetime) -> SigningKey | None:
    """The configured key a signature names (by fingerprint or 64-bit key ID), or None if none does."""
    for cert in certs:
        for key in _keys(cert, now):
            if any(key.fingerprint == issuer or key.fingerprint.endswith(issuer) for issuer in issuers):
                return key
    return None


def _keys(cert: Any, now: datetime) -> Iterator[SigningKey]:
    primary = str(cert.fingerprint).upper()
    expiration = cert.expiration
    if cert.is_revoked:
        whole = f"certificate {primary} is revoked"
    elif expiration is not None and expiration <= now:
        whole = f"key {primary} expired at {rfc3339(expiration)}"
    else:
        whole = ""
    subkey: Any = None
    revoked, binding = False, None
    for packet in [*PacketPile.from_bytes(bytes(cert)), None]:
        if packet is None or packet.tag in (Tag.PublicKey, Tag.PublicSubkey):
            if subkey is not None:
                yield SigningKey(str(subkey.fingerprint).upper(), primary,
                                 whole or _subkey_problem(subkey, primary, revoked, binding, now))
            elif packet is not None and packet.tag == Tag.PublicKey:
                yield SigningKey(primary, primary, whole)
            subkey = packet if packet is not None and packet.tag == Tag.PublicSubkey else None
            revoked, binding = False, None
        elif subkey is not None and packet.tag == Tag.Signature:
            if packet.signature_type == SignatureType.SubkeyRevocation:
                revoked = True
            elif packet.signature_type == SignatureType.SubkeyBinding and (
                    binding is None or packet.signature_created > binding.signature_created):
                binding = packet  # the newest binding says when the subkey expires


def _subkey_problem(subkey: Any, primary: str, revoked: bool, binding: Any, now: datetime) -> str:
    fingerprint = str(subkey.fingerprint).upper()
    if revoked:
        return f"signing subkey {fingerprint} of certificate {primary} is revoked"
    validity = binding.key_validity_period if binding is not None else None
    if validity and subkey.key_created + validity <= now:
        return (f"signing subkey {fingerprint} of certificate {primary} expired at "
                f"{rfc3339(subkey.key_created + validity)}")
    return ""
