"""Offline check of a Rekor bundle (the `dev.sigstore.cosign/bundle` annotation).

The signed entry timestamp (SET) is Rekor's signature over the canonical JSON of
body/integratedTime/logID/logIndex; the body must describe exactly this signature, payload and signer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from provider.config import PublicKey
from provider.facts import rfc3339
from provider.verifiers.base import TlogEntry
from provider.verifiers.keys import key_id, same_key, verify_signature


class TlogError(ValueError):
    """The transparency-log entry does not prove what it should; the message says what."""


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise TlogError(f"{what} is not valid base64") from None


def _signer_key(pem: bytes) -> PublicKeyTypes:
    """The public key in a Rekor body: a PEM public key or a PEM certificate."""
    try:
        if b"CERTIFICATE" in pem:
            return x509.load_pem_x509_certificate(pem).public_key()
        return load_pem_public_key(pem)
    except ValueError:
        raise TlogError("the Rekor entry's public key or certificate does not parse") from None


def verify_bundle(bundle_text: str, signature: bytes, payload: bytes, signer: PublicKeyTypes,
                  rekor_keys: Sequence[PublicKey]) -> TlogEntry:
    """Return the verified log entry, or raise TlogError saying why the bundle proves nothing."""
    try:
        bundle = json.loads(bundle_text)
        set_bytes = _b64(bundle["SignedEntryTimestamp"], "SignedEntryTimestamp")
        entry = bundle["Payload"]
        body_b64, integrated, log_index, log_id = (entry["body"], entry["integratedTime"], entry["logIndex"],
                                                   entry["logID"])
    except (ValueError, KeyError, TypeError):
        raise TlogError("the Rekor bundle is malformed (needs SignedEntryTimestamp and Payload)") from None
    if not isinstance(integrated, int) or not isinstance(log_index, int):
        raise TlogError("the Rekor bundle's integratedTime and logIndex must be integers")
    rekor = next((k for k in rekor_keys if key_id(k.key) == log_id), None)
    if rekor is None:
        raise TlogError(f"the Rekor entry's log ID {str(log_id)[:16]}… matches no configured Rekor key")
    canonical = json.dumps({"body": body_b64, "integratedTime": integrated, "logID": log_id,
                            "logIndex": log_index}, sort_keys=True, separators=(",", ":")).encode()
    if not verify_signature(rekor.key, set_bytes, canonical):
        raise TlogError(f"the signed entry timestamp does not verify with Rekor key {rekor.origin}")
    _check_body(_b64(body_b64, "the Rekor entry body"), signature, payload, signer)
    return TlogEntry(log_index=log_index, integrated_time=rfc3339(datetime.fromtimestamp(integrated, UTC)))


def _check_body(body_bytes: bytes, signature: bytes, payload: bytes, signer: PublicKeyTypes) -> None:
    try:
        body = json.loads(body_bytes)
        kind = body["kind"]
        spec = body["spec"]
        digest = spec["data"]["hash"]["value"]
        entry_signature = _b64(spec["signature"]["content"], "the Rekor entry signature")
        entry_key = _b64(spec["signature"]["publicKey"]["content"], "the Rekor entry public key")
    except (ValueError, KeyError, TypeError):
        raise TlogError("the Rekor entry body is not a hashedrekord/rekord entry") from None
    if kind not in ("hashedrekord", "rekord"):
        raise TlogError(f"the Rekor entry is of kind {kind!r}, not hashedrekord")
    if digest != hashlib.sha256(payload).hexdigest():
        raise TlogError("the Rekor entry records a different payload hash")
    if entry_signature != signature:
        raise TlogError("the Rekor entry records a different signature")
    if not same_key(_signer_key(entry_key), signer):
        raise TlogError("the Rekor entry records a different signing key")


def integrated_at(entry: TlogEntry) -> datetime:
    return datetime.fromisoformat(entry.integrated_time.replace("Z", "+00:00"))
