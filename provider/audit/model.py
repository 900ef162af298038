"""The audit report as data: workloads, images, results, metadata and the diff against a baseline.

Renderers (JSON, JUnit, CSV, HTML) only read these objects; `Report.to_json` is the v2 JSON report whose
schema ships as `provider/schemas/audit-report.schema.json`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from provider.audit.objects import Container, ObjectRef, user_label

API_VERSION = "sigwarden.dev/v2"
STATES = ("compliant", "blocked", "wouldBlock", "notEvaluated")
IMAGE_STATES = ("verified", "unverified", "error", "unchecked")
STATE_LABELS = {"compliant": "compliant", "blocked": "blocked now", "wouldBlock": "would be blocked by deny",
                "notEvaluated": "not evaluated"}


@dataclass(frozen=True)
class ConstraintInfo:
    kind: str
    name: str
    enforcement_action: str
    admission_actions: tuple[str, ...]
    audit_actions: tuple[str, ...]
    parameters: Any = None
    match: Any = None
    source: str = ""

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def denies(self) -> bool:
        """Blocks at admission today."""
        return "deny" in self.admission_actions

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "name": self.name, "enforcementAction": self.enforcement_action,
                                "admissionActions": list(self.admission_actions),
                                "auditActions": list(self.audit_actions)}
        if self.parameters is not None:
            data["parameters"] = self.parameters
        if self.match is not None:
            data["match"] = self.match
        if self.source:
            data["source"] = self.source
        return data


@dataclass(slots=True)
class Result:
    """One object evaluated against one constraint (by sigwarden or listed by Gatekeeper)."""

    object: ObjectRef
    workload: ObjectRef
    constraint: ConstraintInfo
    messages: list[str]
    source: str  # sigwarden | gatekeeper

    @property
    def compliant(self) -> bool:
        return not self.messages

    def to_json(self) -> dict[str, Any]:
        return {"object": self.object.to_json(), "workload": self.workload.id, "constraint": self.constraint.id,
                "enforcementAction": self.constraint.enforcement_action, "compliant": self.compliant,
                "blockedNow": not self.compliant and self.constraint.denies,
                "blockedIfDeny": not self.compliant, "messages": self.messages, "source": self.source}


@dataclass(slots=True)
class Failure:
    """A constraint a workload fails, with the distinct messages of all its objects."""

    constraint: ConstraintInfo
    messages: list[str] = field(default_factory=list)
    sources: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {"constraint": self.constraint.id, "enforcementAction": self.constraint.enforcement_action,
                "denies": self.constraint.denies, "messages": self.messages, "sources": sorted(self.sources)}


@dataclass(slots=True)
class Workload:
    ref: ObjectRef
    objects: list[str] = field(default_factory=list)
    containers: list[Container] = field(default_factory=list)  # and image volumes (Container.volume)
    evaluated: set[str] = field(default_factory=set)  # constraint ids that selected one of its objects
    failures: dict[str, Failure] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)  # constraint id -> why its match left it out
    exempt: str = ""
    gatekeeper: set[str] | None = None  # constraints Gatekeeper lists it under, when its status was given

    @property
    def state(self) -> str:
        if self.failures:
            return "blocked" if any(f.constraint.denies for f in self.failures.values()) else "wouldBlock"
        return "compliant" if self.evaluated else "notEvaluated"

    @property
    def images(self) -> list[str]:
        return list(dict.fromkeys(c.image for c in self.containers))

    @property
    def not_evaluated_reasons(self) -> list[str]:
        if self.exempt:
            return [self.exempt]
        if not self.excluded:
            return ["no constraint was given"]
        return [f"{constraint}: {reason}" for constraint, reason in sorted(self.excluded.items())]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.ref.id, **self.ref.to_json(), "state": self.state, "objects": self.objects,
            "containers": [c.to_json() for c in self.containers],
            "images": self.images, "evaluatedBy": sorted(self.evaluated),
            "failures": [f.to_json() for _, f in sorted(self.failures.items())],
            "excludedBy": [{"constraint": c, "reason": r} for c, r in sorted(self.excluded.items())]}
        if self.state == "notEvaluated":
            data["notEvaluatedReasons"] = self.not_evaluated_reasons
        if self.gatekeeper is not None:
            data["gatekeeper"] = sorted(self.gatekeeper)
        return data


@dataclass
class Signer:
    authority: str
    format: str
    subject: str
    issuer: str
    key_id: str
    signed_at: str = ""

    @property
    def identity(self) -> str:
        """Key name, certificate subject, Fulcio identity (with issuer) or GPG fingerprint, whichever is known."""
        who = self.subject or self.key_id or "(unnamed key)"
        return f"{who} ({self.issuer})" if self.issuer else who

    def to_json(self) -> dict[str, Any]:
        data = {"authority": self.authority, "format": self.format, "identity": self.identity,
                "subject": self.subject, "issuer": self.issuer, "keyId": self.key_id}
        if self.signed_at:
            data["signedAt"] = self.signed_at
        return data


@dataclass
class ReferenceCheck:
    reference: str
    state: str
    reason: str = ""


@dataclass(frozen=True, order=True)
class ImageUse:
    """Where an image is used: a workload's container, or its image volume (the volume's name)."""

    workload: str
    name: str
    volume: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"workload": self.workload, "name": self.name, "imageVolume": self.volume}

    def __str__(self) -> str:
        return f"{self.workload} {user_label(self.name, self.volume)}"


@dataclass
class ImageRow:
    """One distinct image: by digest when the provider resolved it, else by the reference as written."""

    key: str
    digest: str = ""
    references: list[ReferenceCheck] = field(default_factory=list)
    workloads: set[str] = field(default_factory=set)
    namespaces: set[str] = field(default_factory=set)
    authorities: set[str] = field(default_factory=set)
    signers: list[Signer] = field(default_factory=list)
    uses: set[ImageUse] = field(default_factory=set)

    @property
    def state(self) -> str:
        """Verified only when every reference to it verified (an authority's scope can differ by name)."""
        states = {r.state for r in self.references}
        return next((s for s in ("unverified", "error", "unchecked") if s in states), "verified")

    @property
    def reasons(self) -> list[str]:
        return list(dict.fromkeys(r.reason for r in self.references if r.state != "verified" and r.reason))

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "digest": self.digest, "references": [r.reference for r in self.references],
                "state": self.state, "verified": self.state == "verified",
                "workloads": sorted(self.workloads), "namespaces": sorted(self.namespaces),
                "authorities": sorted(self.authorities), "signers": [s.to_json() for s in self.signers],
                "reasons": self.reasons, "usedBy": [u.to_json() for u in sorted(self.uses)]}


