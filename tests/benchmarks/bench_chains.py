"""Notation certificate chain validation (pyca/cryptography path validation plus the Notary Project rules)
against the floor: checking each link's signature directly. Prints microseconds per chain and the ratio."""

from __future__ import annotations

import sys
import timeit
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from provider.devkit import notation
from provider.verifiers.notation.chain import verify_chain

ROUNDS = 300


def per_call(fn: object) -> float:
    timer = timeit.Timer(fn)  # type: ignore[arg-type]
    return min(timer.repeat(repeat=5, number=ROUNDS)) / ROUNDS * 1e6


def case(kind: str) -> tuple[float, float]:
    identity = notation.identity_with_intermediate(kind)
    chain = identity.chain
    verify_chain(chain, [identity.root], None)  # must validate, or the number means nothing

    def links() -> None:
        for cert, issuer in pairwise(chain):
            cert.verify_directly_issued_by(issuer)

    return per_call(lambda: verify_chain(chain, [identity.root], None)), per_call(links)


def main() -> None:
    cases = {f"leaf {kind}, EC P-384 CAs": case(kind) for kind in ("ec-256", "rsa-3072")}
    print(f"{'chain (3 certificates)':<28} {'sigwarden us':>13} {'link sigs us':>13} {'ratio':>7}")
    for label, (ours, floor) in cases.items():
        print(f"{label:<28} {ours:>13.1f} {floor:>13.1f} {ours / floor:>7.2f}")


if __name__ == "__main__":
    main()
