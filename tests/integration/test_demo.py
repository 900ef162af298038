"""The README's first command: the demo runs to the end and makes the right decisions."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_verifies_signed_and_rejects_unsigned_and_tampered() -> None:
    result = subprocess.run([sys.executable, "-m", "provider", "demo"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {m.group(1): (m.group(2), m.group(3)) for m in
            re.finditer(r"^(\S+)\s+(VERIFIED|DENIED|ERROR)\s+(.*)$", result.stdout, re.MULTILINE)}
    assert rows["demo.local/kritis-demo/alpine:3.11"][0] == "VERIFIED"
    assert any(k.startswith("demo.local/kritis-demo/alpine@sha256:") and v[0] == "VERIFIED" for k, v in rows.items())
    assert rows["alpine:3.11"] == ("DENIED", rows["alpine:3.11"][1])
    assert rows["alpine:3.11"][1].startswith("no signatures found for sha256:")
    verdict, why = rows["demo.local/team/app:v1"]
    assert verdict == "DENIED" and re.search(r"signature is for sha256:\w+, not for sha256:\w+", why)
    assert rows["demo.local/Team/App"] == ("ERROR", "INVALID_REFERENCE: repository name must be lowercase")
