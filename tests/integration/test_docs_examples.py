"""Documentation that cannot go stale: every ```console block of the README and docs/ is run and compared.

A block holds commands (`$ ` lines; `\\` continues one, and a `<<'EOF'` here-document runs to its `EOF` line)
each followed by the output it claims. The commands run
with bash in a fresh directory per file (in the private network namespace the tests run in), with `sigwarden`
being this checkout. The output is compared line by line, stdout and stderr together as a terminal shows them:
`…` in a line stands for any text (a digest, a path, a time), and a line of `…` alone for any number of lines.
Blocks that only show commands use ```sh and are not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```console\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Example:
    document: Path
    line: int
    command: str
    expected: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.document.name}:{self.line}"


def examples(document: Path) -> list[Example]:
    found = []
    text = document.read_text()
    for block in BLOCK.finditer(text):
        first_line = text.count("\n", 0, block.start(1)) + 1
        lines = block.group(1).splitlines()
        index = 0
        while index < len(lines):
            if not lines[index].startswith("$ "):
                raise AssertionError(f"{document.name}:{first_line + index}: a console block starts with `$ `")
            start, command = index, lines[index][2:]
            while command.endswith("\\"):
                index += 1
                command = command[:-1] + "\n" + lines[index]
            if "<<'EOF'" in command:  # the input file a command makes, shown in full
                while lines[index] != "EOF":
                    index += 1
                    command += "\n" + lines[index]
            index += 1
            output_start = index
            while index < len(lines) and not lines[index].startswith("$ "):
                index += 1
            found.append(Example(document, first_line + start, command, tuple(lines[output_start:index])))
    return found


def matches(expected: tuple[str, ...], actual: list[str]) -> bool:
    """`…` alone: any lines; `…` within a line: any text."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head.strip() == "…":
        return any(matches(rest, actual[skip:]) for skip in range(len(actual) + 1))
    if not actual:
        return False
    pattern = ".*?".join(re.escape(part) for part in head.rstrip().split("…"))
    return re.fullmatch(pattern, actual[0].rstrip()) is not None and matches(rest, actual[1:])


ALL = [example for document in DOCUMENTS for example in examples(document)]


@pytest.fixture(scope="module")
def shell_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `sigwarden` on PATH that is this checkout, with this interpreter."""
    directory = tmp_path_factory.mktemp("bin")
    wrapper = directory / "sigwarden"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m provider "$@"\n')
    wrapper.chmod(0o755)
    return directory


def test_every_document_is_scanned() -> None:
    assert ALL, "no console examples found"
    assert {e.document.name for e in ALL} >= {"README.md", "install.md", "writing-policies.md"}


@pytest.mark.parametrize("example", ALL, ids=[e.id for e in ALL])
def test_example_output_is_what_the_docs_claim(example: Example, shell_bin: Path, tmp_path_factory:
                                               pytest.TempPathFactory) -> None:
    workspace = tmp_path_factory.mktemp(example.document.stem)  # shared by the examples of one page, in order
    env = {**os.environ, "PATH": f"{shell_bin}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
           "COLUMNS": "120"}
    env.pop("SIGWARDEN_CONFIG", None)
    earlier = [e for e in ALL if e.document == example.document and e.line < example.line]
    # Commands of a page build on each other (`policy init` then `policy test`): replay the earlier ones.
    for previous in earlier:
        subprocess.run(["bash", "-c", previous.command], cwd=workspace, env=env, capture_output=True, timeout=300)
    result = subprocess.run(["bash", "-c", example.command], cwd=workspace, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=300)
    actual = result.stdout.splitlines()
    assert matches(example.expected, actual), (
        f"{example.id}: `{example.command}` printed:\n" + "\n".join(actual)
        + "\n\nthe docs claim:\n" + "\n".join(example.expected))


@pytest.mark.parametrize(("expected", "actual", "result"), [
    (("a …", "…", "z"), ["a b", "x", "y", "z"], True),
    (("a …", "z"), ["a b", "x", "z"], False),
    (("…",), [], True),
    (("exact",), ["exact  "], True),
    (("sha256:…  ok",), ["sha256:0123  ok"], True),
    (("sha256:…  ok",), ["sha256:0123  MISMATCH"], False),
])
def test_the_comparison(expected: tuple[str, ...], actual: list[str], result: bool) -> None:
    assert matches(expected, actual) is result
