"""Gatekeeper's own audit results (`kubectl get constraints -A -o json`), read into the report's terms.

Gatekeeper lists at most `--constraint-violations-limit` violations per constraint (20 by default) while
`status.totalViolations` counts them all; both are kept so the report can say when the list was cut.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provider.audit.model import ConstraintInfo
from provider.audit.objects import ObjectRef


@dataclass(frozen=True)
class GatekeeperViolation:
    object: ObjectRef
    constraint: ConstraintInfo
    message: str


@dataclass
class GatekeeperStatus:
    constraints: list[ConstraintInfo] = field(default_factory=list)
    violations: list[GatekeeperViolation] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)


def read_status(document: Any, source: str, into: GatekeeperStatus) -> None:
    """Add the constraints in one status document (a List or a single constraint) to `into`."""
    if not isinstance(document, dict):
        raise ValueError(f"{source}: not a JSON object (expected `kubectl get constraints -A -o json` output)")
    items = document.get("items") if isinstance(document.get("items"), list) else [document]
    for item in items:
        if not isinstance(item, dict) or not str(item.get("apiVersion", "")).startswith("constraints.gatekeeper.sh/"):
            continue
        spec, status = item.get("spec") or {}, item.get("status") or {}
        action = str(spec.get("enforcementAction", "deny"))
        constraint = ConstraintInfo(
            str(item.get("kind", "")), str((item.get("metadata") or {}).get("name", "")), action,
            (action,) if action != "scoped" else _scoped(spec, "validation.gatekeeper.sh"),
            (action,) if action != "scoped" else _scoped(spec, "audit.gatekeeper.sh"),
            spec.get("parameters") or {}, spec.get("match") or {}, source)
        into.constraints.append(constraint)
        into.totals[constraint.id] = int(status.get("totalViolations") or 0)
        for violation in status.get("violations") or []:
            group, version = str(violation.get("group", "")), str(violation.get("version", ""))
            ref = ObjectRef(str(violation.get("kind", "")), str(violation.get("namespace", "")),
                            str(violation.get("name", "")), f"{group}/{version}" if group else version)
            into.violations.append(GatekeeperViolation(ref, constraint, str(violation.get("message", ""))))


def _scoped(spec: dict[str, Any], point: str) -> tuple[str, ...]:
    return tuple(str(entry.get("action", "")) for entry in spec.get("scopedEnforcementActions") or []
                 if any(p.get("name") in (point, "*") for p in entry.get("enforcementPoints") or []))
