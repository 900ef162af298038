"""One self-contained HTML file: summary per namespace and constraint, an inline SVG chart, a sortable table
of non-compliant workloads with reasons, and what switching dryrun/warn constraints to deny would block.

No external assets: CSS and the small sorting script are inline, so the file works offline and by mail.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1f24}h1{margin-bottom:.2rem}
.muted{color:#57606a}table{border-collapse:collapse;margin:1rem 0;width:100%}
th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top;font-size:.9rem;
overflow-wrap:anywhere}
th{background:#f6f8fa;cursor:pointer}.ok{color:#1a7f37}.bad{color:#cf222e}
.cards{display:flex;gap:1rem}.card{border:1px solid #d0d7de;border-radius:6px;padding:.6rem 1rem}
.card b{display:block;font-size:1.6rem}code{font-size:.85rem}
"""

SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, column) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var ascending = th.dataset.order !== 'asc';
    rows.sort(function (a, b) {
      var x = a.cells[column].textContent, y = b.cells[column].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    th.dataset.order = ascending ? 'asc' : 'desc';
  });
});
document.body.dataset.ready = '1';
"""


def _chart(namespaces: list[dict[str, Any]]) -> str:
    """Stacked bars per namespace: compliant (green) and non-compliant (red) evaluations."""
    width, bar, gap = 640, 18, 6
    height = max(1, len(namespaces)) * (bar + gap) + 10
    peak = max((n["evaluations"] for n in namespaces), default=1) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="compliance by namespace" '
             f'width="{width}" height="{height}" id="chart">']
    for row, ns in enumerate(namespaces):
        y = 5 + row * (bar + gap)
        scale = (width - 220) / peak
        good = ns["evaluations"] - ns["nonCompliant"]
        parts.append(f'<text x="0" y="{y + 13}" font-size="12">{escape(ns["namespace"])}</text>')
        parts.append(f'<rect class="compliant" x="160" y="{y}" width="{good * scale:.1f}" height="{bar}" '
                     'fill="#2da44e"/>')
        parts.append(f'<rect class="noncompliant" x="{160 + good * scale:.1f}" y="{y}" '
                     f'width="{ns["nonCompliant"] * scale:.1f}" height="{bar}" fill="#cf222e"/>')
        parts.append(f'<text x="{170 + ns["evaluations"] * scale:.1f}" y="{y + 13}" font-size="12">'
                     f'{good}/{ns["evaluations"]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _object(result: dict[str, Any]) -> str:
    obj = result["object"]
    return escape(f"{obj['kind']}/{obj['name']}")


def _reasons(result: dict[str, Any]) -> str:
    images = "".join(f"<br><code>{escape(i['image'])}</code> {escape(i.get('digest', '') or i.get('error', ''))}"
                     for i in result.get("images") or [] if not i.get("verified"))
    return "<br>".join(escape(m) for m in result["messages"]) + images


def _rows(results: list[dict[str, Any]]) -> str:
    return "".join(
        f"<tr><td>{escape(r['object']['namespace'] or '(cluster)')}</td><td>{_object(r)}</td>"
        f"<td>{escape(r['constraint']['kind'])}/{escape(r['constraint']['name'])}</td>"
        f"<td>{escape(r['constraint']['enforcementAction'])}</td><td>{escape(r['source'])}</td>"
        f"<td>{_reasons(r)}</td></tr>" for r in results)


def render_html(report: dict[str, Any]) -> str:
    summary = report["summary"]
    bad = [r for r in report["results"] if not r["compliant"]]
    blocked = [r for r in bad if r["wouldBlock"]]
    header = "<tr><th>namespace</th><th>workload</th><th>constraint</th><th>action</th><th>source</th>" \
             "<th>reasons</th></tr>"
    namespace_rows = "".join(f"<tr><td>{escape(n['namespace'])}</td><td>{n['evaluations']}</td>"
                             f"<td>{n['nonCompliant']}</td></tr>" for n in report["byNamespace"])
    constraint_rows = "".join(
        f"<tr><td>{escape(c['kind'])}/{escape(c['name'])}</td><td>{escape(c['enforcementAction'])}</td>"
        f"<td>{c['evaluated']}</td><td>{c['violations']}</td>"
        f"<td>{c.get('gatekeeperTotalViolations', '')}</td></tr>" for c in report["byConstraint"])
    cards = "".join(f'<div class="card" id="card-{key}"><b>{summary[key]}</b>{label}</div>' for key, label in (
        ("objects", "objects"), ("evaluations", "evaluations"), ("compliant", "compliant"),
        ("nonCompliant", "non-compliant"), ("wouldBlock", "deny would block"), ("verifications", "images verified")))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>sigwarden audit report</title>
<style>{CSS}</style></head>
<body>
<h1>sigwarden audit report</h1>
<p class="muted">generated {escape(report['generatedAt'])}</p>
<div class="cards">{cards}</div>
<h2>Compliance by namespace</h2>
{_chart(report['byNamespace'])}
<table class="sortable" id="namespaces"><thead><tr><th>namespace</th><th>evaluations</th><th>non-compliant</th>
</tr></thead><tbody>{namespace_rows}</tbody></table>
<h2>By constraint</h2>
<table class="sortable" id="constraints"><thead><tr><th>constraint</th><th>action</th><th>evaluated</th>
<th>violations</th><th>Gatekeeper total</th></tr></thead><tbody>{constraint_rows}</tbody></table>
<h2>Non-compliant workloads ({len(bad)})</h2>
<table class="sortable" id="noncompliant"><thead>{header}</thead><tbody>{_rows(bad)}</tbody></table>
<h2>What deny would block ({len(blocked)})</h2>
<p class="muted">Violations of constraints in dryrun or warn today, which switching them to deny would block.</p>
<table class="sortable" id="wouldblock"><thead>{header}</thead><tbody>{_rows(blocked)}</tbody></table>
<script type="application/json" id="report-summary">{escape(json.dumps(summary))}</script>
<script>{SCRIPT}</script>
</body></html>
"""
