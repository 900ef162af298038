"""One-line YAML error messages that name the position, for config files and Kubernetes objects."""

from __future__ import annotations

from pathlib import Path

import yaml


def problem(exc: yaml.YAMLError) -> str:
    """`not valid YAML at line L, column C: …` (1-based), on one line."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = " ".join(str(part) for part in (getattr(exc, "context", None), getattr(exc, "problem", None)) if part)
    return f"not valid YAML{where}: {what or type(exc).__name__}"


def describe(file: Path | str, exc: yaml.YAMLError) -> str:
    return f"{file}: {problem(exc)}"
