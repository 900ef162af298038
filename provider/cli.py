"""The `sigwarden` command.

Exit codes: 0 ok / all verified; 1 the checked thing failed (an image not verified, an object denied, a violation,
a failed test, generated files that differ); 2 usage, config, Rego or runtime error, as one line naming the file
(and position where there is one); 130 when stopped by Ctrl-C. `--debug` shows the traceback of unexpected errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from provider import __version__
from provider.audit.options import add_report_options
from provider.config import ConfigError, load_config
from provider.engine import Engine, Item
from provider.importers.model import DEFAULT_ENFORCEMENT_ACTION, ENFORCEMENT_ACTIONS

if TYPE_CHECKING:
    from provider.policy.external import ExternalData

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention
DEFAULT_CONFIG = "/etc/sigwarden/config.yaml"


def _worker_count(text: str) -> int:
    from provider.config.loader import MAX_WORKERS

    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"expected a number of worker processes from 1 to {MAX_WORKERS}, "
                                         f"got {text!r}")
    return int(text)


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help=f"config file (default: $SIGWARDEN_CONFIG or {DEFAULT_CONFIG})")


def config_path(args: argparse.Namespace) -> str:
    return args.config or os.environ.get("SIGWARDEN_CONFIG") or DEFAULT_CONFIG


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sigwarden", description=(
        "Image signature verification provider for OPA Gatekeeper external data."))
    parser.add_argument("--version", action="version", version=f"sigwarden {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the provider (HTTPS, mTLS when a client CA is set)")
    _add_config(serve)
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--log-format", default="json", choices=["json", "text"],
                       help="json (default): one object per line for a log pipeline; text: for a terminal")
    serve.add_argument("--workers", type=_worker_count, default=None,
                       help="worker processes (overrides server.workers; default: one per CPU of the CPU quota)")

    verify = commands.add_parser("verify", help="print the facts /verify would answer for images")
    _add_config(verify)
    verify.add_argument("-o", "--output", choices=["text", "json"], default="text")
    verify.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for all images")
    verify.add_argument("images", nargs="+", metavar="IMAGE")

    resolve = commands.add_parser("resolve", help="print the digest-pinned references /mutate would answer")
    _add_config(resolve)
    resolve.add_argument("-o", "--output", choices=["text", "json"], default="text")
    resolve.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for all images")
    resolve.add_argument("images", nargs="+", metavar="IMAGE")

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_commands.add_parser("check", help="validate a config file and its trust material")
    check.add_argument("--for", dest="purpose", choices=["serve", "verify"], default="serve",
                       help="serve (default) also checks what the server needs: TLS certificate, key, client CA")
    check.add_argument("file")

    policy = commands.add_parser("policy", help="policy tools")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    suite = policy_commands.add_parser("test", help="run gator-style suites with real external data")
    _add_provider(suite)
    suite.add_argument("suites", nargs="*", metavar="SUITE|DIR",
                       help="suite files, or directories searched for them (default: the shipped suites); without "
                            "--config or --provider they run against the built-in image fixtures")
    build = policy_commands.add_parser("build", help="write ready-to-apply templates, constraints and Provider")
    build.add_argument("outdir", type=Path, metavar="OUTDIR")
    build.add_argument("--check", action="store_true", help="compare OUTDIR instead of writing; exit 1 if it differs")
    build.add_argument("--policies", type=Path, action="append", default=[], metavar="PATH",
                       help="your policies too: a policy folder (src.rego, meta.yaml), a folder of them, or a "
                            "ConstraintTemplate file; the lib helpers are inlined where the Rego imports them")
    init = policy_commands.add_parser("init", help="start a policy: template source, sample constraint and a "
                                                   "suite that passes against the built-in fixture images")
    init.add_argument("directory", type=Path, metavar="NAME",
                      help="the folder to create; its name is the policy's (lowercase, dashes)")
    policy_commands.add_parser("fixtures", help="list the built-in fixture images and what signed them")

    admit = commands.add_parser("admit", help="what Gatekeeper's webhook would answer for an object")
    _add_provider(admit)
    _add_policy_paths(admit)
    admit.add_argument("--namespaces", type=Path, action="append", default=[],
                       help="Namespace objects for namespaceSelector matching")
    admit.add_argument("-f", "--filename", required=True, type=Path, help="the object(s) to admit")
    admit.add_argument("--operation", default="CREATE", choices=["CREATE", "UPDATE"])

    audit = commands.add_parser("audit", help="compliance report: every object against every constraint")
    _add_provider(audit)
    audit.add_argument("--manifests", type=Path, action="append", default=[],
                       help="Kubernetes manifests: files, directories, multi-document YAML, kind: List")
    _add_policy_paths(audit)
    audit.add_argument("--namespaces", type=Path, action="append", default=[], help="Namespace objects")
    audit.add_argument("--gatekeeper-status", type=Path, action="append", default=[],
                       help="output of `kubectl get constraints -A -o json`")
    audit.add_argument("--json", type=Path, help="write the JSON report here")
    audit.add_argument("--junit", type=Path, help="write JUnit XML here")
    audit.add_argument("--html", type=Path, help="write the self-contained HTML report here")
    audit.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_report_options(audit)

    importer = commands.add_parser("import", help="convert another tool's configuration")
    import_commands = importer.add_subparsers(dest="import_command", required=True, metavar="TOOL")
    kritis = import_commands.add_parser("kritis", help="AttestationAuthority and GenericAttestationPolicy YAML")
    kritis.add_argument("--lookaside", metavar="URL", help="where the GPG simple signatures are (https, http, file)")
    ratify = import_commands.add_parser("ratify", help="Ratify custom resources (config.ratify.deislabs.io)")
    ratify.add_argument("--ratify-provider", action="store_true",
                        help="also write a Provider named ratify-provider for existing Ratify templates")
    for command in (kritis, ratify):
        command.add_argument("-o", "--output-dir", type=Path,
                             help="write config.yaml, kubernetes.yaml, the report and trust files here "
                                  "(default: print)")
        command.add_argument("--check", action="store_true",
                             help="print the report only; exit 1 if anything needs your attention")
        command.add_argument("--enforcement-action", choices=ENFORCEMENT_ACTIONS, default=DEFAULT_ENFORCEMENT_ACTION,
                             help="enforcementAction of the constraints written (default dryrun: audit first)")
        command.add_argument("files", nargs="+", type=Path, metavar="FILE|DIR")

    demo = commands.add_parser("demo", help="run a self-contained demonstration on loopback")
    demo.add_argument("--serve", action="store_true", help="keep the demo provider running afterwards")
    return parser


def _add_policy_paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--constraints", type=Path, action="append", default=[],
                        help="files or directories with constraints and/or templates (default: the shipped samples)")
    parser.add_argument("--templates", type=Path, action="append", default=[],
                        help="more files or directories with templates (the shipped ones are always available)")


def _add_provider(parser: argparse.ArgumentParser) -> None:
    _add_config(parser)
    parser.add_argument("--provider", metavar="URL", help="call a running provider instead of --config")
    parser.add_argument("--cert", help="client certificate for --provider (mTLS)")
    parser.add_argument("--key", help="client key for --provider (mTLS)")
    parser.add_argument("--ca", help="CA bundle that signed the provider's certificate")


def _external_data(args: argparse.Namespace) -> tuple[ExternalData, Engine | None]:
    from provider.policy.external import EngineExternalData, HTTPExternalData

    if args.provider:
        cert = (args.cert, args.key) if args.cert else None
        return HTTPExternalData(args.provider, cert=cert, ca=args.ca), None
    engine = Engine(load_config(config_path(args)))
    return EngineExternalData(engine), engine


def _run_engine(args: argparse.Namespace, endpoint: str) -> list[Item]:
    engine = Engine(load_config(config_path(args)))
    try:
        run = engine.verify if endpoint == "verify" else engine.resolve
        return run(args.images, uuid.uuid4().hex, deadline=time.monotonic() + args.timeout)
    finally:
        engine.shutdown()


def is_verified(item: Item) -> bool:
    return not item.error and bool(item.value.get("verified"))


def _verify_text(item: Item) -> str:
    """One line per image; admission is Rego's decision, so this only says verified or not, and why."""
    if item.error:
        return f"not verified  {item.key}: {item.error}"
    facts = item.value
    if facts["verified"]:
        return f"verified      {item.key} {facts['digest']} by {', '.join(facts['authorities'])}"
    if facts.get("skipped"):  # what `notation verify` reports as skipped: nothing was checked
        statements = ", ".join(f'{s["authority"]} (statement "{s["statement"]}")' for s in facts["skipped"])
        return f"skipped       {item.key} {facts['digest']}: level skip in the trust policy of {statements}; " \
               "not verified"
    return f"not verified  {item.key} {facts.get('digest') or ''}: {facts['reason']}".replace("  :", ":")


