"""CRL checks for notation chains: the cache is keyed by URL and issuer, and the issuer is checked per chain."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provider.devkit import notation
from provider.reference import parse_reference
from provider.stores.base import ResolvedImage
from provider.stores.egress import EgressPolicy
from provider.stores.fetch import Outbound
from provider.verifiers.notation.revocation import (
    CRL_CACHE_BYTES,
    CRL_ENTRY_OVERHEAD,
    RevocationChecker,
    _check_issuer,
    _issuer_id,
)
from provider.verifiers.notation.sources import UNREACHABLE_TTL
from provider.verifiers.notation.verifier import NotationVerifier, SignatureBlob
from tests.test_notation import IMAGE, CRLServer, authority, policy_with


@pytest.fixture
def crl_server() -> Iterator[CRLServer]:
    server = CRLServer()
    yield server
    server.httpd.shutdown()


def loopback_checker(server: CRLServer) -> RevocationChecker:
    """CRL URLs are fetched under the egress policy: the test's loopback server is named explicitly."""
    return RevocationChecker(outbound=Outbound(EgressPolicy(explicit=frozenset({f"127.0.0.1:{server.port}"}))))


def check(tmp_path: Path, verifier: NotationVerifier, identity: notation.SigningIdentity, name: str) -> Any:
    (tmp_path / f"{name}.pem").write_bytes(identity.root_pem)
    auth = authority(tmp_path, {"ca:acme": [tmp_path / f"{name}.pem"]}, policy_with(["ca:acme"]))
    image = ResolvedImage(parse_reference(f"registry.example/app@{IMAGE['digest']}"), IMAGE["digest"],
                          IMAGE["mediaType"], IMAGE["size"], b"")
    blob = SignatureBlob("sha256:" + "0" * 64, "application/jose+json", notation.sign(IMAGE, identity))
    return verifier.check(image, blob, auth.name, auth.notation)


def test_cached_crl_never_vouches_for_another_issuer_at_the_same_url(tmp_path: Path, crl_server: CRLServer) -> None:
    verifier = NotationVerifier(revocation=loopback_checker(crl_server))
    # Two CAs with the same name and distribution point, but different keys.
    first = notation.identity_with_intermediate("ec-256", crl_url=crl_server.url)
    second = notation.identity_with_intermediate("ec-256", crl_url=crl_server.url)
    assert first.chain[1].subject == second.chain[1].subject
    crl_server.publish(first, revoked_serials=[])
    assert check(tmp_path, verifier, first, "first").verified is True
    assert crl_server.hits == 1
    # The first CA's CRL is what the URL serves (and what is cached): it says nothing about the second CA.
    other = check(tmp_path, verifier, second, "second")
    assert other.verified is False
    assert other.reason == (f"revocation status of CN=Acme Release Signer,O=Acme,L=Seattle,ST=WA,C=US is unknown: "
                            f"CRL {crl_server.url} is not signed by CN=Acme Signing CA,O=Acme,L=Seattle,ST=WA,C=US")
    assert crl_server.hits == 2
    # Once the second CA's CRL is published, it is fetched and cached next to the first one.
    crl_server.publish(second, revoked_serials=[second.chain[0].serial_number])
    assert "was revoked at" in check(tmp_path, verifier, second, "second").reason
    assert check(tmp_path, verifier, first, "first").verified is True
    assert check(tmp_path, verifier, second, "second").verified is False
    assert crl_server.hits == 3  # both answered from the cache the second time


def test_cached_crl_is_checked_again_against_each_chains_issuer(crl_server: CRLServer) -> None:
    checker = loopback_checker(crl_server)
    first = notation.identity_with_intermediate("ec-256", crl_url=crl_server.url)
    crl_server.publish(first, revoked_serials=[])
    assert checker.problem(first.chain) == ""
    # A cached CRL whose signature no longer matches the issuer (here: the cache entry is planted under the
    # issuer of another chain) is refused, not trusted because it was verified once.
    second = notation.identity_with_intermediate("ec-256", crl_url=crl_server.url)
    (key, entry), = list(checker._cache.items())
    checker._cache[(key[0], _issuer_id(second.chain[1]))] = entry
    assert "is not signed by CN=Acme Signing CA" in checker.problem(second.chain)


# --- one deadline per job: sources side by side, unreachable ones remembered, the cache bounded in bytes ----

