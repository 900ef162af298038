"""Reference aliases cannot escape a per-repository trust policy statement (issue: REGISTRY.example, :443).

The image is signed by a dev identity; the statement for registry.example/prod/app trusts only the prod CA,
the `*` statement trusts the dev CA. Every spelling of the prod repository must land on the prod statement.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provider.config import Credentials, RegistryAuth, build_config
from provider.devkit import notation
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.reference import parse_reference
from provider.stores.auth import CredentialStore
from provider.verifiers.notation.trustpolicy import TrustPolicyError, parse_trust_policy
from tests.helpers import write_yaml

DEV = notation.identity_with_intermediate("ec-256")
PROD = notation.identity_with_intermediate("ec-256")


def trust_policy(prod_scope: str) -> dict[str, Any]:
    statement = {"signatureVerification": {"level": "strict"}, "trustedIdentities": ["*"]}
    return {"version": "1.0", "trustPolicies": [
        {"name": "prod", "registryScopes": [prod_scope], "trustStores": ["ca:prod"], **statement},
        {"name": "everything-else", "registryScopes": ["*"], "trustStores": ["ca:dev"], **statement}]}


def engine(tmp_path: Path, prod_scope: str = "registry.example/prod/app") -> Engine:
    layouts = tmp_path / "layouts"
    for repository in ("prod/app", "dev/app"):
        writer = LayoutWriter(layouts / "registry.example", repository)
        notation.attach(writer, writer.add_image("v1"), notation.sign(
            notation.target_of(writer.add_image("v1")), DEV))
    # Other spellings of the host on disk too, so only normalisation decides which statement applies.
    for alias in ("REGISTRY.example", "registry.example:443"):
        (layouts / alias).symlink_to(layouts / "registry.example")
    (tmp_path / "dev.pem").write_bytes(DEV.root_pem)
    (tmp_path / "prod.pem").write_bytes(PROD.root_pem)
    data = {"stores": [{"type": "oci-layout", "path": str(layouts), "match": ["*"]}],
            "authorities": [{"name": "release", "notation": {
                "trustStores": {"ca:dev": [str(tmp_path / "dev.pem")], "ca:prod": [str(tmp_path / "prod.pem")]},
                "trustPolicy": {"inline": trust_policy(prod_scope)}}}]}
    return Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))


@pytest.mark.parametrize("image", ["registry.example/prod/app:v1", "REGISTRY.example/prod/app:v1",
                                   "registry.example:443/prod/app:v1"])
def test_every_alias_of_the_prod_repository_uses_the_prod_statement(tmp_path: Path, image: str) -> None:
    checker = engine(tmp_path)
    try:
        item = checker.verify([image], "t")[0]
    finally:
        checker.shutdown()
    assert not item.error, item.error
    assert item.value["reference"] == "registry.example/prod/app:v1"
    assert item.value["verified"] is False
    assert "is not in the trust store" in item.value["signatures"][0]["reason"]


@pytest.mark.parametrize("scope", ["Registry.Example/prod/app", "registry.example:443/prod/app"])
def test_a_trust_policy_scope_is_normalised_too(tmp_path: Path, scope: str) -> None:
    checker = engine(tmp_path, scope)
    try:
        prod, dev = checker.verify(["registry.example/prod/app:v1", "registry.example/dev/app:v1"], "t")
    finally:
        checker.shutdown()
    assert prod.value["verified"] is False
    assert dev.value["verified"] is True  # the dev identity is trusted where the `*` statement applies


def test_host_scope_does_not_cover_another_port() -> None:
    document = parse_trust_policy(trust_policy("registry.example/prod/app"))
    prod = document.policy_for("registry.example/prod/app")
    assert prod is not None and prod.name == "prod"
    other_port = document.policy_for("registry.example:5000/prod/app")
    assert other_port is not None and other_port.name == "everything-else"


def test_two_spellings_of_one_scope_are_a_duplicate() -> None:
    document = trust_policy("registry.example/prod/app")
    document["trustPolicies"].append({**document["trustPolicies"][0], "name": "again",
                                      "registryScopes": ["REGISTRY.EXAMPLE:443/prod/app"]})
    with pytest.raises(TrustPolicyError) as caught:
        parse_trust_policy(document)
    assert 'registry scope "registry.example/prod/app" is present in multiple' in str(caught.value)


def test_config_scopes_store_patterns_and_insecure_hosts_are_normalised(tmp_path: Path) -> None:
    (tmp_path / "dev.pem").write_bytes(DEV.root_pem)
    data = {"stores": [{"type": "registry", "match": ["REGISTRY.example:443/prod/*"],
                        "insecure": ["Registry.Example:443", "LOCALHOST:05000"]}],
            "authorities": [{"name": "release", "scopes": ["Registry.Example:443/prod/*", "nginx"], "notation": {
                "trustStores": {"ca:dev": [str(tmp_path / "dev.pem")]},
                "trustPolicy": {"inline": trust_policy("registry.example/prod/app")}}}]}
    data["authorities"][0]["notation"]["trustPolicy"]["inline"]["trustPolicies"][0]["trustStores"] = ["ca:dev"]
    config = build_config(data, write_yaml(tmp_path / "config.yaml", data))
    assert config.stores[0].match == ("registry.example/prod/*",)
    assert config.stores[0].insecure == ("registry.example", "localhost:5000")
    authority = config.authorities[0]
    assert authority.scopes == ("registry.example/prod/*", "docker.io/library/nginx")
    assert authority.covers("registry.example/prod/app")
    assert not authority.covers("registry.example:5000/prod/app")


def test_credentials_are_found_for_the_normalised_registry(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {"https://Mirror.Example:443": {"username": "m", "password": "p"}}}))
    store = CredentialStore(RegistryAuth(docker_config=config,
                                         static={"REGISTRY.example:0443": Credentials("u", "p")}))
    registry = parse_reference("Registry.Example:443/prod/app").registry
    found = store.for_host(registry)
    assert found is not None and found.username == "u"
    mirror = store.for_host(parse_reference("mirror.example/app").registry)
    assert mirror is not None and mirror.username == "m"
