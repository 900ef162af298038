"""Revocation fetches (CRL, OCSP) of a notation chain go through the egress policy of the store the image came
from, only for chains anchored in a trust store, and their failures reach the facts as one category.

The image and its signature live in a real docker-registry on loopback; the CRL distribution points listen on
other loopback addresses and count what reaches them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provider.config import build_config
from provider.devkit import notation
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from tests.helpers import write_yaml
from tests.registry import RegistryServer
from tests.test_notation import CRLServer
from tests.test_notation_isolation import policy

INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.fixture
def crl_server() -> Iterator[CRLServer]:
    server = CRLServer(address="127.0.0.2")
    yield server
    server.httpd.shutdown()


def push_signed(tmp_path: Path, registry: RegistryServer, identity: notation.SigningIdentity, repo: str) -> str:
    """An image signed by `identity` in `repo` of the registry (referrers tag index, as notation does there)."""
    writer = LayoutWriter(tmp_path / f"staging-{repo}", "repo")
    image = writer.add_image("v1", repo.encode())
    notation.attach(writer, image, notation.sign(notation.target_of(image), identity))
    referrers = [m for m in json.loads((writer.path / "index.json").read_text())["manifests"]
                 if m.get("artifactType") == notation.NOTARY_ARTIFACT_TYPE]
    writer.add_manifest({"schemaVersion": 2, "mediaType": INDEX, "manifests": referrers},
                        image["digest"].replace(":", "-"), INDEX)
    registry.push_layout(writer.path, repo)
    return f"{registry.host}/{repo}:v1"


def verify(tmp_path: Path, registry: RegistryServer, key: str, root: bytes, level: str = "strict",
           **store: Any) -> dict[str, Any]:
    (tmp_path / "root.pem").write_bytes(root)
    data = {"server": {"requestDeadline": "10s"},
            "stores": [{"type": "registry", "match": ["*"], "insecure": [registry.host], **store}],
            "authorities": [{"name": "acme", "notation": {"trustStores": {"ca:acme": [str(tmp_path / "root.pem")]},
                                                          "trustPolicy": {"inline": policy(level)}}}]}
    engine = Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))
    try:
        item = engine.verify([key], "t")[0]
    finally:
        engine.shutdown()
    assert not item.error, item.error
    return item.value


def test_crl_fetches_follow_the_stores_networks(tmp_path: Path, registry: RegistryServer,
                                                crl_server: CRLServer) -> None:
    identity = notation.identity_with_intermediate("ec-256", crl_url=crl_server.url)
    crl_server.publish(identity, revoked_serials=[])
    key = push_signed(tmp_path, registry, identity, "team/crl")
    # allowNetworks opens 127.0.0.2 for this store: the CRL is fetched there (a default policy refuses it).
    opened = verify(tmp_path, registry, key, identity.root_pem, allowNetworks=["127.0.0.2/32"])
    assert opened["verified"] is True, opened["signatures"]
    assert crl_server.hits == 1
    # denyNetworks wins over allowNetworks, for CRLs as for registries: no connection, one category in the facts.
    denied = verify(tmp_path, registry, key, identity.root_pem, allowNetworks=["127.0.0.2/32"],
                    denyNetworks=["127.0.0.2/32"])
    assert denied["verified"] is False
    assert denied["signatures"][0]["reason"] == (
        "revocation status of CN=Acme Release Signer,O=Acme,L=Seattle,ST=WA,C=US is unknown: "
        f"CRL {crl_server.url}: revocation status unavailable")
    assert crl_server.hits == 1


def test_a_host_the_store_names_is_not_named_for_signer_urls(tmp_path: Path, registry: RegistryServer) -> None:
    """The registry's own host is trusted by name for registry traffic; a CRL URL the signer points at it
    (or anything else on a named host) is refused like any other loopback address."""
    named = CRLServer()  # 127.0.0.1, named in the store's insecure list below
    try:
        identity = notation.identity_with_intermediate("ec-256", crl_url=named.url)
        named.publish(identity, revoked_serials=[])
        key = push_signed(tmp_path, registry, identity, "team/named")
        facts = verify(tmp_path, registry, key, identity.root_pem, insecure=[registry.host, f"127.0.0.1:{named.port}"])
        assert facts["verified"] is False
        assert facts["signatures"][0]["reason"].endswith(f"CRL {named.url}: revocation status unavailable")
        assert named.hits == 0
    finally:
        named.httpd.shutdown()


def test_audit_level_fetches_nothing_for_a_chain_without_a_trust_anchor(tmp_path: Path, registry: RegistryServer,
                                                                       crl_server: CRLServer) -> None:
    """notation-go verifier.go runs the revocation check at level audit whatever authenticity said; here an
    unanchored chain's URLs (the signer's choice) are never fetched, and the check says `skipped`."""
    identity = notation.identity_with_intermediate("ec-256", crl_url=crl_server.url)
    crl_server.publish(identity, revoked_serials=[])
    key = push_signed(tmp_path, registry, identity, "team/audit")
    stranger = notation.identity_with_intermediate("ec-256")  # the trust store holds another root
    facts = verify(tmp_path, registry, key, stranger.root_pem, level="audit", allowNetworks=["127.0.0.2/32"])
    signature = facts["signatures"][0]
    assert signature["checks"]["authenticity"] == "logged"
    assert signature["checks"]["revocation"] == "skipped"
    assert "revocation not checked: the certificate chain does not verify to a trust anchor" in signature["warnings"]
    assert crl_server.hits == 0
