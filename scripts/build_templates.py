"""Regenerate constraints/templates/ from policies/ (a test fails when they drift)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provider.policy.templates import build_all  # noqa: E402

if __name__ == "__main__":
    # The chart ships the same templates (Helm can only read files inside the chart).
    for path in build_all(ROOT / "policies", ROOT / "constraints" / "templates",
                          ROOT / "helm" / "sigwarden" / "files" / "constrainttemplates"):
        print(path.relative_to(ROOT))
