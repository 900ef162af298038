"""`sigwarden audit` on a fixture cluster dump: JSON (schema-valid), JUnit and self-contained HTML reports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from provider.devkit.fixtures import ALPINE, SIGNED, TAMPERED, UNREACHABLE, UNSIGNED, World, build_world
from tests.helpers import write_yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "provider/schemas/audit-report.schema.json").read_text())


def pod_spec(*images: str) -> dict[str, Any]:
    return {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]}


def deployment(name: str, namespace: str, *images: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"spec": pod_spec(*images)}}}


def cluster_dump(directory: Path) -> None:
    """What `kubectl get ns,deploy,cronjob,pod -A -o yaml` would give, split over a List and a multi-doc file."""
    directory.mkdir()
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod", "labels": {"tier": "prod"}}},
                  {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}}]
    workloads = [
        deployment("web", "prod", SIGNED),
        deployment("legacy", "prod", ALPINE),
        deployment("tampered", "prod", TAMPERED),
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "dev"},
         "spec": {"jobTemplate": {"spec": {"template": {"spec": {"initContainers": [{"name": "i", "image": UNSIGNED}],
                                                                  "containers": [{"name": "m", "image": SIGNED}]}}}}}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "offline", "namespace": "dev"},
         "spec": pod_spec(UNREACHABLE)},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ok", "namespace": "dev"}, "spec": pod_spec(SIGNED)},
    ]
    write_yaml(directory / "list.yaml", {"apiVersion": "v1", "kind": "List", "items": namespaces + workloads[:3]})
    (directory / "more.yaml").write_text("---\n".join(json.dumps(w) + "\n" for w in workloads[3:]))


def constraints(directory: Path) -> None:
    directory.mkdir()
    kinds = [{"apiGroups": ["", "apps", "batch"], "kinds": ["Pod", "Deployment", "CronJob"]}]
    for name, action, match in (("prod-deny", "deny", {"namespaceSelector": {"matchLabels": {"tier": "prod"}}}),
                                ("everywhere-warn", "warn", {}), ("everywhere-audit", "dryrun", {})):
        write_yaml(directory / f"{name}.yaml", {
            "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSignedImages", "metadata": {"name": name},
            "spec": {"enforcementAction": action, "match": {"kinds": kinds, **match}, "parameters": {}}})


@pytest.fixture
def audited(tmp_path: Path) -> tuple[World, Path, subprocess.CompletedProcess[str]]:
    world = build_world(tmp_path / "world")
    cluster_dump(tmp_path / "dump")
    constraints(tmp_path / "constraints")
    result = subprocess.run([sys.executable, "-m", "provider", "audit", "--config", str(world.config),
                             "--manifests", str(tmp_path / "dump"), "--constraints", str(tmp_path / "constraints"),
                             "--json", str(tmp_path / "report.json"), "--junit", str(tmp_path / "report.xml"),
                             "--html", str(tmp_path / "report.html")],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    return world, tmp_path, result


def test_json_report_counts_and_reasons(audited: tuple[World, Path, Any]) -> None:
    world, tmp_path, result = audited
    assert result.returncode == 1, result.stderr  # non-compliant objects exist
    report = json.loads((tmp_path / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    summary = report["summary"]
    # 6 workloads; prod-deny matches the 3 prod ones, warn and dryrun all 6: 15 evaluations.
    assert summary["objects"] == 6 and summary["evaluations"] == 15
    # Non-compliant: legacy, tampered (x3 constraints each), nightly, offline (x2 each) = 10.
    assert summary["nonCompliant"] == 10 and summary["compliant"] == 5
    assert summary["wouldBlock"] == 8  # the warn and dryrun violations
    assert summary["verifications"] == 5  # SIGNED, ALPINE, TAMPERED, UNSIGNED, UNREACHABLE: once each
    by_ns = {n["namespace"]: n for n in report["byNamespace"]}
    assert by_ns["prod"] == {"namespace": "prod", "evaluations": 9, "nonCompliant": 6}
    assert by_ns["dev"] == {"namespace": "dev", "evaluations": 6, "nonCompliant": 4}
    results = {(r["object"]["name"], r["constraint"]["name"]): r for r in report["results"]}
    legacy = results[("legacy", "prod-deny")]
    assert legacy["messages"] == [legacy["messages"][0]] and legacy["messages"][0].startswith(
        "image alpine:3.11 is not attested: no signatures found for sha256:")
    assert legacy["wouldBlock"] is False and results[("legacy", "everywhere-warn")]["wouldBlock"] is True
    assert "signature is for sha256:" in results[("tampered", "everywhere-audit")]["messages"][0]
    assert "REGISTRY_UNAVAILABLE" in results[("offline", "everywhere-warn")]["messages"][0]
    assert results[("nightly", "everywhere-audit")]["messages"][0].startswith(f"image {UNSIGNED} is not attested")
    web = results[("web", "prod-deny")]
    assert web["compliant"] is True and web["images"][0]["digest"] == world.digests[SIGNED]
    assert web["images"][0]["authorities"] == ["kritis-authority", "release", "security"]


def test_junit_has_one_case_per_object_and_constraint(audited: tuple[World, Path, Any]) -> None:
    _, tmp_path, _ = audited
    root = ET.parse(tmp_path / "report.xml").getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 15 and root.get("failures") == "10"
    failures = [c for c in cases if c.find("failure") is not None]
    assert len(failures) == 10
    prod = root.find("testsuite[@name='K8sSignedImages/prod-deny']")
    assert prod.get("tests") == "3" and prod.get("failures") == "2"
    legacy = prod.find("testcase[@name='Deployment/prod/legacy']/failure")
    assert legacy.get("type") == "deny" and "image alpine:3.11 is not attested" in legacy.get("message")


class Tables(HTMLParser):
    """Rows of every table by id, plus the summary cards."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.cards: dict[str, str] = {}
        self._table = self._card = ""
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in ("script", "link", "img") and (attributes.get("src") or attributes.get("href")):
            self.external.append(str(attributes.get("src") or attributes.get("href")))
        if tag == "table":
            self._table = attributes.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "div" and (attributes.get("id") or "").startswith("card-"):
            self._card = attributes["id"][5:]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = ""

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._card and data.strip() and self._card not in self.cards:
            self.cards[self._card] = data.strip()


