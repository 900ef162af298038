"""The README's first command: the demo runs the seeds' scenarios to the end with the right decisions."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_replays_the_seed_transcripts() -> None:
    result = subprocess.run([sys.executable, "-m", "provider", "demo"], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # kritis: the unsigned tag is denied with kritis' message, the attested digest is admitted.
    assert re.search(r'^Error from server: admission webhook "validation.gatekeeper.sh" denied the request: '
                     r"\[kritis-attested-images\] image alpine:3.11 is not attested", out, re.MULTILINE)
    assert "deployment.apps/test-allow created" in out
    # cosign webhook: signed admitted in the labelled namespace, tampered denied, unlabelled namespace untouched.
    assert "deployment.apps/web created" in out
    assert re.search(r"\[signed-required\] image demo.local/shop/payments:1.0 is not attested: .*signature is for "
                     r"sha256:\w+, not for sha256:\w+", out)
    assert "deployment.apps/scratch created" in out
    # Ratify/AKS: audit admits and reports, deny blocks.
    assert "(audit reports: [notation-audit] image alpine:3.11 is not attested" in out
    assert "[notation-deny] image alpine:3.11 is not attested" in out
    rows = re.findall(r"^(\S.{31}) (\S+ --image=\S+)\s+(\w+)\s+(\w+)\s+(ok|MISMATCH)$", out, re.MULTILINE)
    assert len(rows) == 9 and {row[4] for row in rows} == {"ok"}
    assert [row[3] for row in rows] == ["denied", "created", "created", "denied", "created", "created", "audited",
                                        "created", "denied"]
    assert out.rstrip().endswith("all decisions as expected")
