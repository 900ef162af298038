"""CSV for spreadsheets: one row per workload and failing constraint.

Every cell can carry text from a Pod spec or a registry; a cell a spreadsheet would read as a formula
(starting with `=`, `+`, `-`, `@`, or a tab or carriage return) is prefixed with `'` so it stays text.
"""

from __future__ import annotations

import csv
import io

from provider.audit.model import Report

HEADER = ("namespace", "kind", "name", "state", "constraint", "enforcementAction", "images", "messages", "sources")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell


def csv_report(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for workload in report.workloads:
        for constraint_id, failure in sorted(workload.failures.items()):
            row = (workload.ref.namespace, workload.ref.kind, workload.ref.name, workload.state, constraint_id,
                   failure.constraint.enforcement_action, " ".join(workload.images), "\n".join(failure.messages),
                   " ".join(sorted(failure.sources)))
            writer.writerow([neutralise(cell) for cell in row])
    return out.getvalue()
