"""Notation's `audit` level through the shipped templates, with the real engine as external data.

At level audit notation only logs a failed authenticity check, so `verified`/`isSuccess` stay true (Ratify's
template behaves as before), but K8sSignedImages does not count such a signature for its authority unless
the constraint sets `acceptAuditLevel: true`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provider.config import build_config
from provider.devkit import notation
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.policy.external import EngineExternalData
from provider.policy.gatekeeper import PolicySet
from provider.policy.suite import admit
from tests.helpers import write_yaml

TEMPLATES = Path(__file__).resolve().parents[1] / "constraints" / "templates"
TRUSTED = notation.identity_with_intermediate("ec-256")
STRANGER = notation.identity_with_intermediate("ec-256")  # same subject, a root nobody trusts


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[Engine]:
    for repository, identity in (("trusted", TRUSTED), ("stranger", STRANGER)):
        writer = LayoutWriter(tmp_path / "layouts/registry.example", repository)
        image = writer.add_image("v1")
        notation.attach(writer, image, notation.sign(notation.target_of(image), identity))
    (tmp_path / "root.pem").write_bytes(TRUSTED.root_pem)
    policy = {"version": "1.0", "trustPolicies": [{"name": "audit-first", "registryScopes": ["*"],
                                                   "signatureVerification": {"level": "audit"},
                                                   "trustStores": ["ca:acme"], "trustedIdentities": ["*"]}]}
    data = {"stores": [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["*"]}],
            "authorities": [{"name": "acme", "notation": {"trustStores": {"ca:acme": [str(tmp_path / "root.pem")]},
                                                          "trustPolicy": {"inline": policy}}}]}
    checker = Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))
    yield checker
    checker.shutdown()


def pod(image: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "main", "image": image}]}}


def policies(tmp_path: Path, engine: Engine, kind: str, parameters: dict[str, Any]) -> PolicySet:
    constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind,
                  "metadata": {"name": "c"}, "spec": {"parameters": parameters}}
    return PolicySet.from_paths([TEMPLATES, write_yaml(tmp_path / f"{kind}.yaml", constraint)],
                                EngineExternalData(engine))


def test_facts_keep_notations_outcome_and_say_authenticity_was_only_logged(engine: Engine) -> None:
    facts = engine.verify(["registry.example/stranger:v1"], "t")[0].value
    assert facts["verified"] is True and facts["isSuccess"] is True and facts["authorities"] == ["acme"]
    signature = facts["signatures"][0]
    assert signature["checks"]["integrity"] == "passed"
    assert signature["checks"]["authenticity"] == "logged"
    assert "is not in the trust store" in signature["warnings"][0]
    trusted = engine.verify(["registry.example/trusted:v1"], "t")[0].value
    assert trusted["signatures"][0]["checks"]["authenticity"] == "passed"


@pytest.mark.parametrize("parameters", [{"authorities": ["acme"]}, {}, {"authorities": ["acme"], "requireAll": True}])
def test_signed_images_does_not_count_a_signature_whose_authenticity_failed(tmp_path: Path, engine: Engine,
                                                                          parameters: dict[str, Any]) -> None:
    checks = policies(tmp_path, engine, "K8sSignedImages", parameters)
    denied = admit(checks, pod("registry.example/stranger:v1")).denied
    assert len(denied) == 1
    message = denied[0].message
    assert message.startswith("image registry.example/stranger:v1 is not attested: ")
    assert "signed only at the notation audit level, authenticity failed (acme: " in message
    assert "set acceptAuditLevel to accept" in message
    assert admit(checks, pod("registry.example/trusted:v1")).allowed


def test_accept_audit_level_counts_it(tmp_path: Path, engine: Engine) -> None:
    checks = policies(tmp_path, engine, "K8sSignedImages", {"authorities": ["acme"], "acceptAuditLevel": True})
    assert admit(checks, pod("registry.example/stranger:v1")).allowed


def test_a_migrated_ratify_template_behaves_as_before(tmp_path: Path, engine: Engine) -> None:
    checks = policies(tmp_path, engine, "K8sRatifyVerification", {})
    assert admit(checks, pod("registry.example/stranger:v1")).allowed
