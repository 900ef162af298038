"""Signature verifiers: each turns one format's artifacts into per-signature results."""

from __future__ import annotations

from provider.config import VerificationConfig
from provider.verifiers.base import Verifier


def default_verifiers(verification: VerificationConfig | None = None) -> list[Verifier]:
    """The verifiers every engine runs, in report order."""
    limit = (verification or VerificationConfig()).max_predicate_bytes
    from provider.verifiers.attestations import CosignAttestationVerifier
    from provider.verifiers.bundle import SigstoreBundleVerifier
    from provider.verifiers.cosign import CosignVerifier

    return [CosignVerifier(), SigstoreBundleVerifier(limit), CosignAttestationVerifier(limit)]
