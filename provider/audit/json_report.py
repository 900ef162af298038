"""The v2 JSON report (`provider/schemas/audit-report.schema.json`) as text.

ASCII only: every other character, a control character or a lone surrogate included, is a JSON escape, so the
file is well-formed JSON in any encoding and reads back to exactly the report's strings.
"""

from __future__ import annotations

import json

from provider.audit.model import Report


def json_report(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=True) + "\n"
