"""Match and evaluate: every object against every constraint, as Gatekeeper's audit would, whatever the action.

Images are verified once each (batches through the memo) before any Rego runs. For each object this records
the constraints that selected it and their violations, the ones whose match left it out and why, or the
reason Gatekeeper would never see it at all. Objects are not kept after they are evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from provider.audit.memo import PROVIDER, MemoExternalData
from provider.audit.model import ConstraintInfo
from provider.audit.objects import Container, ObjectRef, Ownership, image_users, object_images, object_ref, pod_spec
from provider.audit.scope import Exemptions, mismatch_reason
from provider.policy.gatekeeper import AUDIT_POINT, VALIDATION_POINT, Constraint, PolicySet, Review


@dataclass(slots=True)
class Outcome:
    """What the audit learnt about one object."""

    ref: ObjectRef
    workload: ObjectRef
    containers: list[Container]
    violations: list[tuple[ConstraintInfo, list[str]]] = field(default_factory=list)  # every matched constraint
    excluded: list[tuple[ConstraintInfo, str]] = field(default_factory=list)
    exempt: str = ""


def constraint_info(constraint: Constraint) -> ConstraintInfo:
    return ConstraintInfo(constraint.kind, constraint.name, constraint.enforcement_action,
                          constraint.actions_at(VALIDATION_POINT), constraint.actions_at(AUDIT_POINT),
                          dict(constraint.parameters), dict(constraint.match), constraint.source)


def evaluate(policies: PolicySet, objects: Sequence[dict[str, Any]], memo: MemoExternalData,
             exemptions: Exemptions, verify_images: bool = True, progress: bool = False) -> list[Outcome]:
    """One Outcome per Pod-bearing object, and per other object some constraint selects."""
    if verify_images:
        memo.prefetch(PROVIDER, (image for obj in objects for image in object_images(obj)), progress)
    infos = {id(c): constraint_info(c) for c in policies.constraints}
    ownership = Ownership(objects)
    outcomes = []
    for obj in tqdm(objects, desc="evaluating objects", unit="obj", disable=not progress or None, leave=False):
        workload_like = pod_spec(obj) is not None
        ref = object_ref(obj)
        outcome = Outcome(ref, ownership.workload_of(obj), image_users(obj))
        outcome.exempt = exemptions.reason(ref.namespace)
        if outcome.exempt:
            if workload_like:
                outcomes.append(outcome)
            continue
        matched = policies.matching(obj)
        if not matched and not workload_like:
            continue  # a ConfigMap or Service no constraint selects is not a workload
        violations = policies.evaluate(Review(obj, operation=""), matched) if matched else []
        for constraint in matched:
            messages = list(dict.fromkeys(v.message for v in violations if v.constraint is constraint))
            outcome.violations.append((infos[id(constraint)], messages))
        chosen = {id(c) for c in matched}
        outcome.excluded = [(infos[id(c)], mismatch_reason(c, obj, policies.namespaces))
                            for c in policies.constraints if id(c) not in chosen]
        outcomes.append(outcome)
    return outcomes
