"""Reading the audit HTML report: its tables and cards (HTMLParser), and its layout in headless Chromium.

The layout check is a script this module adds to a copy of the report: at 1280 px it lists every table cell
whose content overflows it or reaches past the window, and every word (a run of non-space characters within
one text node; `<wbr>` ends a node) drawn on more than one line. Then it sorts the non-compliant table by
workload with a click on its header, and reports the order.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

LAYOUT_CHECK = """<script>
(function () {
  var problems = [], width = document.documentElement.clientWidth;
  document.querySelectorAll('td, th').forEach(function (cell) {
    var label = cell.textContent.trim().slice(0, 60);
    if (cell.scrollWidth > cell.clientWidth + 1) { problems.push('overflows: ' + label); }
    if (cell.getBoundingClientRect().right > width + 1) { problems.push('past the window: ' + label); }
    var walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT), node;
    while ((node = walker.nextNode())) {
      var words = /\\S+/g, match;
      while ((match = words.exec(node.data))) {
        var range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        var lines = {};
        Array.prototype.forEach.call(range.getClientRects(), function (r) {
          if (r.width > 0) { lines[Math.round(r.top)] = true; }
        });
        if (Object.keys(lines).length > 1) { problems.push('word broken: ' + match[0]); }
      }
    }
  });
  // Sorting: a click on the workload header of the non-compliant table orders its rows by that column.
  var sorted = null, table = document.getElementById('noncompliant');
  if (table) {
    table.tHead.rows[0].cells[1].click();
    sorted = Array.prototype.map.call(table.tBodies[0].rows, function (row) { return row.cells[1].textContent; });
  }
  var out = document.createElement('pre');
  out.id = 'layout-check';
  out.textContent = JSON.stringify({problems: problems, sorted: sorted, images: document.querySelectorAll('img').length,
                                    scripts: document.querySelectorAll('script').length});
  document.body.appendChild(out);
})();
</script>"""


def render_in_chromium(report: Path, profile: Path) -> tuple[str, dict[str, object], list[str]]:
    """The DOM after the scripts ran, the layout check's findings, and console errors."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed (scripts/install-system-deps.sh installs it)")
    checked = report.with_name(report.stem + ".checked.html")
    checked.write_text(report.read_text().replace("</body>", LAYOUT_CHECK + "</body>"))
    result = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                             "--no-first-run", "--disable-background-networking", "--disable-component-update",
                             "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
                             "--window-size=1280,1000", "--virtual-time-budget=2000", "--dump-dom",
                             f"file://{checked}"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', result.stdout, re.S)
    assert found, "the layout check did not run"
    findings = json.loads(found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                          .replace("&amp;", "&"))
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line and
               ("Uncaught" in line or "Error" in line)]
    return result.stdout, findings, console


def page_width(report: Path, width: int, profile: Path) -> dict[str, int]:
    """The report's document scroll width against its viewport, `width` px wide.

    Headless Chromium keeps its window at least 500 px wide, so the report is shown in an iframe of exactly
    `width` px: the iframe is the report's viewport, as a phone's screen would be."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed (scripts/install-system-deps.sh installs it)")
    harness = report.with_name(f"{report.stem}.{width}px.html")
    harness.write_text(f"""<!DOCTYPE html><html><body style="margin:0">
<iframe id="report" src="{report.name}" width="{width}" height="900" style="border:0"></iframe>
<script>document.getElementById('report').addEventListener('load', function () {{
  var page = this.contentDocument.documentElement, out = document.createElement('pre');
  out.id = 'page-width';
  out.textContent = JSON.stringify({{scroll: page.scrollWidth, client: page.clientWidth}});
  document.body.appendChild(out);
}});</script></body></html>""")
    result = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-background-networking", "--disable-component-update", "--disable-sync",
                             "--allow-file-access-from-files", f"--user-data-dir={profile}",
                             "--window-size=1500,1000", "--virtual-time-budget=3000", "--dump-dom",
                             f"file://{harness}"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'<pre id="page-width">(.*?)</pre>', result.stdout, re.S)
    assert found, "the report did not load in the iframe"
    return dict(json.loads(found.group(1).replace("&quot;", '"')))


class Tables(HTMLParser):
    """Rows of every table by id, the summary cards, and any tag that would load something from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.cards: dict[str, str] = {}
        self.tags: list[str] = []
        self.external: list[str] = []
        self._table = self._card = ""
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append(tag)
        if attributes.get("src") or (tag == "link" and attributes.get("href")):
            self.external.append(str(attributes.get("src") or attributes.get("href")))
        if tag == "table":
            self._table = attributes.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "div" and (attributes.get("id") or "").startswith("card-"):
            self._card = str(attributes["id"])[5:]

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
