"""CRL checks for notation chains: the cache is keyed by URL and issuer, and the issuer is checked per chain."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provider.devkit import notation
from provider.reference import parse_reference
from provider.stores.base import ResolvedImage
from provider.stores.egress import EgressPolicy
from provider.stores.fetch import Outbound
from provider.verifiers.notation.revocation import RevocationChecker, _issuer_id
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
    (key, crl), = list(checker._cache.items())
    checker._cache[(key[0], _issuer_id(second.chain[1]))] = crl
    assert "is not signed by CN=Acme Signing CA" in checker.problem(second.chain)
