"""Gatekeeper's own audit results (`kubectl get constraints -A -o json`) in the report's format."""

from __future__ import annotations

from typing import Any

from provider.audit.run import Result

Totals = dict[tuple[str, str], int]


def gatekeeper_results(document: dict[str, Any]) -> tuple[list[Result], list[dict[str, Any]], Totals]:
    """Results, constraints and Gatekeeper's totalViolations per constraint (it lists at most a sample)."""
    items = document.get("items") if isinstance(document.get("items"), list) else [document]
    results: list[Result] = []
    constraints: list[dict[str, Any]] = []
    totals: dict[tuple[str, str], int] = {}
    for item in items:
        if not isinstance(item, dict) or not str(item.get("apiVersion", "")).startswith("constraints.gatekeeper.sh/"):
            continue
        spec, status = item.get("spec") or {}, item.get("status") or {}
        action = spec.get("enforcementAction", "deny")
        constraint = {"kind": item.get("kind", ""), "name": (item.get("metadata") or {}).get("name", ""),
                      "enforcementAction": action,
                      "admissionActions": [action] if action != "scoped" else _scoped(spec, "validation.gatekeeper.sh"),
                      "auditActions": [action] if action != "scoped" else _scoped(spec, "audit.gatekeeper.sh")}
        constraints.append(constraint)
        totals[(constraint["kind"], constraint["name"])] = int(status.get("totalViolations") or 0)
        for violation in status.get("violations") or []:
            group, version = violation.get("group", ""), violation.get("version", "")
            ref = {"apiVersion": f"{group}/{version}" if group else version, "kind": violation.get("kind", ""),
                   "namespace": violation.get("namespace", ""), "name": violation.get("name", "")}
            results.append(Result(ref, constraint, False, [violation.get("message", "")], "gatekeeper"))
    return results, constraints, totals


def _scoped(spec: dict[str, Any], point: str) -> list[str]:
    return [entry.get("action", "") for entry in spec.get("scopedEnforcementActions") or []
            if any(p.get("name") in (point, "*") for p in entry.get("enforcementPoints") or [])]
