"""Content summaries against the floor: only parsing the same document's JSON. Prints milliseconds per
document, the ratio, and the size of what goes into the facts against the size of the document."""

from __future__ import annotations

import json
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from provider.content import kinds
from provider.content.summary import content_facts
from provider.devkit import content
from provider.verifiers.base import AttestationResult
from provider.verifiers.limits import load_json

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")


def documents() -> dict[str, tuple[str, bytes]]:
    report = content.trivy_report([(f"CVE-2024-{n:05d}", SEVERITIES[n % 4], "1.1" if n % 3 else "")
                                   for n in range(5000)], "2024-01-01T00:00:00Z")
    sbom = content.cyclonedx({f"component-{n}": ("MIT", "Apache-2.0", "BSD-3-Clause")[n % 3] for n in range(10000)},
                             "2024-01-01T00:00:00Z")
    predicate = content.vuln_predicate(report, "2024-01-01T00:00:00Z")
    return {"Trivy report, 5000 findings": (kinds.VULN_PREDICATE, json.dumps(predicate).encode()),
            "CycloneDX SBOM, 10000 components": (kinds.CYCLONEDX_PREDICATE, json.dumps(sbom).encode())}


def main() -> None:
    print(f"{'document':<34} {'bytes':>9} {'summary ms':>11} {'parse ms':>9} {'ratio':>6} {'facts bytes':>12}")
    for label, (predicate_type, data) in documents().items():
        def summarise(data: bytes = data, predicate_type: str = predicate_type) -> dict[str, object]:
            predicate = load_json(data, "document")
            result = AttestationResult(predicate_type, "scanner", True, "", "sha256:" + "a" * 64, None, predicate)
            return content_facts([result], {"scanner": ("vulnerability-report", "sbom")}, "LOW")

        facts = summarise()
        assert all(e["trusted"] for group in facts.values() for e in group)  # a failed summary measures nothing
        ours = min(timeit.repeat(summarise, number=3, repeat=3)) / 3 * 1e3
        floor = min(timeit.repeat(lambda data=data: json.loads(data), number=3, repeat=3)) / 3 * 1e3
        size = len(json.dumps(facts, separators=(",", ":")))
        print(f"{label:<34} {len(data):>9} {ours:>11.1f} {floor:>9.1f} {ours / floor:>6.2f} {size:>12}")


if __name__ == "__main__":
    main()
