"""DSSE envelopes and in-toto statements: what attestations are made of."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from provider.verifiers.limits import LimitError, load_json

IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE pre-authentication encoding: what a DSSE signature actually covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]

    @property
    def signed(self) -> bytes:
        return pae(self.payload_type, self.payload)


def parse_envelope(data: bytes) -> Envelope:
    """Parse a DSSE envelope; raise ValueError saying what is wrong with it."""
    try:
        raw = load_json(data, "DSSE envelope")
        payload = base64.b64decode(raw["payload"], validate=True)
        signatures = tuple(base64.b64decode(s["sig"], validate=True) for s in raw["signatures"])
        payload_type = raw["payloadType"]
    except LimitError:
        raise
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ValueError("not a DSSE envelope (payloadType, payload, signatures)") from None
    if not isinstance(payload_type, str) or not signatures:
        raise ValueError("DSSE envelope has no payload type or no signatures")
    return Envelope(payload_type, payload, signatures)


@dataclass(frozen=True)
class Statement:
    predicate_type: str
    predicate: Any
    subject_digests: tuple[str, ...]


def parse_statement(payload_type: str, payload: bytes) -> Statement:
    if payload_type != IN_TOTO_PAYLOAD:
        raise ValueError(f"payload type is {payload_type!r}, not {IN_TOTO_PAYLOAD!r}")
    try:
        raw = load_json(payload, "in-toto statement")
        digests = tuple(f"{alg}:{value}" for subject in raw["subject"]
                        for alg, value in (subject.get("digest") or {}).items())
        return Statement(str(raw["predicateType"]), raw.get("predicate"), digests)
    except LimitError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError("payload is not an in-toto statement (subject, predicateType)") from None


def subject_problem(statement: Statement, digest: str) -> str:
    """Empty when the statement is about `digest`; else the reason."""
    if digest in statement.subject_digests:
        return ""
    shown = ", ".join(statement.subject_digests[:3]) or "no digest"
    return f"statement is about {shown}, not {digest}"


def capped_predicate(predicate: Any, limit: int) -> Any:
    """The predicate for Rego, or a note when it is larger than `limit` bytes of JSON."""
    size = len(json.dumps(predicate, separators=(",", ":")))
    return predicate if size <= limit else {"omitted": f"predicate is {size} bytes, over the {limit}-byte limit"}
