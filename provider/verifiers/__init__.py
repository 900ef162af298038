"""Signature verifiers: each turns one format's artifacts into per-signature results."""

from __future__ import annotations

from provider.verifiers.base import Verifier


def default_verifiers() -> list[Verifier]:
    """The verifiers every engine runs, in report order."""
    from provider.verifiers.cosign import CosignVerifier

    return [CosignVerifier()]
