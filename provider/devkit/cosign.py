"""Make cosign-format signatures (simple-signing payload, signature manifest) for tests and the demo."""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from provider.devkit.layout import EMPTY_CONFIG, LayoutWriter, canonical
from provider.stores.base import OCI_MANIFEST
from provider.verifiers.cosign import SIGNATURE_ANNOTATION, SIMPLESIGNING_LAYER


def payload(digest: str, docker_reference: str, optional: dict[str, Any] | None = None,
            kind: str = "cosign container image signature") -> bytes:
    """A simple-signing payload; `kind` "atomic container signature" for GPG signatures (containers/image)."""
    return json.dumps({"critical": {"identity": {"docker-reference": docker_reference},
                                    "image": {"docker-manifest-digest": digest},
                                    "type": kind},
                       "optional": optional}, separators=(",", ":")).encode()


def sign(key: PrivateKeyTypes, data: bytes, rsa_pss: bool = False) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        pad = padding.PSS(padding.MGF1(hashes.SHA256()), 32) if rsa_pss else padding.PKCS1v15()
        return key.sign(data, pad, hashes.SHA256())
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    raise TypeError(f"unsupported key {type(key).__name__}")


def public_pem(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def signature_layer(writer: LayoutWriter, body: bytes, signature: bytes,
                    annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """Store the payload blob and return its layer descriptor with the cosign annotations."""
    descriptor = writer.add_blob(body, SIMPLESIGNING_LAYER)
    descriptor["annotations"] = {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode(), **(annotations or {})}
    return descriptor


def signature_manifest(writer: LayoutWriter, layers: list[dict[str, Any]]) -> dict[str, Any]:
    config = writer.add_blob(b"{}", EMPTY_CONFIG)
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers}


def attach(writer: LayoutWriter, image_digest: str, layers: list[dict[str, Any]]) -> dict[str, Any]:
    """Tag a signature manifest with `layers` as `sha256-<hex>.sig`, the way `cosign sign` does."""
    return writer.add_manifest(signature_manifest(writer, layers), image_digest.replace(":", "-") + ".sig")


def sign_image(writer: LayoutWriter, image_digest: str, reference: str, *keys: PrivateKeyTypes) -> dict[str, Any]:
    """Sign an image in a layout with each key (one layer per key) and attach the signatures."""
    body = payload(image_digest, reference)
    layers = [signature_layer(writer, body, sign(key, body)) for key in keys]
    return attach(writer, image_digest, layers)


__all__ = ["attach", "canonical", "payload", "public_pem", "sign", "sign_image", "signature_layer"]


def attestation_envelope(key: PrivateKeyTypes, digest: str, predicate_type: str, predicate: Any) -> bytes:
    """A DSSE envelope with an in-toto statement about `digest`, signed with `key`."""
    from provider.verifiers.dsse import IN_TOTO_PAYLOAD, pae

    algorithm, hex_digest = digest.split(":", 1)
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v1",
                            "subject": [{"name": "image", "digest": {algorithm: hex_digest}}],
                            "predicateType": predicate_type, "predicate": predicate}).encode()
    signature = sign(key, pae(IN_TOTO_PAYLOAD, statement))
    return json.dumps({"payloadType": IN_TOTO_PAYLOAD, "payload": base64.b64encode(statement).decode(),
                       "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}]}).encode()


def attach_attestations(writer: LayoutWriter, image_digest: str, envelopes: list[bytes],
                        annotations: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """Tag the envelopes as `sha256-<hex>.att`, the way `cosign attest` does (optional per-layer annotations)."""
    layers = [writer.add_blob(envelope, "application/vnd.dsse.envelope.v1+json") for envelope in envelopes]
    for layer, notes in zip(layers, annotations or [], strict=False):
        if notes:
            layer["annotations"] = notes
    return writer.add_manifest(signature_manifest(writer, layers), image_digest.replace(":", "-") + ".att")


def attach_bundle(writer: LayoutWriter, image: dict[str, Any], bundle: bytes) -> dict[str, Any]:
    """Attach a Sigstore bundle to `image` (its descriptor) as an OCI referrer, the way cosign v3 does."""
    from provider.verifiers.bundle import BUNDLE_ARTIFACT_TYPE

    layer = writer.add_blob(bundle, BUNDLE_ARTIFACT_TYPE)
    config = writer.add_blob(b"{}", EMPTY_CONFIG)
    subject = {k: image[k] for k in ("mediaType", "digest", "size")}
    return writer.add_manifest({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE_ARTIFACT_TYPE,
                                "config": config, "layers": [layer], "subject": subject})