@dataclass
class GatekeeperInput:
    """What Gatekeeper's own status said: per constraint, violations listed against its total."""

    files: list[str]
    listed: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def truncated(self) -> list[str]:
        """Constraints whose status lists fewer violations than it counts (the audit's per-constraint limit)."""
        return sorted(c for c, total in self.totals.items() if total > self.listed.get(c, 0))

    def to_json(self) -> dict[str, Any]:
        return {"files": self.files, "constraints": [
            {"constraint": c, "listed": self.listed.get(c, 0), "totalViolations": total,
             "truncated": total > self.listed.get(c, 0)} for c, total in sorted(self.totals.items())]}


@dataclass
class Metadata:
    version: str
    generated_at: str
    config: dict[str, Any]
    authorities: list[dict[str, Any]]
    constraints: list[ConstraintInfo]
    inputs: list[dict[str, Any]]
    exemptions: list[dict[str, str]] = field(default_factory=list)
    gatekeeper: GatekeeperInput | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "sigwardenVersion": self.version, "generatedAt": self.generated_at, "config": self.config,
            "authorities": self.authorities, "constraints": [c.to_json() for c in self.constraints],
            "inputs": self.inputs, "exemptions": self.exemptions}
        if self.gatekeeper is not None:
            data["gatekeeper"] = self.gatekeeper.to_json()
        return data


@dataclass
class Change:
    id: str
    before: str
    after: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "before": self.before, "after": self.after}


@dataclass
class Diff:
    baseline: str
    baseline_generated_at: str
    newly_non_compliant: list[Change] = field(default_factory=list)
    fixed: list[Change] = field(default_factory=list)
    added_workloads: list[str] = field(default_factory=list)
    removed_workloads: list[str] = field(default_factory=list)
    new_images: list[str] = field(default_factory=list)
    removed_images: list[str] = field(default_factory=list)
    verification_changed: list[Change] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.newly_non_compliant or self.fixed or self.added_workloads or self.removed_workloads
                    or self.new_images or self.removed_images or self.verification_changed)

    def to_json(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "baselineGeneratedAt": self.baseline_generated_at,
                "newlyNonCompliant": [c.to_json() for c in self.newly_non_compliant],
                "fixed": [c.to_json() for c in self.fixed], "addedWorkloads": self.added_workloads,
                "removedWorkloads": self.removed_workloads, "newImages": self.new_images,
                "removedImages": self.removed_images,
                "verificationChanged": [c.to_json() for c in self.verification_changed]}


@dataclass
class Report:
    metadata: Metadata
    workloads: list[Workload]
    images: list[ImageRow]
    results: list[Result]
    objects: int
    verifications: int
    diff: Diff | None = None

    @property
    def non_compliant(self) -> list[Workload]:
        return [w for w in self.workloads if w.state in ("blocked", "wouldBlock")]

    @property
    def not_evaluated(self) -> list[Workload]:
        return [w for w in self.workloads if w.state == "notEvaluated"]

    def summary(self) -> dict[str, Any]:
        states = Counter(w.state for w in self.workloads)
        images = Counter(i.state for i in self.images)
        return {"objects": self.objects, "constraints": len(self.metadata.constraints),
                "evaluations": sum(r.source == "sigwarden" for r in self.results),
                "violations": sum(not r.compliant for r in self.results),
                "verifications": self.verifications,
                "workloads": {"total": len(self.workloads), **{s: states[s] for s in STATES}},
                "images": {"total": len(self.images), **{s: images[s] for s in IMAGE_STATES}}}

    def by_namespace(self) -> list[dict[str, Any]]:
        counters: dict[str, Counter[str]] = {}
        for workload in self.workloads:
            counters.setdefault(workload.ref.namespace or "(cluster)", Counter())[workload.state] += 1
        return [{"namespace": ns, "total": sum(c.values()), **{s: c[s] for s in STATES}}
                for ns, c in sorted(counters.items())]

    def to_json(self) -> dict[str, Any]:
        data = {"apiVersion": API_VERSION, "kind": "AuditReport", "metadata": self.metadata.to_json(),
                "summary": self.summary(), "byNamespace": self.by_namespace(),
                "workloads": [w.to_json() for w in self.workloads],
                "images": [i.to_json() for i in self.images],
                "notEvaluated": [{"workload": w.ref.id, "namespace": w.ref.namespace,
                                  "reasons": w.not_evaluated_reasons} for w in self.not_evaluated],
                "results": [r.to_json() for r in self.results]}
        if self.diff is not None:
            data["diff"] = self.diff.to_json()
        return data
