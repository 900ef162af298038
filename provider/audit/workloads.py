"""Workloads from evaluated objects: each object's results folded into its top-level owner.

Gatekeeper's own violations (when its status was given) join the same workloads: an object the input
also holds goes to that object's owner; one it does not is its own workload.
"""

from __future__ import annotations

from collections.abc import Sequence

from provider.audit.evaluate import Outcome
from provider.audit.gatekeeper_status import GatekeeperStatus
from provider.audit.model import ConstraintInfo, Failure, Result, Workload
from provider.audit.objects import ObjectRef

STATE_ORDER = {"blocked": 0, "wouldBlock": 1, "notEvaluated": 2, "compliant": 3}


def build_workloads(outcomes: Sequence[Outcome], status: GatekeeperStatus | None) \
        -> tuple[list[Workload], list[Result]]:
    workloads: dict[str, Workload] = {}
    results: list[Result] = []
    owners: dict[str, ObjectRef] = {}
    for outcome in outcomes:
        workload = workloads.setdefault(outcome.workload.id, Workload(outcome.workload))
        owners[outcome.ref.id] = outcome.workload
        workload.objects.append(outcome.ref.id)
        workload.containers.extend(c for c in outcome.containers if c not in workload.containers)
        if outcome.exempt:
            workload.exempt = workload.exempt or outcome.exempt
            continue
        for constraint, messages in outcome.violations:
            workload.evaluated.add(constraint.id)
            results.append(Result(outcome.ref, outcome.workload, constraint, messages, "sigwarden"))
            if messages:
                _fail(workload, constraint, messages, "sigwarden")
        for constraint, reason in outcome.excluded:
            workload.excluded.setdefault(constraint.id, reason)
    if status is not None:
        _merge_gatekeeper(status, workloads, owners, results)
    for workload in workloads.values():
        # Left out by a constraint for one object (a Pod) but selected through another (its Deployment).
        workload.excluded = {c: r for c, r in workload.excluded.items() if c not in workload.evaluated}
    ordered = sorted(workloads.values(), key=lambda w: (w.ref.namespace, w.ref.kind, w.ref.name))
    return ordered, results


def _fail(workload: Workload, constraint: ConstraintInfo, messages: Sequence[str], source: str) -> None:
    failure = workload.failures.setdefault(constraint.id, Failure(constraint))
    failure.messages.extend(m for m in messages if m not in failure.messages)
    failure.sources.add(source)


def _merge_gatekeeper(status: GatekeeperStatus, workloads: dict[str, Workload], owners: dict[str, ObjectRef],
                      results: list[Result]) -> None:
    for workload in workloads.values():
        workload.gatekeeper = set()
    for violation in status.violations:
        owner = owners.get(violation.object.id, violation.object)
        workload = workloads.get(owner.id)
        if workload is None:
            workload = workloads[owner.id] = Workload(owner)
        if violation.object.id not in workload.objects:
            workload.objects.append(violation.object.id)
        if workload.gatekeeper is None:  # an object first seen here
            workload.gatekeeper = set()
        workload.gatekeeper.add(violation.constraint.id)
        workload.evaluated.add(violation.constraint.id)
        _fail(workload, violation.constraint, [violation.message], "gatekeeper")
        results.append(Result(violation.object, owner, violation.constraint, [violation.message], "gatekeeper"))


def by_severity(workloads: Sequence[Workload]) -> list[Workload]:
    """Blocked first, then would-be-blocked, not evaluated, compliant; by namespace and name within each."""
    return sorted(workloads, key=lambda w: (STATE_ORDER[w.state], w.ref.namespace, w.ref.kind, w.ref.name))
