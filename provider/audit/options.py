"""The `sigwarden audit` options beyond inputs and the JSON, JUnit and HTML outputs."""

from __future__ import annotations

import argparse
from pathlib import Path

FAIL_ON = ("violations", "blocked", "never")


def add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--csv", type=Path, help="write CSV here: one row per workload and failing constraint")
    parser.add_argument("--policy-report", type=Path, metavar="FILE",
                        help="write wgpolicyk8s.io/v1alpha2 PolicyReports here (one per namespace, a "
                             "ClusterPolicyReport for cluster-scoped workloads), for kubectl apply and Policy Reporter")
    parser.add_argument("--cluster", action="store_true",
                        help="read Namespaces, workloads, templates and constraints from the API server (list only; "
                             "KUBECONFIG's current context, or the pod's ServiceAccount)")
    parser.add_argument("--apply-policy-reports", action="store_true",
                        help="with --cluster: server-side apply the PolicyReports (field manager sigwarden) and "
                             "delete the ones sigwarden wrote before that this run no longer has")
    parser.add_argument("--baseline", type=Path,
                        help="a previous v2 JSON report: add what changed since (new failures, fixes, images)")
    parser.add_argument("--fail-on", choices=FAIL_ON, default="violations",
                        help="exit 1 when any workload is non-compliant (violations, the default), only when one "
                             "is blocked now by a deny constraint (blocked), or never")
    parser.add_argument("--exempt-namespace", action="append", default=[], metavar="NAMESPACE",
                        help="a namespace Gatekeeper runs with --exempt-namespace (trailing or leading * allowed)")
    parser.add_argument("--gatekeeper-config", type=Path, action="append", default=[], metavar="FILE",
                        help="Gatekeeper's Config resource (its spec.match excludedNamespaces are honoured)")
