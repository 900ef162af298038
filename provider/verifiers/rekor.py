"""Offline check of a Rekor bundle (the `dev.sigstore.cosign/bundle` annotation).

The signed entry timestamp (SET) is Rekor's signature over the canonical JSON of
body/integratedTime/logID/logIndex. A valid SET only proves that *some* entry is in the log, so the body
must also bind exactly the signature being verified: its signature bytes, its key or certificate and the
signed content; otherwise any valid entry, for any other signature, would pass.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from provider.config import PublicKey
from provider.facts import rfc3339
from provider.verifiers.base import TlogEntry
from provider.verifiers.keys import key_id, same_key, verify_signature
from provider.verifiers.limits import load_json


class TlogError(ValueError):
    """The transparency-log entry does not prove what it should; the message says what."""


@dataclass(frozen=True)
class LoggedSignature:
    """What a log entry must record: one signature, its signer, and the content it covers.

    `signed` is what the signature is over (a simple-signing payload, or a DSSE PAE). For a DSSE
    signature, `envelope` is the raw envelope as attached and `payload` the envelope's payload: the
    `intoto` and `dsse` entry kinds commit to those instead of to the signed bytes.
    """

    signature: bytes
    signed: bytes
    signer: PublicKeyTypes
    envelope: bytes = b""
    payload: bytes = b""


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
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise TlogError("the Rekor entry's public key or certificate does not parse") from None


def verify_bundle(bundle_text: str, logged: LoggedSignature, rekor_keys: Sequence[PublicKey]) -> TlogEntry:
    """Return the verified log entry, or raise TlogError saying why the bundle proves nothing."""
    try:
        bundle = load_json(bundle_text, "the Rekor bundle")
        set_bytes = _b64(bundle["SignedEntryTimestamp"], "SignedEntryTimestamp")
        entry = bundle["Payload"]
        body_b64, integrated, log_index, log_id = (entry["body"], entry["integratedTime"], entry["logIndex"],
                                                   entry["logID"])
    except (ValueError, KeyError, TypeError):
        raise TlogError("the Rekor bundle is malformed (needs SignedEntryTimestamp and Payload)") from None
    if type(integrated) is not int or type(log_index) is not int or not isinstance(body_b64, str):
        raise TlogError("the Rekor bundle's integratedTime and logIndex must be integers, its body a string")
    rekor = next((k for k in rekor_keys if key_id(k.key) == log_id), None)
    if rekor is None:
        raise TlogError(f"the Rekor entry's log ID {str(log_id)[:16]}… matches no configured Rekor key")
    canonical = json.dumps({"body": body_b64, "integratedTime": integrated, "logID": log_id,
                            "logIndex": log_index}, sort_keys=True, separators=(",", ":")).encode()
    try:
        moment = datetime.fromtimestamp(integrated, UTC)
    except (OverflowError, OSError, ValueError):
        raise TlogError(f"the Rekor entry's integratedTime {integrated} is not a usable time") from None
    if not rekor.valid_at(moment):
        # sigstore-go pkg/tlog/entry.go VerifySET: a log key vouches only for entries inside its validFor.
        raise TlogError(f"Rekor key {rekor.origin} is not valid at the entry's integrated time {rfc3339(moment)}")
    if not verify_signature(rekor.key, set_bytes, canonical):
        raise TlogError(f"the signed entry timestamp does not verify with Rekor key {rekor.origin}")
    check_body(_b64(body_b64, "the Rekor entry body"), logged)
    return TlogEntry(log_index=log_index, integrated_time=rfc3339(moment))


def check_body(body_bytes: bytes, logged: LoggedSignature) -> None:
    """Raise TlogError unless the entry body records exactly this signature, signer and content."""
    try:
        body = load_json(body_bytes, "the Rekor entry body")
        kind, version, spec = body["kind"], body["apiVersion"], body["spec"]
        check = _KINDS.get((kind, version)) if isinstance(kind, str) and isinstance(version, str) else None
        if check is None:
            raise TlogError(f"the Rekor entry is of kind {kind}/{version}; supported: "
                            + ", ".join(f"{k}/{v}" for k, v in _KINDS))
        check(spec, logged)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        if isinstance(exc, TlogError):
            raise
        raise TlogError(f"the Rekor entry body is malformed ({type(exc).__name__} at {exc})") from None


def _sha256_field(value: Any, what: str) -> str:
    if value["algorithm"] != "sha256" or not isinstance(value["value"], str):
        raise TlogError(f"the Rekor entry's {what} is not a SHA-256 hash")
    return value["value"]


def _same_signer(pem_b64: Any, logged: LoggedSignature) -> None:
    if not same_key(_signer_key(_b64(pem_b64, "the Rekor entry public key")), logged.signer):
        raise TlogError("the Rekor entry records a different signing key")


def _payload_hash(spec: Any, logged: LoggedSignature) -> None:
    if _sha256_field(spec["payloadHash"], "payload hash") != hashlib.sha256(logged.payload).hexdigest():
        raise TlogError("the Rekor entry records a different DSSE payload")


def _needs_envelope(logged: LoggedSignature, kind: str) -> None:
    if not logged.envelope:
        raise TlogError(f"the Rekor entry is of kind {kind}, which records a DSSE envelope, but this is not a "
                        "DSSE signature")


def _hashedrekord(spec: Any, logged: LoggedSignature) -> None:
    # hashedrekord and rekord 0.0.1: the hash of the signed bytes (for DSSE: of the PAE), signature, key.
    if _sha256_field(spec["data"]["hash"], "data hash") != hashlib.sha256(logged.signed).hexdigest():
        raise TlogError("the Rekor entry records a different payload hash")
    if _b64(spec["signature"]["content"], "the Rekor entry signature") != logged.signature:
        raise TlogError("the Rekor entry records a different signature")
    _same_signer(spec["signature"]["publicKey"]["content"], logged)


def _intoto_v1(spec: Any, logged: LoggedSignature) -> None:
    # intoto 0.0.1 stores no signature; the hash of the whole envelope (which holds it) binds it.
    _needs_envelope(logged, "intoto")
    content = spec["content"]
    if _sha256_field(content["hash"], "envelope hash") != hashlib.sha256(logged.envelope).hexdigest():
        raise TlogError("the Rekor entry records a different DSSE envelope")
    _payload_hash(content, logged)
    _same_signer(spec["publicKey"], logged)


def _intoto_v2(spec: Any, logged: LoggedSignature) -> None:
    # intoto 0.0.2 stores the envelope's signatures, each base64-encoded twice, with their keys.
    _needs_envelope(logged, "intoto")
    content = spec["content"]
    _payload_hash(content, logged)
    for entry in content["envelope"]["signatures"]:
        if _b64(_b64(entry["sig"], "the Rekor entry signature").decode("ascii"),
                "the Rekor entry signature") == logged.signature:
            _same_signer(entry["publicKey"], logged)
            return
    raise TlogError("the Rekor entry records a different signature")


def _dsse_v1(spec: Any, logged: LoggedSignature) -> None:
    # The envelope hash of a dsse entry covers re-serialised JSON we cannot reproduce; the payload
    # hash and the (signature, verifier) pairs bind it, as in sigstore-python.
    _needs_envelope(logged, "dsse")
    _payload_hash(spec, logged)
    for entry in spec["signatures"]:
        if _b64(entry["signature"], "the Rekor entry signature") == logged.signature:
            _same_signer(entry["verifier"], logged)
            return
    raise TlogError("the Rekor entry records a different signature")


_KINDS = {("hashedrekord", "0.0.1"): _hashedrekord, ("rekord", "0.0.1"): _hashedrekord,
          ("intoto", "0.0.1"): _intoto_v1, ("intoto", "0.0.2"): _intoto_v2, ("dsse", "0.0.1"): _dsse_v1}


def integrated_at(entry: TlogEntry) -> datetime:
    return datetime.fromisoformat(entry.integrated_time.replace("Z", "+00:00"))
