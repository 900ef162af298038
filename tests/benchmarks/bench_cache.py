"""Memory of the facts cache: 100k entries each of verified facts, unverified facts and errors.

Each scenario runs in its own process (RSS never shrinks after a free) and prints the RSS growth, the
bytes per entry the cache accounts for, the RSS bytes per entry and the accounting over the measured growth
(the cache's own accounting, which `verification.cache.maxBytes` bounds, should be within 10% of it). The
baseline, measured in the same run, is the old representation: facts as Python dicts and errors as the
exception that was raised (its traceback keeps the failing frames alive).

`warm` is the whole cost of a verified image that is asked about: its cache entry and its warm index entry,
filled through the engine (asked by digest, then asked again, so the second answer is indexed); the process's
RSS with 100,000 of them is printed too. The last scenario offers all 300k entries to the default
`verification.cache.maxBytes` and shows the bound held.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives.asymmetric import ec

from provider.config import build_config
from provider.devkit import cosign
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.errors import ErrorCode, ItemError
from provider.results import Result
from provider.serialised import SerialisedFacts
from tests.helpers import write_yaml

ENTRIES = 100_000
REG = "bench.example"


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def sample_results(tmp: Path, max_bytes: str) -> tuple[Engine, dict[str, Any], dict[str, Any], str]:
    """A verified and an unverified facts object and an error, produced by real verifications."""
    key = ec.generate_private_key(ec.SECP256R1())
    writer = LayoutWriter(tmp / "layouts" / REG, "team/app")
    signed = writer.add_image("signed", b"signed")["digest"]
    writer.add_image("unsigned", b"unsigned")
    cosign.sign_image(writer, signed, f"{REG}/team/app", key)
    (tmp / "cosign.pub").write_bytes(cosign.public_pem(key))
    data = {"verification": {"cache": {"maxBytes": max_bytes, "maxEntries": 10_000_000}},
            "stores": [{"type": "oci-layout", "path": "layouts", "match": ["*"]}],
            "authorities": [{"name": "release", "cosign": {"publicKeys": ["cosign.pub"]}}]}
    engine = Engine(build_config(data, write_yaml(tmp / "config.yaml", data)))
    verified, unverified, error = engine.verify([f"{REG}/team/app:signed", f"{REG}/team/app:unsigned",
                                                 f"{REG}/team/missing:v1"], "t")
    assert verified.value["verified"] and not unverified.value["verified"] and error.error
    return engine, verified.value, unverified.value, error.error


def raised(message: str) -> ItemError:
    """An ItemError with a traceback a few frames deep, as the engine used to keep it."""
    def fetch(depth: int) -> None:
        if depth == 0:
            raise ItemError(ErrorCode.NOT_FOUND, message)
        fetch(depth - 1)
    try:
        fetch(6)
    except ItemError as exc:
        return exc
    raise AssertionError("unreachable")


def scenario(kind: str, max_bytes: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as name:
        engine, verified, unverified, error = sample_results(Path(name), max_bytes)
        facts = {"verified": verified, "unverified": unverified, "warm": verified}
        baseline: dict[tuple[str, str], Any] = {}
        before = rss()
        plain = kind.removeprefix("baseline-")
        kinds = ["verified", "unverified", "error"] if plain == "all" else [plain]
        for which in kinds:
            for index in range(ENTRIES):
                repo = f"{REG}/team/app{index:06d}"
                digest = f"sha256:{index:064x}"
                if kind.startswith("baseline"):
                    # The old cache: a facts dict built per image, or the exception with its traceback.
                    baseline[(which, f"{repo}@{digest}")] = (
                        json.loads(json.dumps(dict(facts[which], reference=repo))) if which != "error"
                        else raised(f"{repo} not found"))
                    continue
                if which == "error":
                    result = Result(None, error.replace(f"{REG}/team/missing", repo), 600.0)
                else:
                    # As the engine keeps them: serialised once, the reference left out (spliced per answer).
                    result = Result(None, "", 3600.0, digest,
                                     SerialisedFacts.of(dict(facts[which], digest=digest)))
                with engine._lock:
                    engine._remember(("facts", repo, digest), result)
            if which == "warm":
                keys = [f"{REG}/team/app{index:06d}@sha256:{index:064x}" for index in range(ENTRIES)]
                for start in range(0, ENTRIES, 1000):
                    batch = keys[start:start + 1000]
                    engine.verify(batch, "t")  # answered from the cache: indexed
                    assert all(item.facts is not None for item in engine.verify(batch, "t"))  # from the index
        grown = rss() - before
        entries = len(baseline) or engine.cache_entries()
        accounted = engine.cache_bytes if not baseline else 0
        warm = engine.warm_entries() if not baseline else 0
        engine.shutdown()
        return {"kind": kind, "entries": entries, "rss": grown, "accounted": accounted, "total_rss": rss(),
                "warm": warm, "bound": engine.config.verification.cache.max_bytes}


def run(kind: str, max_bytes: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, kind, max_bytes], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    mib = 1024 * 1024
    print(f"{'scenario':<28} {'entries':>8} {'RSS MiB':>8} {'RSS B/entry':>12} {'counted B/entry':>16} "
          f"{'counted/RSS':>12} {'vs baseline':>12}")
    for kind in ("verified", "unverified", "error", "warm"):
        ours = run(kind, "4GiB")
        old = run(f"baseline-{'verified' if kind == 'warm' else kind}", "4GiB")
        rows = ((f"{kind} (old: dict/exception)", old), (kind, ours)) if kind != "warm" else (("warm", ours),)
        for label, row in rows:
            ratio = f"{row['rss'] / old['rss']:.2f}" if row is ours else "1.00"
            counted = f"{row['accounted'] / row['entries']:.0f}" if row["accounted"] else "-"
            share = f"{row['accounted'] / row['rss']:.2f}" if row["accounted"] else "-"
            print(f"{label:<28} {row['entries']:>8} {row['rss'] / mib:>8.1f} {row['rss'] / row['entries']:>12.0f} "
                  f"{counted:>16} {share:>12} {ratio:>12}")
        if kind == "verified":
            verified = ours
        if kind == "error":
            print(f"bytes per cached error: {ours['rss'] / ours['entries']:.0f} (RSS), "
                  f"{ours['accounted'] / ours['entries']:.0f} (counted)")
        if kind == "warm":
            print(f"bytes per cached verified image: {verified['rss'] / verified['entries']:.0f} (RSS; "
                  f"{ours['rss'] / ours['entries']:.0f} once asked again, with its warm index entry); "
                  f"counted {verified['accounted'] / verified['entries']:.0f} and "
                  f"{ours['accounted'] / ours['entries']:.0f}")
            print(f"RSS with {ours['entries']} cached verified images, all indexed ({ours['warm']} index entries): "
                  f"{ours['total_rss'] / mib:.0f} MiB, of which the cache and index grew "
                  f"{ours['rss'] / mib:.1f} MiB; the cache counts {ours['accounted'] / mib:.1f} MiB "
                  f"({ours['accounted'] / ours['rss']:.2f} x the growth)")
    bounded = run("all", "64MiB")
    held = "held" if bounded["accounted"] <= bounded["bound"] else "EXCEEDED"
    print(f"{'300k offered, default bound':<28} {bounded['entries']:>8} {bounded['rss'] / mib:>8.1f} "
          f"{bounded['rss'] / bounded['entries']:>12.0f} {bounded['accounted'] / bounded['entries']:>16.0f} "
          f"{bounded['accounted'] / bounded['rss']:>12.2f}")
    print(f"bound {held}: the cache accounts {bounded['accounted'] / mib:.1f} MiB for a {bounded['bound'] / mib:.0f} "
          f"MiB bound; RSS grew {bounded['rss'] / mib:.1f} MiB "
          f"({bounded['rss'] / bounded['bound']:.2f} x the bound)")


if __name__ == "__main__":
    if len(sys.argv) == 3:
        print(json.dumps(scenario(sys.argv[1], sys.argv[2])))
    else:
        main()
