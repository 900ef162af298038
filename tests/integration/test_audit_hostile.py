"""Hostile text in the audit reports: image strings from a Pod spec and reasons served by a registry reach
the HTML escaped (nothing runs, nothing loads) and the CSV neutralised (no cell a spreadsheet evaluates)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from provider.devkit.fixtures import SIGNED, build_world
from tests.helpers import write_yaml
from tests.hostile import HOSTILE_MESSAGE, HostileRegistry
from tests.integration.html_checks import Tables, render_in_chromium
from tests.integration.test_audit import ROOT, pod_spec, write_constraints

MARKUP_IMAGE = '"><img src=x onerror=alert(3)><script>alert(4)</script>'
FORMULA_IMAGE = '=HYPERLINK("http://127.0.0.1:9/","open")'


@pytest.fixture
def hostile() -> Iterator[HostileRegistry]:
    server = HostileRegistry()
    yield server
    server.stop()


def test_hostile_strings_are_escaped_in_html_and_neutralised_in_csv(tmp_path: Path,
                                                                      hostile: HostileRegistry) -> None:
    world = build_world(tmp_path / "world")
    config = yaml.safe_load(world.config.read_text())
    config["stores"].insert(0, {"type": "registry", "match": [f"{hostile.host}/*"], "insecure": [hostile.host]})
    write_yaml(world.config, config)
    pods = [("from-registry", "dev", [f"{hostile.host}/markup:v1"]), ("from-spec", "dev", [MARKUP_IMAGE]),
            ("=cmd|' /C calc'!A0", "dev", [FORMULA_IMAGE, SIGNED]), ("fine", "dev", [SIGNED])]
    dump = tmp_path / "dump.yaml"
    dump.write_text("---\n".join(json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": name, "namespace": ns}, "spec": pod_spec(*images)}) + "\n" for name, ns, images in pods))
    write_constraints(tmp_path / "constraints")
    result = subprocess.run([sys.executable, "-m", "provider", "audit", "--config", str(world.config), "--no-progress",
                             "--manifests", str(dump), "--constraints", str(tmp_path / "constraints"),
                             "--json", str(tmp_path / "r.json"), "--html", str(tmp_path / "r.html"),
                             "--csv", str(tmp_path / "r.csv")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 1, result.stderr

    # The JSON keeps the text as it came: the registry's message is in the image's reasons.
    report = json.loads((tmp_path / "r.json").read_text())
    images = {i["references"][0]: i for i in report["images"]}
    assert HOSTILE_MESSAGE in images[f"{hostile.host}/markup:v1"]["reasons"][0]
    assert images[MARKUP_IMAGE]["state"] == "error"

    html = (tmp_path / "r.html").read_text()
    assert HOSTILE_MESSAGE not in html and MARKUP_IMAGE not in html and "<img" not in html
    assert "&lt;script&gt;alert(&quot;registry&quot;)&lt;/script&gt;" in html.replace("<wbr>", "")
    parser = Tables()
    parser.feed(html)
    assert parser.tags.count("script") == 2 and "img" not in parser.tags and parser.external == []
    # The text a reader sees is the hostile string itself, inert.
    assert any(MARKUP_IMAGE in row[4] for row in parser.tables["noncompliant"][1:])
    dom, findings, console = render_in_chromium(tmp_path / "r.html", tmp_path / "chromium")
    assert findings["images"] == 0 and findings["scripts"] == 3  # the report's two and the layout check
    assert console == [] and 'data-ready="1"' in dom

    rows = list(csv.reader(io.StringIO((tmp_path / "r.csv").read_text())))
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    formula = [row for row in rows if row[2] == "'=cmd|' /C calc'!A0"]
    assert formula and all(row[6].startswith("'=HYPERLINK(") for row in formula)
