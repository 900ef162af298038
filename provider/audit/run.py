"""`sigwarden audit` as one straight pipeline: load objects → match and evaluate (one verification per distinct
image) → one report model (workloads, images, results, metadata). Renderers read only that model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provider import __version__
from provider.audit.evaluate import Outcome, evaluate
from provider.audit.gatekeeper_status import GatekeeperStatus
from provider.audit.inventory import build_images
from provider.audit.memo import MemoExternalData
from provider.audit.model import GatekeeperInput, Metadata, Report
from provider.audit.scope import Exemptions
from provider.audit.workloads import build_workloads
from provider.facts import rfc3339
from provider.policy.gatekeeper import PolicySet, load_documents


@dataclass
class ClusterObjects:
    """The documents of a cluster dump, sorted by what the audit does with them."""

    objects: list[dict[str, Any]] = field(default_factory=list)  # what gets audited
    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    gatekeeper_configs: list[dict[str, Any]] = field(default_factory=list)


def load_objects(paths: Sequence[Path]) -> ClusterObjects:
    loaded = ClusterObjects()
    for doc, _ in load_documents(paths):
        api_version, kind = str(doc.get("apiVersion", "")), doc.get("kind")
        if kind == "Namespace":
            loaded.namespaces[str((doc.get("metadata") or {}).get("name", ""))] = doc
        elif kind == "Config" and api_version.startswith("config.gatekeeper.sh/"):
            loaded.gatekeeper_configs.append(doc)
        elif kind != "ConstraintTemplate" and not api_version.startswith("constraints.gatekeeper.sh/"):
            loaded.objects.append(doc)
    return loaded


def default_metadata(constraints: Sequence[Any] = ()) -> Metadata:
    return Metadata(__version__, rfc3339(datetime.now(UTC)), {}, [], list(constraints), [])


def audit(policies: PolicySet, objects: Sequence[dict[str, Any]], memo: MemoExternalData, *,
          exemptions: Exemptions | None = None, status: GatekeeperStatus | None = None,
          metadata: Metadata | None = None, verify_images: bool = True, progress: bool = False) -> Report:
    """Evaluate every object against every constraint as Gatekeeper's audit would, and build the report."""
    exemptions = exemptions or Exemptions((), policies.namespaces)
    outcomes = evaluate(policies, objects, memo, exemptions, verify_images, progress)
    return build_report(outcomes, memo, status, metadata or default_metadata(), len(objects))


def build_report(outcomes: Sequence[Outcome], memo: MemoExternalData | None, status: GatekeeperStatus | None,
                 metadata: Metadata, objects: int) -> Report:
    workloads, results = build_workloads(outcomes, status)
    if status is not None:
        known = {c.id for c in metadata.constraints}
        for constraint in status.constraints:
            if constraint.id not in known:
                known.add(constraint.id)
                metadata.constraints.append(constraint)
        if metadata.gatekeeper is None:
            metadata.gatekeeper = GatekeeperInput([])
        for violation in status.violations:
            listed = metadata.gatekeeper.listed
            listed[violation.constraint.id] = listed.get(violation.constraint.id, 0) + 1
        metadata.gatekeeper.totals.update(status.totals)
    images = build_images(workloads, memo) if memo is not None else []
    return Report(metadata, workloads, images, results, objects, memo.verifications if memo else 0)
