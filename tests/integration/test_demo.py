"""The README's first command: the demo runs the seeds' scenarios to the end with the right decisions."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest


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
    # Signed scan reports: a clean report admits, a fixable CRITICAL CVE denies, a report signed by the build
    # key (not a scanner) does not count.
    assert "deployment.apps/search created" in out
    assert re.search(r"\[scanned-images\] image demo.local/shop/cart:1.0 has CVE-2024-1111 \(CRITICAL, fixable\) "
                     r"over maximumFixableSeverity HIGH", out)
    assert re.search(r"\[scanned-images\] image demo.local/shop/checkout:1.0 has no signed vulnerability report from "
                     r"scanner \(found: sha256:\w+ signed by shop-cosign, not trusted for vulnerability-report", out)
    rows = re.findall(r"^(\S.{31}) (\S+ --image=\S+)\s+(\w+)\s+(\w+)\s+(ok|MISMATCH)$", out, re.MULTILINE)
    assert len(rows) == 12 and {row[4] for row in rows} == {"ok"}
    assert [row[3] for row in rows] == ["denied", "created", "created", "denied", "created", "created", "audited",
                                        "created", "denied", "created", "denied", "denied"]
    assert out.rstrip().endswith("all decisions as expected")


def _descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc (the provider runs in its own session, so not by process group)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(("signum", "codes"), [(signal.SIGTERM, {143}), (signal.SIGINT, {0, 130})])
def test_demo_serve_stops_cleanly_on_a_signal(signum: signal.Signals, codes: set[int]) -> None:
    # -X faulthandler: if the demo ever fails to stop, SIGABRT makes it print where each of its threads is.
    # SIGINT as a terminal delivers it: a shell starts background jobs with SIGINT ignored, and Python keeps an
    # inherited SIG_IGN, so a suite started with `&` would otherwise send Ctrl-C to a demo that cannot hear it.
    demo = subprocess.Popen([sys.executable, "-u", "-X", "faulthandler", "-m", "provider", "demo", "--serve"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_default_sigint)
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:  # until the demo says it keeps serving
            lines.append(line)
            if "the provider keeps running" in line:
                break
        workspace = Path(re.search(r"^workspace (\S+):", "".join(lines), re.MULTILINE)[1])  # type: ignore[index]
        assert (workspace / "pki/gatekeeper.key").is_file()
        children = _descendants(demo.pid)
        assert children, "the provider runs as a child of the demo"
        demo.send_signal(signum)
        try:
            rest = demo.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            demo.send_signal(signal.SIGABRT)
            pytest.fail("the demo did not stop:\n" + "".join(lines) + demo.communicate(timeout=30)[0])
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode in codes, "".join(lines) + rest
    assert "Traceback" not in rest
    assert not workspace.exists(), "the temporary keys are deleted"
    assert not [pid for pid in children if _alive(pid)], "the provider and its workers are gone"
