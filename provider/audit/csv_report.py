"""CSV for spreadsheets: one row per workload and failing constraint.

Every cell can carry text from a Pod spec or a registry; a cell a spreadsheet would read as a formula
(starting with `=`, `+`, `-`, `@`, or a tab or carriage return) is prefixed with `'` so it stays text.
Control characters become visible escapes (`printable`), and a carriage return inside a cell becomes a line
feed: the csv module quotes a cell only for the line terminator it writes, and a bare `\r` would end the row.
"""

from __future__ import annotations

import csv
import io

from provider.audit.model import Report
from provider.audit.printable import printable

# images: every image of the workload, image volumes' too; imageVolumes: those mounted as volumes, `NAME=IMAGE`.
HEADER = ("namespace", "kind", "name", "state", "constraint", "enforcementAction", "images", "messages", "sources",
          "imageVolumes")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell


def cell_text(cell: str) -> str:
    """One cell as written: formulas neutralised, forbidden characters escaped, line breaks as `\n`."""
    return printable(neutralise(cell)).replace("\r\n", "\n").replace("\r", "\n")


def csv_report(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for workload in report.workloads:
        for constraint_id, failure in sorted(workload.failures.items()):
            row = (workload.ref.namespace, workload.ref.kind, workload.ref.name, workload.state, constraint_id,
                   failure.constraint.enforcement_action, " ".join(workload.images), "\n".join(failure.messages),
                   " ".join(sorted(failure.sources)),
                   " ".join(f"{c.name}={c.image}" for c in workload.containers if c.volume))
            writer.writerow([cell_text(cell) for cell in row])
    return out.getvalue()
