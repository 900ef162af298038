"""What changed since a previous v2 JSON report: workloads that became non-compliant or were fixed, workloads
added or gone, new images and images whose verification changed (images are compared by digest)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provider.audit.model import API_VERSION, Change, Diff, Report

NON_COMPLIANT = {"blocked", "wouldBlock"}


def load_baseline(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"--baseline {path}: cannot read a JSON report: {exc}") from None
    if not isinstance(data, dict) or data.get("apiVersion") != API_VERSION:
        found = data.get("apiVersion") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"--baseline {path}: apiVersion is {found!r}, not {API_VERSION}; give a JSON report "
                         "written by `sigwarden audit --json` from this version")
    for key in ("workloads", "images"):
        entries = data.get(key)
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "state" in e for e in entries):
            raise ValueError(f"--baseline {path}: `{key}` is not a list of entries with a state")
    return data


def compare(baseline: dict[str, Any], report: Report, source: str) -> Diff:
    diff = Diff(source, str((baseline.get("metadata") or {}).get("generatedAt", "")))
    before = {str(w.get("id")): str(w["state"]) for w in baseline["workloads"]}
    now = {w.ref.id: w.state for w in report.workloads}
    for workload, state in now.items():
        previous = before.get(workload)
        if state in NON_COMPLIANT and previous not in NON_COMPLIANT:
            diff.newly_non_compliant.append(Change(workload, previous or "absent", state))
        elif previous in NON_COMPLIANT and state not in NON_COMPLIANT:
            diff.fixed.append(Change(workload, previous, state))
    diff.added_workloads = sorted(now.keys() - before.keys())
    diff.removed_workloads = sorted(before.keys() - now.keys())
    images_before = {str(i.get("key")): str(i["state"]) for i in baseline["images"]}
    images_now = {i.key: i.state for i in report.images}
    diff.new_images = sorted(images_now.keys() - images_before.keys())
    diff.removed_images = sorted(images_before.keys() - images_now.keys())
    diff.verification_changed = [Change(key, images_before[key], state) for key, state in sorted(images_now.items())
                                 if key in images_before and images_before[key] != state]
    return diff
