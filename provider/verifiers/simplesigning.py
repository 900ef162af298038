"""Simple signing for kritis-style attestation authorities: GPG ("atomic container signature") and PKIX.

Signatures come from a containers-image lookaside (OpenPGP messages, or `\\x00sigstore-json\\n` layers that
c/image writes for PKIX keys), and from cosign-style attached signatures made with the authority's PKIX
key. OpenPGP is verified with pysequoia (Sequoia checks self-signatures, expiry and revocation).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pysequoia

from provider.config import AttestationAuthority, Authority
from provider.stores.base import ResolvedImage, SignatureArtifact, Store
from provider.stores.lookaside import LookasideStore
from provider.verifiers.base import SignatureResult, Signer, VerifierOutcome
from provider.verifiers.cosign import SIGNATURE_ANNOTATION, check_payload, read_layers
from provider.verifiers.keys import key_id, verify_signature
from provider.verifiers.limits import LimitError, check_openpgp_message, load_json
from provider.verifiers.openpgp import find_signing_key, signature_count, signature_issuers

ATOMIC_TYPE = "atomic container signature"
COSIGN_TYPE = "cosign container image signature"
SIGSTORE_JSON_MAGIC = b"\x00sigstore-json\n"


class SimpleSigningVerifier:
    name = "simplesigning"

    def __init__(self, lookaside: LookasideStore | None = None) -> None:
        self.lookaside = lookaside or LookasideStore()

    def applies_to(self, authority: Authority) -> bool:
        return authority.attestation is not None

    def verify(self, image: ResolvedImage, artifacts: Sequence[SignatureArtifact],
               authorities: Sequence[Authority], store: Store, deadline: float) -> VerifierOutcome:
        results: list[SignatureResult] = []
        layers = None
        for authority in authorities:
            settings = authority.attestation
            assert settings is not None
            if settings.lookaside:
                found = self.lookaside.signatures(settings.lookaside, image.reference, image.digest, deadline,
                                                  getattr(store, "signer_outbound", None))
                for index, blob in enumerate(found, start=1):
                    results.append(self.check_blob(image, blob, f"lookaside signature-{index}", authority.name,
                                                   settings))
            if any(k.kind == "pkix" for k in settings.keys):
                layers = layers if layers is not None else list(read_layers(image, artifacts, store, deadline))
                for layer in layers:
                    if layer.problem:
                        results.append(_result(layer.artifact, authority.name, layer.problem))
                    else:
                        results.append(self._pkix(image, layer.payload, layer.signature, layer.artifact,
                                                  authority.name, settings, COSIGN_TYPE))
        return VerifierOutcome(signatures=tuple(results))

    def check_blob(self, image: ResolvedImage, blob: bytes, artifact: str, authority: str,
                   settings: AttestationAuthority) -> SignatureResult:
        """One lookaside signature: an OpenPGP message, or a sigstore-json layer for a PKIX key."""
        if blob.startswith(SIGSTORE_JSON_MAGIC):
            try:
                layer = load_json(blob[len(SIGSTORE_JSON_MAGIC):], "sigstore-json signature")
                payload = base64.b64decode(layer["payload"], validate=True)
                signature = base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION], validate=True)
            except LimitError as exc:
                return _result(artifact, authority, f"sigstore-json signature refused: {exc}")
            except (ValueError, KeyError, TypeError, binascii.Error):
                return _result(artifact, authority, "malformed sigstore-json signature")
            return self._pkix(image, payload, signature, artifact, authority, settings, COSIGN_TYPE)
        return self._pgp(image, blob, artifact, authority, settings)

    def _pgp(self, image: ResolvedImage, blob: bytes, artifact: str, authority: str,
             settings: AttestationAuthority) -> SignatureResult:
        certs = [k.pgp for k in settings.keys if k.kind == "pgp"]
        if not certs:
            return _result(artifact, authority, f"an OpenPGP signature, but authority {authority} has no PGP key")
        try:
            check_openpgp_message(blob)  # before Sequoia decompresses or walks it
        except LimitError as exc:
            return _result(artifact, authority, f"OpenPGP signature refused: {exc}")
        count = signature_count(blob)
        if count > 1:
            # containers/image (mechanism_gpgme.go, mechanism_sequoia.go Verify) accepts exactly one signature:
            # a second one, trusted or not, makes the message's meaning ambiguous.
            return _result(artifact, authority, f"the OpenPGP message carries {count} signatures; exactly one "
                           "is accepted")
        try:
            verified = pysequoia.verify(bytes=blob, store=lambda _ids: certs)
        except Exception as exc:  # pysequoia reports every failure as RuntimeError with a backtrace
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "no valid signatures" in first.lower():
                return _result(artifact, authority, _unverified_reason(blob, certs, authority))
            return _result(artifact, authority, f"not a valid OpenPGP signed message: {first}")
        if not verified.valid_sigs:
            return _result(artifact, authority, _unverified_reason(blob, certs, authority))
        fingerprint = str(verified.valid_sigs[0].certificate).upper()
        signer = Signer(key_id=fingerprint, subject=next((k.key_id for k in settings.keys
                                                          if k.pgp is not None and k.pgp.fingerprint.upper()
                                                          == fingerprint), fingerprint))
        # Sequoia accepted the key as of the signing time; it must also be usable now.
        key = find_signing_key(certs, (str(verified.valid_sigs[0].signing_key).upper(),), datetime.now(UTC))
        if key is not None and key.problem:
            return _result(artifact, authority, key.problem, signer)
        problem = check_payload(verified.bytes, image, settings.signed_identity, ATOMIC_TYPE)
        return _result(artifact, authority, problem, signer)

    def _pkix(self, image: ResolvedImage, payload: bytes, signature: bytes, artifact: str, authority: str,
              settings: AttestationAuthority, payload_type: str) -> SignatureResult:
        key = next((k for k in settings.keys if k.pkix is not None
                    and verify_signature(k.pkix.key, signature, payload)), None)
        if key is None:
            return _result(artifact, authority, f"signed by a key not trusted by authority {authority}")
        assert key.pkix is not None
        signer = Signer(key_id=key.key_id or key_id(key.pkix.key), subject=key.key_id)
        problem = check_payload(payload, image, settings.signed_identity, payload_type)
        return _result(artifact, authority, problem, signer)


def _unverified_reason(message: bytes, certs: Sequence[Any], authority: str) -> str:
    """Why no signature in an OpenPGP message verified: unknown, expired or revoked key, or bad bytes."""
    key = find_signing_key(certs, signature_issuers(message), datetime.now(UTC))
    if key is None:
        return f"signed by a key not trusted by authority {authority}"
    if key.problem:
        return key.problem
    return (f"the signature by key {key.fingerprint} does not verify: the signature or the signed payload "
            "is corrupted or was altered")


def _result(artifact: str, authority: str, problem: str, signer: Signer | None = None) -> SignatureResult:
    return SignatureResult("simplesigning", artifact, authority, not problem, problem, signer or Signer(),
                           artifact_type="application/vnd.dev.cosign.simplesigning.v1+json")