SIGNER = "CN=Acme Release Signer,O=Acme,L=Seattle,ST=WA,C=US"


def test_a_certificates_crls_are_fetched_side_by_side(crl_server: CRLServer) -> None:
    """Six distribution points, each answering only once all six requests are in flight: fetched one after
    another (notation-core-go revocation/crl fetches them in turn), the first would wait past its timeout."""
    urls = [f"{crl_server.url}?dp={n}" for n in range(6)]
    identity = notation.identity_with_intermediate("ec-256", crl_url=" ".join(urls))
    crl_server.publish(identity, revoked_serials=[])
    crl_server.gate = threading.Barrier(len(urls), timeout=30)
    checker = RevocationChecker(timeout=10, outbound=loopback_checker(crl_server).outbound)
    assert checker.problem(identity.chain) == ""
    assert crl_server.hits == len(urls)


def test_revocation_waits_no_longer_than_the_jobs_deadline(crl_server: CRLServer) -> None:
    """Each source may take an hour; the job's deadline is what ends the wait, and a source cut short by it
    is not remembered as unreachable."""
    urls = [f"{crl_server.url}?dp={n}" for n in range(3)]
    identity = notation.identity_with_intermediate("ec-256", crl_url=" ".join(urls))
    crl_server.publish(identity, revoked_serials=[])
    crl_server.drip = True
    checker = RevocationChecker(timeout=3600, outbound=loopback_checker(crl_server).outbound)
    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.append(checker.problem(identity.chain,
                                                                            deadline=time.monotonic() + 0.5)))
    worker.start()
    worker.join(120)  # a hang guard, not a measurement
    assert not worker.is_alive()
    assert outcome == [f"revocation status of {SIGNER} is unknown: "
                       + "; ".join(f"CRL {url}: revocation status unavailable" for url in urls)]
    crl_server.drip = False  # the deadline was the job's: the sources are asked again next time
    assert checker.problem(identity.chain) == ""
    assert crl_server.hits == 2 * len(urls)


def test_an_unreachable_source_is_not_asked_again_for_a_while(crl_server: CRLServer) -> None:
    identity = notation.identity_with_intermediate("ec-256", crl_url=crl_server.url)
    crl_server.crl = None  # 503
    checker = loopback_checker(crl_server)
    first = checker.problem(identity.chain)
    assert first == f"revocation status of {SIGNER} is unknown: CRL {crl_server.url}: revocation status unavailable"
    crl_server.publish(identity, revoked_serials=[])
    assert checker.problem(identity.chain) == first  # remembered for UNREACHABLE_TTL seconds
    assert crl_server.hits == 1
    assert UNREACHABLE_TTL <= 60
    fresh = loopback_checker(crl_server)  # (a process whose memory has expired)
    assert fresh.problem(identity.chain) == ""


def test_the_crl_cache_is_bounded_in_bytes(crl_server: CRLServer) -> None:
    identities = [notation.identity_with_intermediate("ec-256", crl_url=crl_server.url) for _ in range(5)]
    crl_server.publish(identities[0], revoked_serials=list(range(1, 2000)))
    one = len(crl_server.crl or b"") + len(crl_server.url) + CRL_ENTRY_OVERHEAD
    checker = RevocationChecker(outbound=loopback_checker(crl_server).outbound, cache_bytes=3 * one + 100)
    for identity in identities:
        crl_server.publish(identity, revoked_serials=list(range(1, 2000)))
        assert checker.problem(identity.chain) == ""
    assert checker.cache_bytes <= 3 * one + 100
    assert len(checker._cache) == 3
    assert CRL_CACHE_BYTES == 32 * 1024 * 1024  # the default, documented in docs/verifiers.md


def test_a_crl_whose_issuer_name_cannot_be_read_is_malformed_not_an_internal_error() -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    from tests.test_chains import SEATTLE, bit_string_locality

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(SEATTLE).last_update(now)
           .next_update(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    hostile = x509.load_der_x509_crl(bit_string_locality(crl.public_bytes(Encoding.DER)))
    issuer = notation.identity_with_intermediate("ec-256").chain[1]
    with pytest.raises(ValueError, match=r"^CRL http://crl\.invalid/ca\.crl is malformed \(oid must be"):
        _check_issuer(hostile, issuer, "http://crl.invalid/ca.crl")
