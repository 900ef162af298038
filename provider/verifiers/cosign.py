"""cosign signatures attached to images (`sha256-<hex>.sig` manifests): the `cosign verify` checks.

Each layer of a signature manifest is one signature: the layer blob is the simple-signing payload, the
`dev.cosignproject.cosign/signature` annotation its base64 signature, and optional annotations carry a
Rekor bundle and a signing certificate. Every (layer, authority) pair gives one result with a reason.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from provider.config import Authority, CosignAuthority, SignedIdentity
from provider.stores.base import ArtifactError, ResolvedImage, SignatureArtifact, Store
from provider.stores.manifests import descriptor_from_json
from provider.verifiers.base import SignatureResult, VerifierOutcome
from provider.verifiers.limits import load_json
from provider.verifiers.referencematch import describe, identity_matches, names_repository_only
from provider.verifiers.signers import Authenticated, Rejected, SignedBlob, authenticate

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


# cosign's `dockerReference`: cosign itself ignores the signed reference; `repository` is matchRepository.
COSIGN_IDENTITY = {"ignore": SignedIdentity("ignore"), "repository": SignedIdentity("matchRepository")}


def check_payload(payload: bytes, image: ResolvedImage, rule: SignedIdentity,
                  expected_type: str = PAYLOAD_TYPE) -> str:
    """Empty when the simple-signing payload claims this image under `rule`; else the reason it does not."""
    try:
        critical = load_json(payload, "the simple-signing payload")["critical"]
        kind = critical["type"]
        digest = critical["image"]["docker-manifest-digest"]
        identity = (critical.get("identity") or {}).get("docker-reference", "")
    except (ValueError, KeyError, TypeError, AttributeError):  # any JSON shape may arrive here
        return "payload is not a simple-signing JSON document"
    if not isinstance(identity, str):
        return "payload identity.docker-reference is not a string"
    if kind != expected_type:
        return f"payload type is {kind!r}, not {expected_type!r}"
    if digest != image.digest:
        return f"signature is for {digest}, not for {image.digest}"
    if not identity_matches(rule, image.reference, identity):
        hint = ""
        if rule.type in ("matchRepoDigestOrExact", "matchExact", "exactReference") and names_repository_only(identity):
            # containers-policy.json(5): cosign names only the repository, which only matchRepository accepts.
            hint = "; a signature naming only a repository (as cosign writes) needs signedIdentity matchRepository"
        return (f"signature is for {identity!r}, which does not match {image.reference} "
                f"(signedIdentity {describe(rule)}){hint}")
    return ""


class CosignVerifier:
    """cosign signatures: public keys, keyless (Fulcio + Rekor) and your own PKI."""

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
            return _result(layer, authority, Rejected(layer.problem))
        blob = SignedBlob(layer.payload, layer.signature, layer.certificate, layer.chain, layer.bundle)
        try:
            outcome = authenticate(blob, authority, settings, check_payload(
                layer.payload, image, COSIGN_IDENTITY[settings.docker_reference]))
        except Rejected as rejected:
            return _result(layer, authority, rejected)
        return _result(layer, authority, outcome)


def _result(layer: CosignLayer, authority: str, outcome: Authenticated | Rejected) -> SignatureResult:
    if isinstance(outcome, Rejected):
        return SignatureResult("cosign", layer.artifact, authority, False, outcome.reason, outcome.signer,
                               artifact_type=SIMPLESIGNING_LAYER)
    tlog = outcome.tlog
    return SignatureResult("cosign", layer.artifact, authority, True, "", outcome.signer,
                           signed_at=tlog.integrated_time if tlog else None, tlog=tlog,
                           warnings=outcome.warnings, artifact_type=SIMPLESIGNING_LAYER, checks=outcome.checks)
