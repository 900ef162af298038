"""A stand-in transparency log for tests and the demo: Rekor-format bundles signed with a local key."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric import ec

from provider.devkit.cosign import sign
from provider.verifiers.keys import key_id


def hashedrekord_bundle(log_key: ec.EllipticCurvePrivateKey, payload: bytes, signature: bytes, signer_pem: bytes,
                        integrated_time: int, log_index: int = 1) -> str:
    """The `dev.sigstore.cosign/bundle` annotation Rekor would hand back for this signature."""
    body = {"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}},
        "signature": {"content": base64.b64encode(signature).decode(),
                      "publicKey": {"content": base64.b64encode(signer_pem).decode()}}}}
    entry = {"body": base64.b64encode(json.dumps(body).encode()).decode(), "integratedTime": integrated_time,
             "logID": key_id(log_key.public_key()), "logIndex": log_index}
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    return json.dumps({"SignedEntryTimestamp": base64.b64encode(sign(log_key, canonical)).decode(),
                       "Payload": entry})


