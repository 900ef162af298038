"""docs/security.md: every number in its bounds table is the value the code or the chart really uses, and the
prose quotes no number the table does not hold."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "security.md"
UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "KiB": 1024, "MiB": 1024 * 1024, "bytes": 1, "bits": 1, "": 1}
VALUE = re.compile(r"^(\d+(?:\.\d+)?)(?: (ms|s|min|KiB|MiB|bytes|bits))?$")
# Names of standards, not bounds: RFC 9110, XML 1.0.
STANDARDS = re.compile(r"RFC \d+|XML \d+\.\d+")


def table() -> list[dict[str, str]]:
    rows = []
    lines = DOC.read_text().split("## Bounds", 1)[1].splitlines()
    header: list[str] = []
    for line in lines:
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not header:
            header = cells
        elif not set(cells[0]) <= {"-", " "}:
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


def quantity(text: str) -> float:
    match = VALUE.match(text)
    assert match, f"{text!r}: write a number and one of the units {sorted(UNITS)}"
    return float(match.group(1)) * UNITS[match.group(2) or ""]


def source_value(source: str) -> Any:
    """`path/to/values.yaml:a.b` reads the chart's values; `package.module.NAME[.attr]` the code."""
    if ":" in source:
        path, keys = source.split(":", 1)
        value: Any = yaml.safe_load((ROOT / path).read_text())
        for key in keys.split("."):
            value = value[key]
        return value
    parts = source.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            value = getattr(value, name)  # a dataclass's class attribute is the field's default
        return value
    raise AssertionError(f"{source}: no such module")


ROWS = table()


def test_the_table_has_the_bounds_of_every_kind() -> None:
    assert len(ROWS) >= 40
    units = {VALUE.match(r["Value"]).group(2) for r in ROWS}  # type: ignore[union-attr]
    assert {"s", "ms", "KiB", "MiB", None} <= units  # time, bytes and counts (connections, keys, retries)


@pytest.mark.parametrize("row", ROWS, ids=[r["Bound"] for r in ROWS])
def test_each_number_is_the_one_in_the_code(row: dict[str, str]) -> None:
    source = row["Source"].strip("`")
    actual = source_value(source)
    assert isinstance(actual, int | float) and not isinstance(actual, bool), f"{source} is {actual!r}"
    assert quantity(row["Value"]) == pytest.approx(float(actual)), f"{row['Bound']}: {source} is {actual}"


def test_the_config_keys_named_are_the_loaders() -> None:
    from provider.config.reader import SCHEMA

    chart = yaml.safe_load((ROOT / "helm/sigwarden/values.yaml").read_text())
    for row in ROWS:
        key = row["Config key"].split("`")[1] if "`" in row["Config key"] else ""
        if not key:
            continue
        if row["Config key"].endswith("(chart)"):
            section, _, name = key.rpartition(".")
            assert name in chart[section], key
        else:
            section, _, name = key.rpartition(".")
            assert name in SCHEMA[section], key


def test_the_prose_quotes_only_numbers_of_the_table() -> None:
    prose = DOC.read_text().split("## Bounds", 1)[0]
    prose = STANDARDS.sub("", re.sub(r"`[^`]*`", "", prose))
    allowed = {r["Value"].split()[0] for r in ROWS}
    quoted = set(re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", prose))
    assert quoted <= allowed, f"numbers in docs/security.md not in its bounds table: {sorted(quoted - allowed)}"
