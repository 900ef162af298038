"""The `sigwarden audit` command: read the inputs, run the pipeline, write the reports, choose the exit code."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provider.audit.csv_report import csv_report
from provider.audit.diff import compare, load_baseline
from provider.audit.evaluate import constraint_info
from provider.audit.gatekeeper_status import GatekeeperStatus, read_status
from provider.audit.html import render_html
from provider.audit.json_report import json_report
from provider.audit.junit import junit_xml
from provider.audit.memo import BATCH, MemoExternalData
from provider.audit.metadata import authority_metadata, config_metadata, input_metadata
from provider.audit.model import GatekeeperInput, Report
from provider.audit.policyreport import policy_reports, policy_reports_yaml
from provider.audit.run import audit, build_report, default_metadata, load_objects
from provider.audit.scope import Exemptions
from provider.cli import print_warnings
from provider.policy.discovery import discover
from provider.policy.gatekeeper import PolicySet, load_documents, namespaces_from

ExternalDataFactory = Callable[[argparse.Namespace], tuple[Any, Any]]


def read_gatekeeper_status(paths: list[Path]) -> GatekeeperStatus | None:
    if not paths:
        return None
    status = GatekeeperStatus()
    for path in paths:
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"--gatekeeper-status {path}: cannot read JSON: {exc}") from None
        read_status(document, str(path), status)
    return status


def _inputs(args: argparse.Namespace, templates: list[Path]) -> list[dict[str, Any]]:
    roles = (("manifests", args.manifests), ("constraints", args.constraints), ("templates", templates),
             ("namespaces", args.namespaces), ("gatekeeper-status", args.gatekeeper_status),
             ("gatekeeper-config", args.gatekeeper_config), ("baseline", [args.baseline] if args.baseline else []))
    return [entry for role, paths in roles for entry in input_metadata(role, paths)]


def build_audit_report(args: argparse.Namespace, external_data: ExternalDataFactory) -> Report:
    status = read_gatekeeper_status(args.gatekeeper_status)
    if not args.manifests:
        metadata = default_metadata()
        metadata.inputs = _inputs(args, [])
        metadata.gatekeeper = GatekeeperInput([str(p) for p in args.gatekeeper_status])
        return build_report([], None, status, metadata, 0)
    loaded = load_objects(args.manifests)
    namespaces = namespaces_from([*args.namespaces, *args.manifests])
    found = discover([*args.templates, *args.constraints], namespaces)
    print_warnings(found.warnings)
    configs = [*loaded.gatekeeper_configs, *(doc for doc, _ in load_documents(args.gatekeeper_config))]
    upstream, engine = external_data(args)
    try:
        config = getattr(engine, "config", None)
        memo = MemoExternalData(upstream, min(BATCH, config.server.max_keys) if config is not None else BATCH)
        policies = PolicySet(found.templates, found.constraints, memo, namespaces)
        exemptions = Exemptions.build(args.exempt_namespace, configs, policies.namespaces)
        metadata = default_metadata()
        metadata.config = config_metadata(config, getattr(args, "provider", None))
        metadata.authorities = authority_metadata(config)
        metadata.inputs = _inputs(args, args.templates)
        metadata.exemptions = [{"pattern": e.pattern, "source": e.source} for e in exemptions.exclusions]
        if status is not None:
            metadata.gatekeeper = GatekeeperInput([str(p) for p in args.gatekeeper_status])
        metadata.constraints = [constraint_info(c) for c in policies.constraints]
        return audit(policies, loaded.objects, memo, exemptions=exemptions, status=status, metadata=metadata,
                     progress=not args.no_progress)
    finally:
        if engine is not None:
            engine.shutdown()


def run_audit(args: argparse.Namespace, external_data: ExternalDataFactory) -> int:
    if args.apply_policy_reports and not args.cluster:
        raise ValueError("--apply-policy-reports writes to the cluster --cluster reads: give --cluster too")
    if not args.cluster:
        return _run_audit(args, external_data, None)
    import tempfile

    from provider.kube.client import KubeError

    with tempfile.TemporaryDirectory(prefix="sigwarden-cluster-") as scratch:
        try:
            return _from_cluster(args, external_data, Path(scratch))
        except KubeError as exc:  # one line naming the call, like every other input error
            raise ValueError(f"--cluster: {exc}") from None


def _from_cluster(args: argparse.Namespace, external_data: ExternalDataFactory, scratch: Path) -> int:
    from provider.kube.cluster import client_from_environment, read_cluster, write_inputs

    client = client_from_environment(scratch)
    manifests, policies, status = write_inputs(read_cluster(client), scratch)
    args.manifests = [manifests, *args.manifests]
    args.constraints = [policies, *args.constraints]
    args.gatekeeper_status = [status, *args.gatekeeper_status]
    return _run_audit(args, external_data, client)


def _run_audit(args: argparse.Namespace, external_data: ExternalDataFactory, client: Any) -> int:
    if not args.manifests and not args.gatekeeper_status:
        raise ValueError("give --manifests (objects to audit) and/or --gatekeeper-status")
    baseline = load_baseline(args.baseline) if args.baseline else None  # a bad baseline fails before the work
    report = build_audit_report(args, external_data)
    if baseline is not None:
        report.diff = compare(baseline, report, str(args.baseline))
    if args.json:
        args.json.write_text(json_report(report), encoding="utf-8")
    if args.junit:
        args.junit.write_text(junit_xml(report), encoding="utf-8")
    if args.csv:
        args.csv.write_text(csv_report(report), encoding="utf-8", newline="")
    if args.html:
        args.html.write_text(render_html(report), encoding="utf-8")
    if args.policy_report:
        args.policy_report.write_text(policy_reports_yaml(report), encoding="utf-8")
    if args.apply_policy_reports:
        from provider.kube.cluster import apply_reports

        applied, pruned = apply_reports(client, policy_reports(report))
        print(f"PolicyReports: {applied} applied (field manager sigwarden), {pruned} stale ones deleted",
              file=sys.stderr)
    print(summary_line(report), file=sys.stdout)
    return exit_code(report, args.fail_on)


def summary_line(report: Report) -> str:
    s = report.summary()
    w, i = s["workloads"], s["images"]
    return (f"{s['objects']} objects, {w['total']} workloads: {w['blocked']} blocked now, {w['wouldBlock']} would be "
            f"blocked by deny, {w['notEvaluated']} not evaluated, {w['compliant']} compliant; {i['total']} images "
            f"({i['verified']} verified), {s['verifications']} verifications")


def exit_code(report: Report, fail_on: str) -> int:
    states = {w.state for w in report.workloads}
    if fail_on == "violations" and states & {"blocked", "wouldBlock"}:
        return 1
    return 1 if fail_on == "blocked" and "blocked" in states else 0
