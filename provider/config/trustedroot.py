"""A Sigstore `trusted_root.json` as sigwarden uses it: Fulcio CAs, Rekor and CT log keys, each with its window.

Each entry's `validFor` is kept: sigstore-go counts a CA, a log key or a CT key only for signatures, entries
and SCTs inside it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_der_public_key

from provider.config.model import PublicKey, TrustedCA
from provider.config.reader import Node
from provider.verifiers.certparse import check_serial_numbers


@dataclass(frozen=True)
class RootMaterial:
    """What sigwarden reads from a Sigstore `trusted_root.json`: CAs, log keys, CT keys, each with its window."""

    authorities: tuple[TrustedCA, ...] = ()
    tlog_keys: tuple[PublicKey, ...] = ()
    ct_keys: tuple[PublicKey, ...] = ()


def _window(entry: Any) -> tuple[datetime | None, datetime | None]:
    valid_for = entry.get("validFor") or {}
    return _timestamp(valid_for.get("start")), _timestamp(valid_for.get("end"))


def _timestamp(text: Any) -> datetime | None:
    """A protobuf JSON Timestamp (RFC 3339, UTC); a time without an offset is taken as UTC."""
    if not text:
        return None
    moment = datetime.fromisoformat(str(text))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _log_keys(logs: Any, kind: str) -> tuple[PublicKey, ...]:
    keys = []
    for index, log in enumerate(logs):
        raw = base64.b64decode(log["publicKey"]["rawBytes"])
        start, end = _window(log["publicKey"])
        keys.append(PublicKey(origin=f"trustedRoot.{kind}[{index}]", key=load_der_public_key(raw),
                              valid_from=start, valid_until=end))
    return tuple(keys)


def read_trusted_root(node: Node, data: Any) -> RootMaterial:
    """Fulcio CAs, Rekor keys and CT log keys from a Sigstore `trusted_root.json`, with their validity windows."""
    authorities: list[TrustedCA] = []
    try:
        for authority in data.get("certificateAuthorities", []):
            chain = [x509.load_der_x509_certificate(base64.b64decode(c["rawBytes"]))
                     for c in authority.get("certChain", {}).get("certificates", [])]
            check_serial_numbers(*chain)  # as sigstore-go reads them, with Go's crypto/x509
            if chain:  # leaf-most first: the last certificate is the root
                authorities.append(TrustedCA(chain[-1], tuple(chain[:-1]), *_window(authority)))
        root = RootMaterial(tuple(authorities), _log_keys(data.get("tlogs", []), "tlogs"),
                           _log_keys(data.get("ctlogs", []), "ctlogs"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise node.error("trustedRoot", f"not a Sigstore trusted root: {exc}") from None
    if not authorities:
        raise node.error("trustedRoot", "the trusted root lists no certificate authorities")
    return root
