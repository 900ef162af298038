"""What a report was made from: sigwarden version, config fingerprint, authorities, constraints, inputs.

The config fingerprint is a SHA-256 over the bytes of every file the config was built from (the config and
the keys, certificates and trust policies it names), so two reports made under the same trust material
carry the same fingerprint wherever the files sit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from provider.config import Config
from provider.config.model import Authority


def config_metadata(config: Config | None, provider_url: str | None) -> dict[str, Any]:
    if config is None:
        return {"provider": provider_url} if provider_url else {}
    digest = hashlib.sha256()
    for source in config.sources:
        data = _read(source)
        digest.update(len(data).to_bytes(8, "big") + data)
    return {"path": str(config.path), "fingerprint": f"sha256:{digest.hexdigest()}",
            "files": len(config.sources)}


def authority_metadata(config: Config | None) -> list[dict[str, Any]]:
    return [{"name": a.name, "kinds": authority_kinds(a), "scopes": list(a.scopes) or ["*"]}
            for a in (config.authorities if config else ())]


def authority_kinds(authority: Authority) -> list[str]:
    kinds = []
    if authority.cosign is not None:
        if authority.cosign.public_keys:
            kinds.append("cosign-key")
        if authority.cosign.keyless is not None:
            kinds.append("cosign-keyless")
        if authority.cosign.pki is not None:
            kinds.append("cosign-pki")
    if authority.notation is not None:
        kinds.append("notation")
    if authority.attestation is not None:
        kinds.extend(sorted({f"attestation-{k.kind}" for k in authority.attestation.keys}))
    return kinds


def input_metadata(role: str, paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Each file read (directories expanded as the loader does), with its SHA-256."""
    found = []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json")) if path.is_dir() \
            else [path]
        found.extend({"role": role, "path": str(f), "sha256": hashlib.sha256(_read(f)).hexdigest()} for f in files)
    return found


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""  # a file that vanished since the config loaded: the fingerprint changes, as it should
