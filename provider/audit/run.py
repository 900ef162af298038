"""`sigwarden audit`: evaluate every object against every constraint, whatever its enforcement action.

Images are verified once each, in batches, before any Rego runs; every `external_data` call during
evaluation is then answered from that memo, so thousands of objects sharing images cost one verification
per distinct image. Results are small records; objects are not kept after they are evaluated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tqdm import tqdm

from provider.facts import rfc3339
from provider.policy.external import ExternalData, gatekeeper_shape
from provider.policy.gatekeeper import AUDIT_POINT, VALIDATION_POINT, Constraint, PolicySet, Review

BATCH = 100
POD_SPEC_PATHS = {"Pod": ("spec",), "CronJob": ("spec", "jobTemplate", "spec", "template", "spec")}
TEMPLATE_KINDS = {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"}


class MemoExternalData:
    """Answers `external_data` from one verification per distinct key (a bounded set: the images audited)."""

    def __init__(self, upstream: ExternalData) -> None:
        self.upstream = upstream
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.system_errors: dict[str, str] = {}
        self.verifications = 0

    def prefetch(self, provider: str, keys: Iterable[str], progress: bool = False) -> None:
        missing = sorted({k for k in keys if (provider, k) not in self.items})
        batches = [missing[i:i + BATCH] for i in range(0, len(missing), BATCH)]
        for batch in tqdm(batches, desc="verifying images", unit="batch", disable=not progress or None,
                          leave=False):
            self._fetch(provider, batch)

    def _fetch(self, provider: str, keys: list[str]) -> None:
        answer = self.upstream({"provider": provider, "keys": keys})
        self.verifications += len(keys)
        if answer.get("system_error"):
            for key in keys:
                self.system_errors[key] = answer["system_error"]
            return
        for key, value in answer.get("responses") or []:
            self.items[(provider, key)] = {"key": key, "value": value}
        for key, error in answer.get("errors") or []:
            self.items[(provider, key)] = {"key": key, "error": error}

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        provider = str(request.get("provider", ""))
        keys = list(dict.fromkeys(str(k) for k in request.get("keys") or []))
        self._fetch_missing(provider, keys)
        errors = [self.system_errors[k] for k in keys if k in self.system_errors]
        if errors:
            return gatekeeper_shape([], errors[0], 0)
        return gatekeeper_shape([self.items[(provider, k)] for k in keys if (provider, k) in self.items])

    def _fetch_missing(self, provider: str, keys: list[str]) -> None:
        missing = [k for k in keys if (provider, k) not in self.items and k not in self.system_errors]
        if missing:
            self._fetch(provider, missing)

    def facts(self, image: str) -> dict[str, Any]:
        item = self.items.get(("sigwarden", image))
        if item is None:
            return {"image": image, "error": self.system_errors.get(image, "not checked")}
        if "error" in item:
            return {"image": image, "error": item["error"]}
        value = item["value"]
        return {"image": image, "digest": value.get("digest", ""), "verified": bool(value.get("verified")),
                "authorities": list(value.get("authorities") or []), "reason": value.get("reason", "")}


def object_images(obj: dict[str, Any]) -> list[str]:
    """Every image of a Pod-bearing object (the same kinds and lists the policies read)."""
    kind = obj.get("kind", "")
    path = POD_SPEC_PATHS.get(kind) or (("spec", "template", "spec") if kind in TEMPLATE_KINDS else None)
    if path is None:
        return []
    spec: Any = obj
    for part in path:
        spec = spec.get(part) if isinstance(spec, dict) else None
    if not isinstance(spec, dict):
        return []
    images = [c.get("image") for field_name in ("containers", "initContainers", "ephemeralContainers")
              for c in spec.get(field_name) or [] if isinstance(c, dict)]
    return list(dict.fromkeys(i for i in images if isinstance(i, str) and i))


@dataclass
class Result:
    object: dict[str, str]
    constraint: dict[str, Any]
    compliant: bool
    messages: list[str]
    source: str  # sigwarden | gatekeeper
    images: list[dict[str, Any]] = field(default_factory=list)

    @property
    def would_block(self) -> bool:
        """Non-compliant under a constraint that does not deny yet at admission: what deny would block."""
        return not self.compliant and "deny" not in self.constraint["admissionActions"]

    def to_json(self) -> dict[str, Any]:
        return {"object": self.object, "constraint": self.constraint, "compliant": self.compliant,
                "messages": self.messages, "source": self.source, "wouldBlock": self.would_block,
                "images": self.images}


def constraint_json(constraint: Constraint) -> dict[str, Any]:
    return {"kind": constraint.kind, "name": constraint.name, "enforcementAction": constraint.enforcement_action,
            "admissionActions": list(constraint.actions_at(VALIDATION_POINT)),
            "auditActions": list(constraint.actions_at(AUDIT_POINT))}


def object_ref(obj: dict[str, Any]) -> dict[str, str]:
    metadata = obj.get("metadata") or {}
    return {"apiVersion": str(obj.get("apiVersion", "")), "kind": str(obj.get("kind", "")),
            "namespace": str(metadata.get("namespace", "")), "name": str(metadata.get("name", ""))}


@dataclass
class AuditReport:
    results: list[Result]
    constraints: list[dict[str, Any]]
    objects: int
    verifications: int
    gatekeeper_totals: dict[tuple[str, str], int] = field(default_factory=dict)
    generated_at: str = field(default_factory=lambda: rfc3339(datetime.now(UTC)))

    def to_json(self) -> dict[str, Any]:
        non_compliant = [r for r in self.results if not r.compliant]
        namespaces: dict[str, Counter[str]] = {}
        for result in self.results:
            counter = namespaces.setdefault(result.object["namespace"] or "(cluster)", Counter())
            counter["evaluations"] += 1
            counter["nonCompliant"] += not result.compliant
        by_constraint = []
        for constraint in self.constraints:
            mine = [r for r in self.results if r.constraint["name"] == constraint["name"]
                    and r.constraint["kind"] == constraint["kind"]]
            entry = {**constraint, "evaluated": sum(r.source == "sigwarden" for r in mine),
                     "violations": sum(not r.compliant for r in mine)}
            total = self.gatekeeper_totals.get((constraint["kind"], constraint["name"]))
            if total is not None:
                entry["gatekeeperTotalViolations"] = total
            by_constraint.append(entry)
        return {
            "apiVersion": "sigwarden.dev/v1", "kind": "AuditReport", "generatedAt": self.generated_at,
            "summary": {"objects": self.objects, "constraints": len(self.constraints),
                        "evaluations": len(self.results), "compliant": len(self.results) - len(non_compliant),
                        "nonCompliant": len(non_compliant), "wouldBlock": sum(r.would_block for r in self.results),
                        "verifications": self.verifications},
            "byNamespace": [{"namespace": ns, "evaluations": c["evaluations"], "nonCompliant": c["nonCompliant"]}
                            for ns, c in sorted(namespaces.items())],
            "byConstraint": by_constraint,
            "results": [r.to_json() for r in self.results],
        }


def audit(policies: PolicySet, objects: Sequence[dict[str, Any]], memo: MemoExternalData,
          progress: bool = False) -> AuditReport:
    """Evaluate every object against every constraint as Gatekeeper's audit would (no admission operation)."""
    if any("external_data" in policies.templates[c.kind].rego for c in policies.constraints):
        memo.prefetch("sigwarden", (image for obj in objects for image in object_images(obj)), progress)
    results: list[Result] = []
    audited = [o for o in objects if o.get("kind") != "Namespace"]
    for obj in tqdm(audited, desc="evaluating objects", unit="obj", disable=not progress or None, leave=False):
        matched = policies.matching(obj)
        violations = policies.evaluate(Review(obj, operation=""), matched)
        for constraint in matched:
            messages = [v.message for v in violations if v.constraint is constraint]
            results.append(Result(object_ref(obj), constraint_json(constraint), not messages, messages, "sigwarden",
                                  [memo.facts(i) for i in object_images(obj)]))
    return AuditReport(results, [constraint_json(c) for c in policies.constraints], len(audited),
                       memo.verifications)
