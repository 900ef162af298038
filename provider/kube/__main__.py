"""`python -m provider.kube`: the pod's certificate keeper and the constraint delivery Job.

    python -m provider.kube certs --namespace NS --secret NAME --host H … --dir DIR [--provider P …]
                                  [--client-ca-webhook NAME --client-ca-file FILE] [--once] [--interval S]
    python -m provider.kube constraints --file FILE --release NAME [--kind K …] [--timeout S]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from provider.kube.client import SERVICE_ACCOUNT_DIR, KubeClient, KubeError
from provider.kube.constraints import ConstraintError, deliver
from provider.kube.tlssync import ClientCA, ServingCertificate, SyncError
from provider.logs import configure_logging

log = logging.getLogger("sigwarden.kube")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m provider.kube", description=__doc__.splitlines()[0])
    parser.add_argument("--server", help="API server URL (default: the in-cluster service)")
    parser.add_argument("--service-account-dir", type=Path, default=SERVICE_ACCOUNT_DIR,
                        help="directory with token and ca.crt (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    certs = commands.add_parser("certs", help="issue and renew the serving certificate; copy the client CA")
    certs.add_argument("--namespace", required=True)
    certs.add_argument("--secret", help="the shared TLS Secret (omit when the certificate comes from elsewhere)")
    certs.add_argument("--host", action="append", default=[], help="DNS name for the certificate (repeatable)")
    certs.add_argument("--dir", type=Path, help="where tls.crt, tls.key and ca.crt are written")
    certs.add_argument("--provider", action="append", default=[], help="Provider whose caBundle to keep current")
    certs.add_argument("--client-ca-webhook", help="ValidatingWebhookConfiguration whose caBundle is the client CA")
    certs.add_argument("--client-ca-file", type=Path, help="where the client CA is written")
    certs.add_argument("--once", action="store_true", help="retry until everything is in place, then exit")
    certs.add_argument("--interval", type=float, default=30.0, help="seconds between checks (default: 30)")
    constraints = commands.add_parser("constraints", help="apply constraints once their kinds exist; prune")
    constraints.add_argument("--file", type=Path, required=True, help="multi-document YAML of constraints")
    constraints.add_argument("--release", required=True, help="release label of the constraints to manage")
    constraints.add_argument("--kind", action="append", default=[], help="kind to prune even if none is wanted")
    constraints.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for the kinds")
    return parser


def _client(args: argparse.Namespace) -> KubeClient:
    account = args.service_account_dir
    if args.server:
        return KubeClient(args.server, account / "token", account / "ca.crt")
    return KubeClient.in_cluster(account)


def sync_certs(args: argparse.Namespace, client: KubeClient) -> list[str]:
    """One pass over every job the flags ask for; returns the problems (empty when all is in place)."""
    problems = []
    if args.secret:
        serving = ServingCertificate(client, args.namespace, args.secret, tuple(args.host), args.dir,
                                     tuple(args.provider))
        try:
            serving.sync()
        except (KubeError, SyncError) as exc:
            problems.append(f"serving certificate: {exc}")
    if args.client_ca_webhook:
        try:
            ClientCA(client, args.client_ca_webhook, args.client_ca_file).sync()
        except (KubeError, SyncError) as exc:
            problems.append(f"client CA: {exc}")
    return problems


def run_certs(args: argparse.Namespace, client: KubeClient) -> int:
    if args.secret and (not args.host or args.dir is None):
        raise SystemExit("--secret needs --host and --dir")
    if args.client_ca_webhook and args.client_ca_file is None:
        raise SystemExit("--client-ca-webhook needs --client-ca-file")
    while True:
        problems = sync_certs(args, client)
        for problem in problems:
            log.error(problem)
        if args.once and not problems:
            return 0
        time.sleep(args.interval)


def run_constraints(args: argparse.Namespace, client: KubeClient) -> int:
    try:
        documents = [d for d in yaml.safe_load_all(args.file.read_text()) if d]
    except (OSError, yaml.YAMLError) as exc:
        log.error("cannot read the constraints", extra={"file": str(args.file), "error": str(exc)})
        return 2
    try:
        done = deliver(client, documents, args.release, set(args.kind), args.timeout)
    except (ConstraintError, KubeError) as exc:
        log.error(str(exc))
        return 1
    log.info("constraints delivered", extra={"applied": done.applied, "deleted": done.deleted})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging("INFO")
    try:
        client = _client(args)
    except KubeError as exc:
        log.error(str(exc))
        return 2
    return run_certs(args, client) if args.command == "certs" else run_constraints(args, client)


if __name__ == "__main__":
    sys.exit(main())
