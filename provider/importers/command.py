"""`sigwarden import kritis|ratify`: load the source objects, convert, then write or print, and the exit code.

Exit codes: 0 converted; 1 with `--check` when any field needs the user's attention; 2 unreadable input.
"""

from __future__ import annotations

import argparse
import sys

from provider.importers import output


def run_import(args: argparse.Namespace) -> int:
    from provider.policy.gatekeeper import load_documents

    if args.import_command == "kritis":
        from provider.importers import kritis

        conversion = kritis.convert(kritis.load(args.files), kritis.KritisOptions(lookaside=args.lookaside or ""))
    else:
        from provider.importers import ratify

        documents = [doc for doc, _ in load_documents(args.files)]
        conversion = ratify.convert(documents, ratify.RatifyOptions(ratify_provider=args.ratify_provider))
    conversion.set_enforcement_action(args.enforcement_action)
    if args.check:
        print(output.report(conversion), end="")
        return 1 if conversion.needs_attention else 0
    if args.output_dir is None:
        if conversion.files:
            raise ValueError(f"the {args.import_command} import writes certificate and key files: pass "
                             "--output-dir DIR")
        print(output.stream(conversion), end="")
        return 0
    written = output.write(conversion, args.output_dir)
    print(output.report(conversion), end="")
    print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0
