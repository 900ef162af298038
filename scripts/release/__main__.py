"""`python -m scripts.release lock` regenerates the locks; `build` makes the release (see scripts/release/build.py)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.release")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("lock", help="regenerate every hashed lock under requirements/ from pyproject.toml")
    build = commands.add_parser("build", help="build, check reproducibility, describe and sign into dist/release/")
    build.add_argument("--out", default="dist", help="output directory (default: dist)")
    build.add_argument("--key", default="", help="PEM private key to sign with (default: the shipped test key)")
    args = parser.parse_args(argv)
    if args.command == "lock":
        from scripts.release.locks import regenerate

        for path in regenerate():
            print(f"locked {path.name if path.parent.name != 'extras' else 'extras/' + path.name}")
        return 0
    from scripts.release.build import release

    return release(args.out, args.key)


if __name__ == "__main__":
    sys.exit(main())