def cmd_verify(args: argparse.Namespace) -> int:
    items = _run_engine(args, "verify")
    if args.output == "json":
        print(json.dumps([item.to_json() for item in items], indent=2))
    else:
        print("\n".join(_verify_text(item) for item in items))
    return EXIT_OK if all(is_verified(item) for item in items) else EXIT_FAILED


def cmd_resolve(args: argparse.Namespace) -> int:
    items = _run_engine(args, "resolve")
    if args.output == "json":
        print(json.dumps([item.to_json() for item in items], indent=2))
    else:
        print("\n".join(f"ERROR {i.key}: {i.error}" if i.error else i.value for i in items))
    return EXIT_FAILED if any(item.error for item in items) else EXIT_OK


def cmd_config_check(args: argparse.Namespace) -> int:
    from provider.config.checks import check_serve, config_warnings

    config = load_config(args.file)
    if args.purpose == "serve":
        check_serve(config)
    print(f"{config.path}: ok for {args.purpose} ({len(config.authorities)} authorities, {len(config.stores)} "
          f"stores, {len(config.sources)} files)")
    for warning in config_warnings(config):
        print(f"warning: {warning}", file=sys.stderr)
    for index, store in enumerate(config.stores):
        if store.auth.cloud is not None:
            from provider.stores.cloud.providers import describe

            print(f"stores[{index}] ({', '.join(store.match)}): {store.auth.cloud.provider} credentials from "
                  f"{describe(store.auth.cloud)}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from provider.config.checks import check_serve
    from provider.server.runner import serve

    config = load_config(config_path(args))
    check_serve(config)
    serve(config, args.log_level, args.workers, args.log_format)
    return EXIT_OK


def cmd_policy(args: argparse.Namespace) -> int:
    handlers = {"build": cmd_policy_build, "test": cmd_policy_test, "init": cmd_policy_init,
                "fixtures": cmd_policy_fixtures}
    return handlers[args.policy_command](args)


def cmd_policy_init(args: argparse.Namespace) -> int:
    from provider.policy.authoring import init_policy

    written = init_policy(args.directory)
    print(f"{args.directory}: wrote {len(written)} files (src.rego, meta.yaml, template.yaml, samples/, suite.yaml)")
    print(f"next: edit {args.directory / 'src.rego'}, then `sigwarden policy test {args.directory}/`; "
          f"`sigwarden policy build OUTDIR --policies {args.directory}` writes it for kubectl apply")
    return EXIT_OK


def cmd_policy_fixtures(args: argparse.Namespace) -> int:
    from provider.devkit.fixtures import FIXTURES

    width = max(len(f.reference) for f in FIXTURES)
    print(f"{'IMAGE':<{width}}  {'VERIFIED BY':<36}  ABOUT")
    for fixture in FIXTURES:
        print(f"{fixture.reference:<{width}}  {', '.join(fixture.signed_by) or '-':<36}  {fixture.about}")
    return EXIT_OK


def cmd_policy_build(args: argparse.Namespace) -> int:
    from provider import catalog
    from provider.policy.build import bundle, user_templates
    from provider.policy.discovery import shipped_templates
    from provider.policy.gatekeeper import check_constraints, load_documents, parse_constraint
    from provider.policy.patterns import constraint_pattern_warnings

    samples = [parse_constraint(doc, source) for doc, source in load_documents(catalog.sample_constraints())]
    # The samples must be what `kubectl apply` accepts for the templates they go with (exit 2 otherwise).
    print_warnings([*check_constraints(shipped_templates(), samples), *map(str, constraint_pattern_warnings(samples))])
    output = bundle(args.outdir, extra=user_templates(args.policies))
    if args.check:
        problems = output.drift()
        print("\n".join(problems) if problems else f"{args.outdir}: up to date")
        return EXIT_FAILED if problems else EXIT_OK
    written = output.write()
    print(f"{args.outdir}: wrote {len(written)} files (templates/, samples/, provider.yaml, mutation/)")
    return EXIT_OK


def cmd_policy_test(args: argparse.Namespace) -> int:
    from provider.policy.suite import find_suites

    suites = find_suites(Path(s) for s in args.suites) if args.suites else _shipped_suites()
    if args.config or args.provider or os.environ.get("SIGWARDEN_CONFIG"):
        return _run_suites(args, suites)
    import tempfile

    from provider.devkit.fixtures import build_world

    with tempfile.TemporaryDirectory(prefix="sigwarden-policy-test-") as tmp:
        args.config = str(build_world(Path(tmp)).config)
        print(f"{'suites' if args.suites else 'shipped suites'} against the built-in image fixtures ({tmp})")
        return _run_suites(args, suites)


def _shipped_suites() -> list[Path]:
    from provider import catalog

    return catalog.suite_files()


def _run_suites(args: argparse.Namespace, suites: list[Path]) -> int:
    from provider.policy.suite import run_suite

    external, engine = _external_data(args)
    passed = failed = 0
    try:
        for suite in suites:
            for result in run_suite(Path(suite), external, lambda line: print_warnings([line])):
                label = f"{suite} {result.test}/{result.case}"
                if result.passed:
                    passed += 1
                    print(f"PASS {label}")
                else:
                    failed += 1
                    print(f"FAIL {label}: {'; '.join(result.problems)}")
                    for message in result.messages:
                        print(f"     violation: {message}")
    finally:
        if engine is not None:
            engine.shutdown()
    print(f"{passed} passed, {failed} failed")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_admit(args: argparse.Namespace) -> int:
    from provider.policy.discovery import discover
    from provider.policy.gatekeeper import PolicySet, load_documents, namespaces_from
    from provider.policy.suite import admit

    namespaces = namespaces_from(args.namespaces)
    found = discover([*args.templates, *args.constraints], namespaces)
    print_warnings(found.warnings)
    objects = load_documents([args.filename])
    if not objects:
        raise ValueError(f"{args.filename}: no Kubernetes objects found")
    external, engine = _external_data(args)
    denied = False
    try:
        policies = PolicySet(found.templates, found.constraints, external, namespaces)
        for obj, _ in objects:
            answer = admit(policies, obj, args.operation)
            print(answer.kubectl(args.operation))
            denied |= not answer.allowed
    finally:
        if engine is not None:
            engine.shutdown()
    return EXIT_FAILED if denied else EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from provider.audit.command import run_audit

    return run_audit(args, _external_data)


def cmd_import(args: argparse.Namespace) -> int:
    from provider.importers.command import run_import

    return run_import(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from provider.devkit.demo import run_demo

    return run_demo(serve=args.serve)


def print_warnings(warnings: Iterable[str]) -> None:
    """Warnings about the inputs (kept but meaningless constraint fields, unmatched selectors): stderr, one a line,
    the same for every command; they never change the exit code."""
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"serve": cmd_serve, "verify": cmd_verify, "resolve": cmd_resolve, "demo": cmd_demo,
                "config": cmd_config_check, "policy": cmd_policy, "admit": cmd_admit, "import": cmd_import,
                "audit": cmd_audit}
    try:
        return handlers[args.command](args)
    except ConfigError as exc:
        print(f"sigwarden: config error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except (ValueError, OSError) as exc:  # PolicyError is a ValueError
        print(f"sigwarden: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:  # Ctrl-C: what was started is stopped by the `finally` blocks on the way here
        return EXIT_INTERRUPTED
    except Exception as exc:  # never a traceback for a user, unless asked for
        if args.debug:
            raise
        print(f"sigwarden: internal error: {type(exc).__name__}: {_one_line(exc)} (--debug shows the traceback)",
              file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
