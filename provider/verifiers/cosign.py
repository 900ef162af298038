"""cosign signatures attached to images (`sha256-<hex>.sig` manifests): the `cosign verify` checks.

Each layer of a signature manifest is one signature: the layer blob is the simple-signing payload, the
`dev.cosignproject.cosign/signature` annotation its base64 signature, and optional annotations carry a
Rekor bundle and a signing certificate. Every (layer, authority) pair gives one result with a reason.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from provider.config import Authority, CosignAuthority, PublicKey
from provider.stores.base import ArtifactError, ResolvedImage, SignatureArtifact, Store
from provider.stores.manifests import descriptor_from_json
from provider.verifiers.base import SignatureResult, Signer, TlogEntry, VerifierOutcome
from provider.verifiers.certificates import (
    CertificateError,
    certificate_issuer,
    certificate_subject,
    identity_problem,
    load_certificates,
    verify_chain,
)
from provider.verifiers.keys import key_id, verify_signature
from provider.verifiers.rekor import TlogError, integrated_at, verify_bundle

SIMPLESIGNING_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
PAYLOAD_TYPE = "cosign container image signature"
MAX_LAYERS_PER_ARTIFACT = 32


@dataclass(frozen=True)
class CosignLayer:
    """One signature layer, fetched and decoded; `problem` is set when it could not be read."""

    artifact: str
    payload: bytes = b""
    signature: bytes = b""
    bundle: str = ""
    certificate: str = ""
    chain: str = ""
    problem: str = ""


def read_layers(image: ResolvedImage, artifacts: Sequence[SignatureArtifact], store: Store,
                deadline: float) -> Iterator[CosignLayer]:
    """The simple-signing layers of every cosign signature manifest, payloads fetched and digest-checked."""
    for artifact in artifacts:
        if artifact.source != "cosign-tag" or artifact.manifest is None:
            continue
        layers = artifact.manifest.get("layers") or []
        for entry in layers[:MAX_LAYERS_PER_ARTIFACT]:
            yield _read_layer(image, artifact.descriptor.digest, entry, store, deadline)


def _read_layer(image: ResolvedImage, artifact: str, entry: Any, store: Store, deadline: float) -> CosignLayer:
    descriptor = descriptor_from_json(entry)
    if descriptor is None or descriptor.media_type != SIMPLESIGNING_LAYER:
        return CosignLayer(artifact, problem="signature layer is not a simple-signing payload descriptor")
    annotations = descriptor.annotations
    try:
        # Line breaks are allowed, as Go's base64 decoder (cosign's) skips them.
        encoded = annotations.get(SIGNATURE_ANNOTATION, "").replace("\r", "").replace("\n", "")
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return CosignLayer(artifact, problem="signature annotation is not valid base64")
    if not signature:
        return CosignLayer(artifact, problem="signature layer has no signature annotation")
    try:
        payload = store.fetch_blob(image.reference, descriptor, deadline)
    except ArtifactError as exc:
        return CosignLayer(artifact, problem=f"payload could not be fetched: {exc}")
    return CosignLayer(artifact, payload, signature, annotations.get(BUNDLE_ANNOTATION, ""),
                       annotations.get(CERTIFICATE_ANNOTATION, ""), annotations.get(CHAIN_ANNOTATION, ""))


def check_payload(payload: bytes, image: ResolvedImage, docker_reference: str) -> str:
    """Empty when the simple-signing payload claims exactly this image; else the reason it does not."""
    try:
        critical = json.loads(payload)["critical"]
        kind = critical["type"]
        digest = critical["image"]["docker-manifest-digest"]
        identity = (critical.get("identity") or {}).get("docker-reference", "")
    except (ValueError, KeyError, TypeError):
        return "payload is not a simple-signing JSON document"
    if kind != PAYLOAD_TYPE:
        return f"payload type is {kind!r}, not {PAYLOAD_TYPE!r}"
    if digest != image.digest:
        return f"signature is for {digest}, not for {image.digest}"
    if docker_reference == "repository" and _repository(identity) != image.reference.name:
        return f"signature is for repository {identity!r}, not {image.reference.name}"
    return ""


def _repository(docker_reference: str) -> str:
    from provider.reference import InvalidReference, parse_reference

    try:
        return parse_reference(docker_reference).name
    except InvalidReference:
        return docker_reference


class CosignVerifier:
    """Key-based cosign verification with optional or required Rekor bundles."""

    name = "cosign"

    def applies_to(self, authority: Authority) -> bool:
        return authority.cosign is not None

    def verify(self, image: ResolvedImage, artifacts: Sequence[SignatureArtifact],
               authorities: Sequence[Authority], store: Store, deadline: float) -> VerifierOutcome:
        results = []
        for layer in read_layers(image, artifacts, store, deadline):
            results.extend(self._check(image, layer, a.name, a.cosign) for a in authorities if a.cosign)
        return VerifierOutcome(signatures=tuple(results))

    def _check(self, image: ResolvedImage, layer: CosignLayer, authority: str,
               settings: CosignAuthority) -> SignatureResult:
        if layer.problem:
            return _rejected(layer, authority, layer.problem)
        key = next((k for k in settings.public_keys if verify_signature(k.key, layer.signature, layer.payload)),
                   None)
        if key is None and layer.certificate and (settings.keyless or settings.pki):
            return self._check_certificate(image, layer, authority, settings)
        if key is None:
            return _rejected(layer, authority, f"signed by a key not trusted by authority {authority}")
        signer = Signer(key_id=key_id(key.key), subject=key.origin)
        problem = check_payload(layer.payload, image, settings.docker_reference)
        if problem:
            return _rejected(layer, authority, problem, signer)
        tlog, tlog_problem = _tlog(layer, key.key, settings.rekor_keys)
        if tlog is None and settings.tlog == "required":
            return _rejected(layer, authority, tlog_problem or _NO_BUNDLE, signer)
        return _accepted(layer, authority, signer, tlog)

    def _check_certificate(self, image: ResolvedImage, layer: CosignLayer, authority: str,
                           settings: CosignAuthority) -> SignatureResult:
        """Keyless (Fulcio + Rekor) or your own PKI: the key comes from a certificate that must chain."""
        try:
            leaf, *rest = load_certificates(layer.certificate)
            chain = rest + (load_certificates(layer.chain) if layer.chain else [])
        except (CertificateError, ValueError) as exc:
            return _rejected(layer, authority, str(exc) or "certificate annotation is empty")
        signer = Signer(key_id=key_id(leaf.public_key()), subject=certificate_subject(leaf),
                        issuer=certificate_issuer(leaf))
        if not verify_signature(leaf.public_key(), layer.signature, layer.payload):
            return _rejected(layer, authority, "signature does not verify with the key of its certificate", signer)
        problem = check_payload(layer.payload, image, settings.docker_reference)
        if problem:
            return _rejected(layer, authority, problem, signer)
        reasons = []
        for kind, trust in (("keyless", settings.keyless), ("pki", settings.pki)):
            if trust is None:
                continue
            rekor_keys = settings.keyless.rekor_keys if kind == "keyless" and settings.keyless else settings.rekor_keys
            tlog, tlog_problem = _tlog(layer, leaf.public_key(), rekor_keys)
            if tlog is None and (kind == "keyless" or settings.tlog == "required"):
                # A short-lived Fulcio certificate can only be checked at the time the log vouches for.
                reasons.append(tlog_problem or (_NO_BUNDLE if kind == "pki" else
                               "keyless signature without a verified transparency log entry"))
                continue
            at = integrated_at(tlog) if tlog else datetime.now(UTC)
            try:
                verify_chain(leaf, [*trust.intermediates, *chain], trust.roots, at)
            except CertificateError as exc:
                reasons.append(str(exc))
                continue
            problem = identity_problem(trust.identities, signer.subject, signer.issuer)
            if problem:
                reasons.append(problem)
                continue
            return _accepted(layer, authority, signer, tlog)
        return _rejected(layer, authority, "; ".join(reasons), signer)


_NO_BUNDLE = "no transparency log bundle, and authority requires one (tlog: required)"


def _tlog(layer: CosignLayer, signer_key: PublicKeyTypes,
          rekor_keys: Sequence[PublicKey]) -> tuple[TlogEntry | None, str]:
    """The verified Rekor entry of a layer, or None and why not (empty when there is no bundle)."""
    if not layer.bundle:
        return None, ""
    if not rekor_keys:
        return None, "a Rekor bundle is attached but the authority has no rekorKeys to check it"
    try:
        return verify_bundle(layer.bundle, layer.signature, layer.payload, signer_key, rekor_keys), ""
    except TlogError as exc:
        return None, f"transparency log entry rejected: {exc}"


def _rejected(layer: CosignLayer, authority: str, reason: str, signer: Signer | None = None) -> SignatureResult:
    return SignatureResult("cosign", layer.artifact, authority, False, reason, signer or Signer(),
                           artifact_type=SIMPLESIGNING_LAYER)


def _accepted(layer: CosignLayer, authority: str, signer: Signer, tlog: TlogEntry | None) -> SignatureResult:
    return SignatureResult("cosign", layer.artifact, authority, True, "", signer,
                           signed_at=tlog.integrated_time if tlog else None, tlog=tlog,
                           artifact_type=SIMPLESIGNING_LAYER)
