"""Notation's `skip` level: recorded in the facts, never verified, admitted by K8sSignedImages only on opt-in.

notation-go (notation.go Verify, with verifier/trustpolicy LevelSkip) reports success without checking any
signature when the applying statement's level is skip; Ratify v1 then had no verifier report and did not admit
the image. sigwarden lists the statement in `skipped` and keeps the image unverified; `acceptSkipLevel: true`
on a K8sSignedImages constraint lets the authority vouch for it; `import ratify` never sets that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from provider.cli import main
from provider.devkit import notation
from provider.devkit.layout import LayoutWriter
from provider.importers.ratify import convert
from provider.policy.external import EngineExternalData
from provider.policy.gatekeeper import PolicySet
from provider.policy.suite import admit
from tests.helpers import facts_for, write_yaml

TEMPLATES = Path(__file__).resolve().parents[1] / "constraints" / "templates"
SIGNER = notation.identity_with_intermediate("ec-256")
POLICY = {"version": "1.0", "trustPolicies": [
    # oci.go GetApplicableTrustPolicy: the exact scope applies to dev/app, `*` to everything else
    {"name": "dev-unchecked", "registryScopes": ["registry.example/dev/app"],
     "signatureVerification": {"level": "skip"}},
    {"name": "everything-else", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
     "trustStores": ["ca:acme"], "trustedIdentities": ["*"]}]}


def config(tmp_path: Path) -> dict[str, Any]:
    for repository in ("dev/app", "prod/app"):
        writer = LayoutWriter(tmp_path / "layouts/registry.example", repository)
        image = writer.add_image("v1", repository.encode())
        if repository == "dev/app":
            notation.attach(writer, image, notation.sign(notation.target_of(image), SIGNER))
    (tmp_path / "root.pem").write_bytes(SIGNER.root_pem)
    return {"stores": [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["*"]}],
            "authorities": [{"name": "acme", "notation": {"trustStores": {"ca:acme": [str(tmp_path / "root.pem")]},
                                                          "trustPolicy": {"inline": POLICY}}}]}


def test_facts_record_the_skip_and_stay_unverified(tmp_path: Path) -> None:
    facts = facts_for(tmp_path, config(tmp_path), "registry.example/dev/app:v1")  # validated against the schema
    assert facts["skipped"] == [{"authority": "acme", "statement": "dev-unchecked"}]
    assert facts["verified"] is False and facts["isSuccess"] is False and facts["authorities"] == []
    assert 'acme: trust policy statement "dev-unchecked" skips verification (level skip)' in facts["reason"]
    other = facts_for(tmp_path / "other", config(tmp_path / "other"), "registry.example/prod/app:v1")
    assert "skipped" not in other


def test_verify_text_says_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(tmp_path / "config.yaml", config(tmp_path))
    assert main(["verify", "--config", str(path), "-o", "text", "registry.example/dev/app:v1"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("skipped       registry.example/dev/app:v1 sha256:")
    assert 'level skip in the trust policy of acme (statement "dev-unchecked"); not verified' in out


@pytest.mark.parametrize(("parameters", "allowed"), [
    ({}, False), ({"authorities": ["acme"]}, False), ({"acceptSkipLevel": False}, False),
    ({"acceptSkipLevel": True}, True), ({"authorities": ["acme"], "acceptSkipLevel": True}, True),
    ({"authorities": ["other"], "acceptSkipLevel": True}, False),
])
def test_signed_images_admits_a_skipped_repository_only_on_opt_in(tmp_path: Path, parameters: dict[str, Any],
                                                                  allowed: bool) -> None:
    from provider.config import build_config
    from provider.engine import Engine

    data = config(tmp_path)
    engine = Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))
    constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSignedImages",
                  "metadata": {"name": "c"}, "spec": {"parameters": parameters}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "main", "image": "registry.example/dev/app:v1"}]}}
    try:
        checks = PolicySet.from_paths([TEMPLATES, write_yaml(tmp_path / "c.yaml", constraint)],
                                      EngineExternalData(engine))
        answer = admit(checks, pod)
        prod = {"containers": [{"name": "m", "image": "registry.example/prod/app:v1"}]}
        unsigned = admit(checks, {**pod, "spec": prod})
    finally:
        engine.shutdown()
    assert answer.allowed is allowed, answer.kubectl()
    assert not unsigned.allowed  # the opt-in never reaches a repository the skip statement does not apply to


def test_import_ratify_reports_skip_statements_and_never_sets_accept_skip_level(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    group = "config.ratify.deislabs.io/v1beta1"
    documents = [
        {"apiVersion": group, "kind": "KeyManagementProvider", "metadata": {"name": "ca"},
         "spec": {"type": "inline", "parameters": {"contentType": "certificate", "value": SIGNER.root_pem.decode()}}},
        {"apiVersion": group, "kind": "Verifier", "metadata": {"name": "notation"},
         "spec": {"name": "notation", "artifactTypes": "application/vnd.cncf.notary.signature",
                  "parameters": {"verificationCertStores": {"ca": {"acme": ["ca"]}}, "trustPolicyDoc": POLICY}}}]
    source = tmp_path / "ratify.yaml"
    source.write_text(yaml.safe_dump_all(documents))
    assert main(["import", "ratify", "--check", str(source)]) == 1
    report = capsys.readouterr().out
    assert ("!! Verifier notation: trustPolicyDoc dev-unchecked: signatureVerification.level skip\n     -> kept, and "
            "the images of ['registry.example/dev/app'] stay unverified") in report
    conversion = convert(documents)
    assert all("acceptSkipLevel" not in c["spec"]["parameters"] for c in conversion.kubernetes)
