"""The image inventory: one row per distinct image (by digest where the provider resolved one), with where
it runs (each container or image volume using it), whether every reference to it verified, who signed it and
why not."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from provider.audit.memo import MemoExternalData
from provider.audit.model import ImageRow, ImageUse, ReferenceCheck, Signer, Workload


def build_images(workloads: Sequence[Workload], memo: MemoExternalData) -> list[ImageRow]:
    usage: dict[str, list[Workload]] = {}
    for workload in workloads:
        for image in workload.images:
            usage.setdefault(image, []).append(workload)
    rows: dict[str, ImageRow] = {}
    for image, users in sorted(usage.items()):
        facts, error = memo.answer(image)
        digest = str(facts.get("digest") or "") if facts else ""
        row = rows.setdefault(digest or image, ImageRow(digest or image, digest))
        row.references.append(_check(image, facts, error))
        row.workloads.update(w.ref.id for w in users)
        row.namespaces.update(w.ref.namespace for w in users if w.ref.namespace)
        row.uses.update(ImageUse(w.ref.id, c.name, c.volume) for w in users for c in w.containers if c.image == image)
        if facts and facts.get("verified"):
            row.authorities.update(str(a) for a in facts.get("authorities") or [])
        for signer in _signers(facts):
            if signer not in row.signers:
                row.signers.append(signer)
    return sorted(rows.values(), key=lambda r: (r.state == "verified", r.references[0].reference))


def _check(image: str, facts: dict[str, Any] | None, error: str) -> ReferenceCheck:
    if facts is not None:
        if facts.get("verified"):
            return ReferenceCheck(image, "verified")
        return ReferenceCheck(image, "unverified", str(facts.get("reason") or "no trusted signature verified"))
    if error:
        return ReferenceCheck(image, "error", error)
    return ReferenceCheck(image, "unchecked", "not checked: no constraint needed the provider's answer")


def _signers(facts: dict[str, Any] | None) -> list[Signer]:
    found = []
    for signature in (facts or {}).get("signatures") or []:
        if not isinstance(signature, dict) or not signature.get("verified"):
            continue
        signer = signature.get("signer") or {}
        when = signature.get("signedAt") or (signature.get("timestamp") or {}).get("time") or \
            (signature.get("tlog") or {}).get("integratedTime") or ""
        found.append(Signer(str(signature.get("authority", "")), str(signature.get("format", "")),
                            str(signer.get("subject", "")), str(signer.get("issuer", "")),
                            str(signer.get("keyId", "")), str(when)))
    return found
