"""Policies with real external data: suites against the live provider, and the seeds' admission transcripts."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provider import catalog
from provider.config import load_config
from provider.devkit.fixtures import ALPINE, SIGNED, World, build_world
from provider.devkit.kube import deployment
from provider.devkit.process import ProviderProcess
from provider.engine import Engine
from provider.policy.external import EngineExternalData, HTTPExternalData
from provider.policy.gatekeeper import PolicySet
from provider.policy.suite import admit
from tests.helpers import ProviderPKI, write_yaml

ROOT = Path(__file__).resolve().parents[2]
SUITES = [str(p) for p in catalog.suite_files()]
TEMPLATES = ROOT / "constraints" / "templates"
SAMPLES = catalog.SAMPLES


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(tmp_path / "world")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provider", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def test_every_suite_passes_against_the_live_provider_over_mtls(
        world: World, start_provider: Callable[..., ProviderProcess], pki: ProviderPKI) -> None:
    import yaml

    provider = start_provider(yaml.safe_load(world.config.read_text()))  # served by a real gunicorn with mTLS
    result = run_cli("policy", "test", "--provider", provider.url, "--cert", pki.path("client.crt"),
                     "--key", pki.path("client.key"), "--ca", pki.path("ca.crt"), *SUITES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^(\d+) passed, 0 failed$", result.stdout, re.MULTILINE)
    assert int(re.search(r"^(\d+) passed", result.stdout, re.MULTILINE).group(1)) >= 25


def test_suites_fail_when_an_assertion_does_not_hold(world: World, tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    samples = catalog.POLICIES / "k8ssignedimages/samples"
    write_yaml(suite, {"kind": "Suite", "apiVersion": "test.gatekeeper.sh/v1alpha1", "tests": [{
        "name": "wrong-expectation", "template": str(TEMPLATES / "k8ssignedimages.yaml"),
        "constraint": str(samples / "constraint.yaml"),
        "cases": [{"name": "unsigned-claimed-clean", "object": str(samples / "pod-unsigned.yaml"),
                   "assertions": [{"violations": "no"}]}]}]})
    result = run_cli("policy", "test", "--config", str(world.config), str(suite))
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "expected no violations, got 1" in result.stdout
    assert "violation: image registry.sigwarden.test/team/unsigned:v1 is not attested" in result.stdout
    assert result.stdout.strip().endswith("0 passed, 1 failed")


def policies_for(world: World, *constraints: Path, namespaces: list[Path] = ()) -> tuple[PolicySet, Engine]:
    engine = Engine(load_config(world.config))
    return PolicySet.from_paths([TEMPLATES, *constraints], EngineExternalData(engine), namespaces), engine


def test_kritis_seed_transcript(world: World, tmp_path: Path) -> None:
    """kubectl create deployment test-denied --image=alpine:3.11, then the attested digest."""
    denied_file = write_yaml(tmp_path / "test-denied.yaml", deployment("test-denied", ALPINE))
    denied = run_cli("admit", "--config", str(world.config), "--constraints", str(SAMPLES / "kritis-style.yaml"),
                     "-f", str(denied_file))
    assert denied.returncode == 1
    assert denied.stdout.startswith(
        'Error from server: admission webhook "validation.gatekeeper.sh" denied the request: '
        "[kritis-attested-images] image alpine:3.11 is not attested")
    pinned = SIGNED.replace(":v1", "@" + world.digests[SIGNED])
    allowed_file = write_yaml(tmp_path / "test-allow.yaml", deployment("test-allow", pinned))
    allowed = run_cli("admit", "--config", str(world.config), "--constraints", str(SAMPLES / "kritis-style.yaml"),
                      "-f", str(allowed_file))
    assert allowed.returncode == 0, allowed.stdout
    assert allowed.stdout.strip() == "deployment.apps/test-allow created"


def test_warn_dryrun_and_scoped_admit_but_report(world: World) -> None:
    policies, engine = policies_for(world, SAMPLES / "warn.yaml", SAMPLES / "audit.yaml", SAMPLES / "scoped.yaml")
    answer = admit(policies, deployment("unsigned", ALPINE))
    engine.shutdown()
    assert answer.allowed
    assert [v.constraint.name for v in answer.warnings] == ["signed-images-warn", "signed-images-scoped"]
    assert [v.constraint.name for v in answer.dryrun] == ["signed-images-audit"]
    lines = answer.kubectl().splitlines()
    assert lines[0].startswith("Warning: [signed-images-warn] image alpine:3.11 is not attested: no signatures")
    assert lines[1].startswith("Warning: [signed-images-scoped] image alpine:3.11 is not attested")
    assert lines[2] == "deployment.apps/unsigned created"


def test_namespace_label_selects_deployments(world: World, tmp_path: Path) -> None:
    namespaces = write_yaml(tmp_path / "namespaces.yaml", {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments", "labels": {"signed": "required"}}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sandbox"}}]})
    policies, engine = policies_for(world, SAMPLES / "label-required.yaml", namespaces=[namespaces])
    strict = admit(policies, deployment("api", ALPINE, "payments"))
    relaxed = admit(policies, deployment("api", ALPINE, "sandbox"))
    signed = admit(policies, deployment("api", SIGNED, "payments"), operation="UPDATE")
    engine.shutdown()
    assert not strict.allowed and "[signed-required-namespaces] image alpine:3.11 is not attested" in strict.kubectl()
    assert relaxed.allowed and relaxed.kubectl() == "deployment.apps/api created"
    assert signed.allowed and signed.kubectl("UPDATE") == "deployment.apps/api configured"


def test_provider_system_error_fails_closed_unless_allowed(tmp_path: Path) -> None:
    unreachable = HTTPExternalData("https://127.0.0.1:9", timeout=2)
    policies = PolicySet.from_paths([TEMPLATES, SAMPLES / "kritis-style.yaml"], unreachable)
    answer = admit(policies, deployment("x", ALPINE))
    assert not answer.allowed
    assert "is not attested: provider error: failed to send external data request" in answer.kubectl()
    lenient = write_yaml(tmp_path / "lenient.yaml", {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSignedImages", "metadata": {"name": "lenient"},
        "spec": {"parameters": {"allowOnError": True}}})
    assert admit(PolicySet.from_paths([TEMPLATES, lenient], unreachable), deployment("x", ALPINE)).allowed


def test_the_custom_template_in_the_docs_works(world: World, tmp_path: Path) -> None:
    doc = (ROOT / "docs/writing-policies.md").read_text()
    rego = re.search(r"```rego\n(.*?)```", doc, re.DOTALL).group(1)
    libs = [lib.read_text() for lib in sorted(catalog.LIB.glob("*.rego"))]
    template = {"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
                "metadata": {"name": "k8sprodnotation"},
                "spec": {"crd": {"spec": {"names": {"kind": "K8sProdNotation"}}},
                         "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": rego, "libs": libs}]}}
    constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sProdNotation",
                  "metadata": {"name": "prod-notation"}, "spec": {}}
    write_yaml(tmp_path / "template.yaml", template)
    write_yaml(tmp_path / "constraint.yaml", constraint)
    engine = Engine(load_config(world.config))
    policies = PolicySet.from_paths([tmp_path / "template.yaml", tmp_path / "constraint.yaml"],
                                    EngineExternalData(engine))
    elsewhere_signed = admit(policies, deployment("a", SIGNED, "team"))
    elsewhere_unsigned = admit(policies, deployment("a", ALPINE, "team"))
    prod_cosign = admit(policies, deployment("a", SIGNED, "prod"))
    engine.shutdown()
    assert elsewhere_signed.allowed
    assert "image alpine:3.11 needs a cosign signature (no signatures found" in elsewhere_unsigned.kubectl()
    assert f"image {SIGNED} needs a notation signature from the release CA" in prod_cosign.kubectl()


def test_kritis_migration_seed_flow(world: World, tmp_path: Path) -> None:
    """A kritis GenericAttestationPolicy converted by `sigwarden import kritis`, enforced in deny mode."""
    from tests.helpers import VECTORS

    converted = run_cli("import", "kritis", "--enforcement-action", "deny",
                        str(VECTORS / "kritis/generic-attestation-policy-example.yaml"))
    assert converted.returncode == 0, converted.stderr
    import yaml

    (_, constraint) = list(yaml.safe_load_all(converted.stdout))
    assert constraint["spec"]["parameters"]["authorities"] == ["kritis-authority"]
    constraint_file = write_yaml(tmp_path / "gap.yaml", constraint)
    denied = run_cli("admit", "--config", str(world.config), "--constraints", str(constraint_file), "-f",
                     str(write_yaml(tmp_path / "test-denied.yaml", deployment("test-denied", ALPINE))))
    assert denied.returncode == 1
    assert ('denied the request: [my-gap] image alpine:3.11 is not attested: missing attestation by '
            "kritis-authority") in denied.stdout
    pinned = SIGNED.replace(":v1", "@" + world.digests[SIGNED])
    allowed = run_cli("admit", "--config", str(world.config), "--constraints", str(constraint_file), "-f",
                      str(write_yaml(tmp_path / "test-allow.yaml", deployment("test-allow", pinned))))
    assert allowed.returncode == 0, allowed.stdout
    assert allowed.stdout.strip() == "deployment.apps/test-allow created"


def test_kritis_image_security_policy_decides_on_signed_reports(world: World, tmp_path: Path) -> None:
    """A kritis ImageSecurityPolicy converted to K8sImageContent, enforced against signed scan reports."""
    import yaml

    from provider.devkit.fixtures import CONTENT_CLEAN, CONTENT_CRITICAL, CONTENT_UNSIGNED

    isp = {"apiVersion": "kritis.grafeas.io/v1beta1", "kind": "ImageSecurityPolicy",
           "metadata": {"name": "scan-gate", "namespace": "default"},
           "spec": {"packageVulnerabilityRequirements": {
               "maximumSeverity": "HIGH", "maximumFixUnavailableSeverity": "ALLOW_ALL",
               "allowlistCVEs": ["providers/goog-vulnz/notes/CVE-2024-0001"]}}}
    converted = run_cli("import", "kritis", "--enforcement-action", "deny",
                        str(write_yaml(tmp_path / "isp.yaml", isp)))
    assert converted.returncode == 0, converted.stderr
    (constraint,) = [d for d in yaml.safe_load_all(converted.stdout) if d and d.get("kind") == "K8sImageContent"]
    constraint_file = write_yaml(tmp_path / "isp-constraint.yaml", constraint)

    def admit_image(name: str, image: str) -> subprocess.CompletedProcess[str]:
        return run_cli("admit", "--config", str(world.config), "--constraints", str(constraint_file), "-f",
                       str(write_yaml(tmp_path / f"{name}.yaml", deployment(name, image))))

    critical = admit_image("critical", CONTENT_CRITICAL)
    assert critical.returncode == 1
    assert (f"[scan-gate] image {CONTENT_CRITICAL} has CVE-2024-1111 (CRITICAL, fixable) over "
            "maximumFixableSeverity HIGH") in critical.stdout
    assert "CVE-2024-2222" not in critical.stdout  # HIGH without a fix: ALLOW_ALL
    unsigned = admit_image("unsigned-report", CONTENT_UNSIGNED)
    assert unsigned.returncode == 1 and "has no signed vulnerability report" in unsigned.stdout
    clean = admit_image("clean", CONTENT_CLEAN)
    assert clean.returncode == 0, clean.stdout


def test_image_content_with_unknown_parameter_values_fails_closed(world: World, tmp_path: Path) -> None:
    """Where nothing checked a constraint against the template's schema, a misspelt limit still denies."""
    from provider.devkit.fixtures import CONTENT_CLEAN

    constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sImageContent",
                  "metadata": {"name": "misconfigured"},
                  "spec": {"match": {"kinds": [{"apiGroups": ["apps"], "kinds": ["Deployment"]}]},
                           "parameters": {"maximumSeverity": "SEVERE", "maximumReportAge": "7 days"}}}
    constraint_file = write_yaml(tmp_path / "misconfigured.yaml", constraint)
    # `admit` refuses the constraint as the API server would (the schema's enum)...
    refused = run_cli("admit", "--config", str(world.config), "--constraints", str(constraint_file), "-f",
                      str(write_yaml(tmp_path / "clean.yaml", deployment("clean", CONTENT_CLEAN))))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert ("K8sImageContent misconfigured: spec.parameters.maximumSeverity: unsupported value 'SEVERE'"
            in refused.stderr)
    # ...and where nothing checked it, the template's Rego still denies.
    policies, engine = policies_for(world, constraint_file)
    try:
        denied = admit(policies, deployment("clean", CONTENT_CLEAN)).kubectl()
    finally:
        engine.shutdown()
    assert "cannot be checked: parameter maximumSeverity is SEVERE, not one of CRITICAL" in denied
    assert "cannot be checked: parameter maximumReportAge is 7 days, not a duration such as 168h" in denied


