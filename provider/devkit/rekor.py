"""A stand-in transparency log for tests and the demo: Rekor-format bundles signed with a local key.

One builder per entry kind cosign and Rekor produce, so verifiers can be tested against each body shape:
`hashedrekord` (image signatures), `intoto` 0.0.1/0.0.2 and `dsse` (attestations).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from provider.devkit.cosign import sign
from provider.verifiers.keys import key_id


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _sha256(data: bytes) -> dict[str, str]:
    return {"algorithm": "sha256", "value": hashlib.sha256(data).hexdigest()}


def entry_bundle(log_key: ec.EllipticCurvePrivateKey, body: dict[str, Any], integrated_time: int,
                 log_index: int = 1) -> str:
    """The `dev.sigstore.cosign/bundle` annotation for any entry body: SET over the canonical entry."""
    entry = {"body": _b64(json.dumps(body).encode()), "integratedTime": integrated_time,
             "logID": key_id(log_key.public_key()), "logIndex": log_index}
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    return json.dumps({"SignedEntryTimestamp": _b64(sign(log_key, canonical)), "Payload": entry})


def hashedrekord_body(payload: bytes, signature: bytes, signer_pem: bytes) -> dict[str, Any]:
    return {"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "data": {"hash": _sha256(payload)},
        "signature": {"content": _b64(signature), "publicKey": {"content": _b64(signer_pem)}}}}


def hashedrekord_bundle(log_key: ec.EllipticCurvePrivateKey, payload: bytes, signature: bytes, signer_pem: bytes,
                        integrated_time: int, log_index: int = 1) -> str:
    """The `dev.sigstore.cosign/bundle` annotation Rekor would hand back for this signature."""
    return entry_bundle(log_key, hashedrekord_body(payload, signature, signer_pem), integrated_time, log_index)


def intoto_body(envelope: bytes, signer_pem: bytes, version: str = "0.0.1") -> dict[str, Any]:
    """An `intoto` entry for a DSSE envelope: 0.0.1 (hashes and key) or 0.0.2 (also the signatures)."""
    parsed = json.loads(envelope)
    payload = base64.b64decode(parsed["payload"])
    if version == "0.0.1":
        spec: dict[str, Any] = {"content": {"hash": _sha256(envelope), "payloadHash": _sha256(payload)},
                                "publicKey": _b64(signer_pem)}
    else:  # 0.0.2 stores each signature base64-encoded twice, as Rekor does
        signatures = [{"sig": _b64(s["sig"].encode()), "publicKey": _b64(signer_pem)} for s in parsed["signatures"]]
        spec = {"content": {"envelope": {"payloadType": parsed["payloadType"], "signatures": signatures},
                            "hash": _sha256(envelope), "payloadHash": _sha256(payload)}}
    return {"apiVersion": version, "kind": "intoto", "spec": spec}


def dsse_body(envelope: bytes, signer_pem: bytes) -> dict[str, Any]:
    """A `dsse` 0.0.1 entry for a DSSE envelope."""
    parsed = json.loads(envelope)
    payload = base64.b64decode(parsed["payload"])
    return {"apiVersion": "0.0.1", "kind": "dsse", "spec": {
        "envelopeHash": _sha256(envelope), "payloadHash": _sha256(payload),
        "signatures": [{"signature": s["sig"], "verifier": _b64(signer_pem)} for s in parsed["signatures"]]}}
