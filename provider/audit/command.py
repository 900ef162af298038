"""The `sigwarden audit` command: read inputs, run the audit, write the reports."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provider.audit.gatekeeper_status import gatekeeper_results
from provider.audit.html import render_html
from provider.audit.junit import junit_xml
from provider.audit.run import AuditReport, MemoExternalData, audit
from provider.policy.gatekeeper import PolicySet, load_documents
from provider.policy.patterns import constraint_pattern_warnings


def build_report(args: argparse.Namespace, templates: list[Path],
                 external_data: Callable[[argparse.Namespace], tuple[Any, Any]]) -> AuditReport:
    report = AuditReport([], [], 0, 0)
    if args.manifests:
        if not args.constraints:
            raise ValueError("--manifests needs --constraints (the constraints to evaluate)")
        objects = [doc for doc, _ in load_documents(args.manifests)]
        namespaces = [*args.namespaces, *args.manifests]
        upstream, engine = external_data(args)
        try:
            memo = MemoExternalData(upstream)
            policies = PolicySet.from_paths([*(args.templates or templates), *args.constraints], memo, namespaces)
            for warning in constraint_pattern_warnings(policies.constraints):
                print(f"Warning: {warning}", file=sys.stderr)
            report = audit(policies, objects, memo, progress=not args.no_progress)
        finally:
            if engine is not None:
                engine.shutdown()
    for path in args.gatekeeper_status:
        results, constraints, totals = gatekeeper_results(json.loads(path.read_text()))
        report.results.extend(results)
        known = {(c["kind"], c["name"]) for c in report.constraints}
        report.constraints.extend(c for c in constraints if (c["kind"], c["name"]) not in known)
        report.gatekeeper_totals.update(totals)
    return report


def run_audit(args: argparse.Namespace, templates: list[Path],
              external_data: Callable[[argparse.Namespace], tuple[Any, Any]]) -> int:
    if not args.manifests and not args.gatekeeper_status:
        raise ValueError("give --manifests (with --constraints) and/or --gatekeeper-status")
    report = build_report(args, templates, external_data).to_json()
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if args.junit:
        args.junit.write_text(junit_xml(report))
    if args.html:
        args.html.write_text(render_html(report))
    summary = report["summary"]
    print(f"{summary['objects']} objects, {summary['evaluations']} evaluations: {summary['compliant']} compliant, "
          f"{summary['nonCompliant']} non-compliant ({summary['wouldBlock']} that deny would block); "
          f"{summary['verifications']} images verified", file=sys.stdout)
    return 1 if summary["nonCompliant"] else 0
