"""The audit as Kubernetes PolicyReports (`wgpolicyk8s.io/v1alpha2`): the objects Kyverno writes and Policy Reporter
(its UI, and its Slack, Teams and Loki targets) reads.

One `PolicyReport` per namespace and one `ClusterPolicyReport` for cluster-scoped workloads, with one result per
(workload, constraint): `policy` is the constraint as `Kind/name`, the workload is the result's `resources`.
A report whose JSON would near the API server's object size limit is split into `sigwarden-2`, `-3`… The group,
version and kinds are one `ReportFormat`, so the openreports.io successor is a second format, not a second writer.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml

from provider.audit.model import ConstraintInfo, ImageRow, Report, Workload
from provider.audit.printable import printable

SOURCE = "sigwarden"
REPORT_NAME = "sigwarden"
MANAGED_BY = {"app.kubernetes.io/managed-by": "sigwarden"}  # what a pruning job selects its own reports by
# etcd's default request limit is 1.5 MiB; a report stays well below it, leaving room for metadata and
# managedFields the API server adds.
MAX_REPORT_BYTES = 1024 * 1024
MAX_MESSAGE = 1024  # characters of a result's message; the full text is in the JSON report
RESULTS = ("pass", "fail", "warn", "error", "skip")


@dataclass(frozen=True)
class ReportFormat:
    api_version: str
    namespaced_kind: str
    cluster_kind: str


WGPOLICY = ReportFormat("wgpolicyk8s.io/v1alpha2", "PolicyReport", "ClusterPolicyReport")


def _timestamp(generated_at: str) -> dict[str, int]:
    moment = datetime.fromisoformat(generated_at.replace("Z", "+00:00"))
    seconds = int(moment.timestamp())
    return {"seconds": seconds, "nanos": moment.microsecond * 1000}


def _images_by_reference(report: Report) -> dict[str, ImageRow]:
    return {check.reference: row for row in report.images for check in row.references}


def outcome(constraint: ConstraintInfo, workload: Workload, images: dict[str, ImageRow]) -> str:
    """pass, or for a failure: `error` when the workload's images could only fail with an error (a registry that
    did not answer: nothing was decided about the image), `fail` when the constraint denies at admission, else
    `warn` (warn and dryrun constraints report without blocking)."""
    if constraint.id not in workload.failures:
        return "pass"
    states = {images[i].state for i in workload.images if i in images} - {"verified"}
    if states and states <= {"error"}:
        return "error"
    return "fail" if constraint.denies else "warn"


def _message(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 1] + "…"


def _result(constraint: ConstraintInfo, workload: Workload, images: dict[str, ImageRow], timestamp: dict[str, int],
            result: str, message: str) -> dict[str, Any]:
    rows = [images[i] for i in workload.images if i in images]
    properties = {"enforcementAction": constraint.enforcement_action, "images": " ".join(workload.images),
                  "authorities": " ".join(sorted({a for row in rows for a in row.authorities})),
                  "reason": _message("; ".join(dict.fromkeys(r for row in rows for r in row.reasons)))}
    ref = workload.ref
    resource = {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name}
    if ref.namespace:
        resource["namespace"] = ref.namespace
    return _printable({"policy": constraint.id, "result": result, "scored": result != "warn", "source": SOURCE,
                       "timestamp": timestamp, "message": _message(message), "resources": [resource],
                       "properties": {k: v for k, v in properties.items() if v}})


def _printable(value: Any) -> Any:
    """Every string as `printable` makes it: text from Pod specs and registries may hold control characters or
    lone surrogates, which neither YAML nor the API server's JSON can carry."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {key: _printable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_printable(item) for item in value]
    return value


def results(report: Report) -> Iterator[tuple[str, dict[str, Any]]]:
    """(namespace, result) for every workload and every constraint it was evaluated by, or left out by."""
    images = _images_by_reference(report)
    constraints = {c.id: c for c in report.metadata.constraints}
    timestamp = _timestamp(report.metadata.generated_at)
    for workload in report.workloads:
        namespace = workload.ref.namespace
        for constraint_id in sorted(workload.evaluated | set(workload.failures)):
            constraint = constraints.get(constraint_id) or workload.failures[constraint_id].constraint
            result = outcome(constraint, workload, images)
            failure = workload.failures.get(constraint_id)
            message = "; ".join(failure.messages) if failure else "compliant"
            yield namespace, _result(constraint, workload, images, timestamp, result, message)
        if workload.state == "notEvaluated":
            # Left out by every constraint (its match, an exempt namespace): a `skip`, with why.
            skipped = workload.excluded or {c: workload.exempt or "no constraint was given"
                                            for c in constraints}
            for constraint_id, reason in sorted(skipped.items()):
                if constraint_id in constraints:
                    yield namespace, _result(constraints[constraint_id], workload, images, timestamp, "skip",
                                             workload.exempt or reason)


def _report(form: ReportFormat, namespace: str, name: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": dict(MANAGED_BY)}
    if namespace:
        metadata["namespace"] = printable(namespace)
    counts = Counter(entry["result"] for entry in entries)
    return {"apiVersion": form.api_version, "kind": form.namespaced_kind if namespace else form.cluster_kind,
            "metadata": metadata, "summary": {r: counts[r] for r in RESULTS}, "results": entries}


def _size(entry: dict[str, Any]) -> int:
    return len(json.dumps(entry, separators=(",", ":"))) + 1


def policy_reports(report: Report, form: ReportFormat = WGPOLICY,
                   max_bytes: int = MAX_REPORT_BYTES) -> list[dict[str, Any]]:
    """The reports, cluster-scoped first then by namespace; each under `max_bytes` of JSON."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for namespace, entry in results(report):
        by_namespace.setdefault(namespace, []).append(entry)
    reports = []
    for namespace, entries in sorted(by_namespace.items()):
        parts: list[list[dict[str, Any]]] = [[]]
        used = _size(_report(form, namespace, f"{REPORT_NAME}-00", []))
        budget = max_bytes
        for entry in entries:
            size = _size(entry)
            if parts[-1] and used + size > budget:
                parts.append([])
                used = _size(_report(form, namespace, f"{REPORT_NAME}-00", []))
            parts[-1].append(entry)
            used += size
        for index, part in enumerate(parts, 1):
            name = REPORT_NAME if index == 1 else f"{REPORT_NAME}-{index}"
            reports.append(_report(form, namespace, name, part))
    return reports


def policy_reports_yaml(report: Report, form: ReportFormat = WGPOLICY) -> str:
    """A multi-document stream `kubectl apply -f` takes."""
    return yaml.safe_dump_all(policy_reports(report, form), sort_keys=False, allow_unicode=False, width=120)
