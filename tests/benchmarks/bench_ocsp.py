"""OCSP for notation chains: verifying one response against the floor (parse it and check its signature, nothing
else), and a check that asks a loopback responder against one answered from the cache. Prints microseconds
per call and the ratios."""

from __future__ import annotations

import sys
import timeit
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from provider.stores.egress import EgressPolicy
from provider.stores.fetch import Outbound
from provider.verifiers.notation.ocsp import OCSPChecker, read_response, responder_urls
from tests.test_ocsp import OCSPResponder

ROUNDS = 200


def per_call(fn: object, rounds: int = ROUNDS) -> float:
    timer = timeit.Timer(fn)  # type: ignore[arg-type]
    return min(timer.repeat(repeat=5, number=rounds)) / rounds * 1e6


def main() -> None:
    responder = OCSPResponder()
    try:
        identity = responder.signer()
        leaf, issuer = identity.chain[0], identity.chain[1]
        request = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA1()).build()
        der = responder.respond(request)
        now = datetime.now(UTC)
        assert read_response(der, leaf, issuer, responder.url, now).status == "good"  # else the number means nothing
        key = issuer.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)

        def floor() -> None:
            response = ocsp.load_der_ocsp_response(der)
            assert response.signature_hash_algorithm is not None
            key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(response.signature_hash_algorithm))

        verify_us = per_call(lambda: read_response(der, leaf, issuer, responder.url, now))
        floor_us = per_call(floor)

        outbound = Outbound(EgressPolicy(explicit=frozenset({f"127.0.0.1:{responder.port}"})))
        urls = responder_urls(leaf)

        def fresh() -> None:
            assert OCSPChecker(outbound).status(leaf, issuer, urls).status == "good"

        cached_checker = OCSPChecker(outbound)
        cached_checker.status(leaf, issuer, urls)
        fresh_us = per_call(fresh, rounds=20)
        cached_us = per_call(lambda: cached_checker.status(leaf, issuer, urls))
    finally:
        responder.httpd.shutdown()
    print(f"{'OCSP (EC P-384 issuer)':<34} {'us':>10} {'baseline us':>12} {'ratio':>8}")
    print(f"{'verify one response vs sig only':<34} {verify_us:>10.1f} {floor_us:>12.1f} {verify_us / floor_us:>8.2f}")
    print(f"{'cached answer vs loopback fetch':<34} {cached_us:>10.1f} {fresh_us:>12.1f} {cached_us / fresh_us:>8.4f}")


if __name__ == "__main__":
    main()