def test_a_key_the_provider_left_out_denies_even_with_allow_on_error(world: World, tmp_path: Path) -> None:
    """A provider must answer every key; when an answer leaves one out, every template denies it."""
    from provider.devkit.fixtures import RELEASE_ONLY

    engine = Engine(load_config(world.config))
    real = EngineExternalData(engine)

    def leaves_signed_out(request: dict[str, Any]) -> dict[str, Any]:
        answer = real(request)  # real facts from real signatures, less one item
        answer["responses"] = [entry for entry in answer["responses"] if entry[0] != SIGNED]
        return answer

    constraints = []
    for kind, parameters in (("K8sSignedImages", {"allowOnError": True}),
                             ("K8sImageContent", {"allowOnError": True}), ("K8sRatifyVerification", {})):
        constraints.append(write_yaml(tmp_path / f"{kind}.yaml", {
            "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind, "metadata": {"name": kind.lower()},
            "spec": {"parameters": parameters}}))
    two = deployment("two", SIGNED)
    two["spec"]["template"]["spec"]["containers"].append({"name": "api", "image": RELEASE_ONLY})
    answer = admit(PolicySet.from_paths([TEMPLATES, *constraints], leaves_signed_out), two)
    complete = admit(PolicySet.from_paths([TEMPLATES, constraints[0]], real), two)
    engine.shutdown()
    assert complete.allowed, complete.kubectl()
    messages = [v.message for v in answer.denied]
    assert f"image {SIGNED} is not attested: the provider's answer left it out" in messages
    assert f"image {SIGNED}: content could not be checked: the provider's answer left it out" in messages
    assert f"Error validating image {SIGNED}: the provider's answer left it out" in messages
    assert not [m for m in messages if RELEASE_ONLY in m and "content" not in m]
