"""The `sigwarden` command. Exit codes: 0 ok / all verified, 1 some image not verified, 2 usage/config/runtime error."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence

from provider import __version__
from provider.config import Config, ConfigError, load_config
from provider.engine import Engine, Item

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
DEFAULT_CONFIG = "/etc/sigwarden/config.yaml"


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", default=os.environ.get("SIGWARDEN_CONFIG", DEFAULT_CONFIG),
                        help="config file (default: $SIGWARDEN_CONFIG or %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sigwarden", description=(
        "Image signature verification provider for OPA Gatekeeper external data."))
    parser.add_argument("--version", action="version", version=f"sigwarden {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the provider (HTTPS, mTLS when a client CA is set)")
    _add_config(serve)
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

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
    check.add_argument("file")

    demo = commands.add_parser("demo", help="run a self-contained demonstration on loopback")
    demo.add_argument("--serve", action="store_true", help="keep the demo provider running afterwards")
    return parser


def _load(path: str) -> Config:
    return load_config(path)


def _run_engine(args: argparse.Namespace, endpoint: str) -> list[Item]:
    engine = Engine(_load(args.config))
    try:
        run = engine.verify if endpoint == "verify" else engine.resolve
        return run(args.images, uuid.uuid4().hex, deadline=time.monotonic() + args.timeout)
    finally:
        engine.shutdown()


def _verify_text(item: Item) -> str:
    if item.error:
        return f"ERROR     {item.key}: {item.error}"
    facts = item.value
    if facts["verified"]:
        return f"VERIFIED  {item.key} {facts['digest']} by {', '.join(facts['authorities'])}"
    return f"DENIED    {item.key} {facts['digest']}: {facts['reason']}"


def cmd_verify(args: argparse.Namespace) -> int:
    items = _run_engine(args, "verify")
    if args.output == "json":
        print(json.dumps([item.to_json() for item in items], indent=2))
    else:
        print("\n".join(_verify_text(item) for item in items))
    return EXIT_OK if all(not i.error and i.value["verified"] for i in items) else EXIT_FAILED


def cmd_resolve(args: argparse.Namespace) -> int:
    items = _run_engine(args, "resolve")
    if args.output == "json":
        print(json.dumps([item.to_json() for item in items], indent=2))
    else:
        print("\n".join(f"ERROR {i.key}: {i.error}" if i.error else i.value for i in items))
    return EXIT_FAILED if any(item.error for item in items) else EXIT_OK


def cmd_config_check(args: argparse.Namespace) -> int:
    config = _load(args.file)
    print(f"{config.path}: ok ({len(config.authorities)} authorities, {len(config.stores)} stores, "
          f"{len(config.sources)} files)")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from provider.server.runner import serve

    config = _load(args.config)
    if config.server.tls.cert is None:
        raise ConfigError(config.path, "server.tls", "cert and key are required to serve (TLS only)")
    serve(config, args.log_level)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from provider.devkit.demo import run_demo

    return run_demo(serve=args.serve)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"serve": cmd_serve, "verify": cmd_verify, "resolve": cmd_resolve, "demo": cmd_demo,
                "config": cmd_config_check}
    try:
        return handlers[args.command](args)
    except ConfigError as exc:
        print(f"sigwarden: config error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ValueError as exc:
        print(f"sigwarden: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
