"""The `sigwarden audit` command: read inputs, run the audit, write the reports."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from provider.audit.gatekeeper_status import gatekeeper_results
from provider.audit.html import render_html
from provider.audit.junit import junit_xml
from provider.audit.run import AuditReport, MemoExternalData, audit
from provider.policy.discovery import discover
from provider.policy.gatekeeper import PolicySet, load_documents, namespaces_from


def build_report(args: argparse.Namespace,
                 external_data: Callable[[argparse.Namespace], tuple[Any, Any]]) -> AuditReport:
    report = AuditReport([], [], 0, 0)
    if args.manifests:
        objects = [doc for doc, _ in load_documents(args.manifests)]
        namespaces = namespaces_from([*args.namespaces, *args.manifests])
        found = discover([*(args.templates or []), *args.constraints], namespaces)
        for warning in found.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        upstream, engine = external_data(args)
        try:
            memo = MemoExternalData(upstream)
            policies = PolicySet(found.templates, found.constraints, memo, namespaces)
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


def run_audit(args: argparse.Namespace, external_data: Callable[[argparse.Namespace], tuple[Any, Any]]) -> int:
    if not args.manifests and not args.gatekeeper_status:
        raise ValueError("give --manifests (objects to audit) and/or --gatekeeper-status")
    report = build_report(args, external_data).to_json()
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