def test_html_report_structure_and_numbers(audited: tuple[World, Path, Any]) -> None:
    _, tmp_path, _ = audited
    html = (tmp_path / "report.html").read_text()
    report = json.loads((tmp_path / "report.json").read_text())
    parser = Tables()
    parser.feed(html)
    assert parser.external == []  # self-contained
    assert "<svg" in html and html.count('class="noncompliant"') == len(report["byNamespace"])
    assert parser.cards["nonCompliant"] == "10" and parser.cards["wouldBlock"] == "8"
    assert parser.cards["verifications"] == "5"
    rows = parser.tables["noncompliant"][1:]
    listed = {(row[1], row[2]) for row in rows}
    expected = {(f"{r['object']['kind']}/{r['object']['name']}", f"K8sSignedImages/{r['constraint']['name']}")
                for r in report["results"] if not r["compliant"]}
    assert listed == expected and len(rows) == 10
    assert len(parser.tables["wouldblock"]) - 1 == 8
    assert all(row[3] in ("warn", "dryrun") for row in parser.tables["wouldblock"][1:])
    assert {row[0]: row[2] for row in parser.tables["namespaces"][1:]} == {"dev": "4", "prod": "6"}


def test_html_renders_in_headless_chromium(audited: tuple[World, Path, Any]) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    _, tmp_path, _ = audited
    result = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                             "--no-first-run", "--disable-background-networking", "--disable-component-update",
                             "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}", "--enable-logging=stderr",
                             "--v=0", "--virtual-time-budget=2000", "--dump-dom",
                             f"file://{tmp_path / 'report.html'}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'data-ready="1"' in result.stdout  # the inline script ran to its end
    console_errors = [line for line in result.stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line]
    assert console_errors == []


def test_gatekeeper_status_is_aggregated_into_the_same_format(tmp_path: Path) -> None:
    status = {"apiVersion": "v1", "kind": "List", "items": [{
        "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSignedImages",
        "metadata": {"name": "signed-images-audit"}, "spec": {"enforcementAction": "dryrun"},
        "status": {"totalViolations": 42, "violations": [
            {"enforcementAction": "dryrun", "group": "apps", "version": "v1", "kind": "Deployment",
             "namespace": "shop", "name": "cart", "message": "image shop/cart:1 is not attested: no signatures found"},
            {"enforcementAction": "dryrun", "group": "", "version": "v1", "kind": "Pod", "namespace": "shop",
             "name": "debug", "message": "image busybox is not attested: no signatures found"}]}}]}
    (tmp_path / "status.json").write_text(json.dumps(status))
    result = subprocess.run([sys.executable, "-m", "provider", "audit", "--gatekeeper-status",
                             str(tmp_path / "status.json"), "--json", str(tmp_path / "gk.json"), "--html",
                             str(tmp_path / "gk.html")], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1, result.stderr
    report = json.loads((tmp_path / "gk.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["summary"]["nonCompliant"] == 2 and report["summary"]["wouldBlock"] == 2
    (constraint,) = report["byConstraint"]
    assert constraint["gatekeeperTotalViolations"] == 42 and constraint["violations"] == 2
    assert {r["object"]["name"] for r in report["results"]} == {"cart", "debug"}
    assert report["results"][0]["object"]["apiVersion"] == "apps/v1" and report["results"][0]["source"] == "gatekeeper"
    assert "cart" in (tmp_path / "gk.html").read_text()
