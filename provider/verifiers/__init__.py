"""Signature verifiers: each turns one format's artifacts into per-signature results."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the config module reads trust material with helpers from this package
    from provider.config import VerificationConfig
    from provider.verifiers.base import Verifier


def default_verifiers(verification: VerificationConfig | None = None) -> list[Verifier]:
    """The verifiers every engine runs, in report order."""
    from provider.config import VerificationConfig
    from provider.verifiers.attestations import CosignAttestationVerifier
    from provider.verifiers.bundle import SigstoreBundleVerifier
    from provider.verifiers.cosign import CosignVerifier
    from provider.verifiers.notation.verifier import NotationVerifier
    from provider.verifiers.simplesigning import SimpleSigningVerifier

    limit = (verification or VerificationConfig()).max_predicate_bytes
    return [CosignVerifier(), NotationVerifier(), SimpleSigningVerifier(), SigstoreBundleVerifier(limit),
            CosignAttestationVerifier(limit)]
