"""Regenerate every copy built from policies/: its template.yaml files, constraints/ and the Helm chart.

`--check` exits 1 when any copy differs from what the generator makes (a test runs the same check).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provider.policy.build import drift, repository_outputs  # noqa: E402

if __name__ == "__main__":
    outputs = repository_outputs(ROOT)
    if "--check" in sys.argv[1:]:
        problems = drift(outputs)
        print("\n".join(problems) or "all generated copies are up to date")
        sys.exit(1 if problems else 0)
    for output in outputs:
        for path in output.write():
            print(path.relative_to(ROOT))
