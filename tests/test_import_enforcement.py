"""Imports are audit first: every constraint `sigwarden import` writes is `dryrun` unless
`--enforcement-action` says otherwise, and the report says which; Ratify's own constraints in the input
(RatifyVerification and the other kinds of Ratify's Gatekeeper library) are mapped, not skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from provider.cli import main
from provider.importers.ratify import convert
from tests.helpers import VECTORS

RATIFY_INPUTS = Path(__file__).resolve().parent / "migration/ratify"
KRITIS_POLICY = VECTORS / "kritis/generic-attestation-policy-example.yaml"


def imported(tmp_path: Path, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    """Exit code, the Kubernetes objects written, and the migration report."""
    code = main(["import", *args[:-1], "-o", str(tmp_path), args[-1]])
    objects = [d for d in yaml.safe_load_all((tmp_path / "kubernetes.yaml").read_text()) if d]
    return code, objects, (tmp_path / "migration-report.txt").read_text()


@pytest.mark.parametrize(("tool", "source"), [("ratify", RATIFY_INPUTS / "aks-image-integrity.yaml"),
                                              ("kritis", KRITIS_POLICY)])
def test_imports_default_to_dryrun_and_say_so(tool: str, source: Path, tmp_path: Path) -> None:
    code, objects, report = imported(tmp_path, tool, str(source))
    constraints = [o for o in objects if o["apiVersion"].startswith("constraints.gatekeeper.sh/")]
    assert code == 0 and constraints
    assert {c["spec"]["enforcementAction"] for c in constraints} == {"dryrun"}
    assert "ok (enforcement action)" in report
    assert "-> enforcementAction: dryrun on K8s" in report and "audit first: compare `sigwarden audit`" in report


@pytest.mark.parametrize("action", ["warn", "deny"])
@pytest.mark.parametrize(("tool", "source"), [("ratify", RATIFY_INPUTS / "aks-image-integrity.yaml"),
                                              ("kritis", KRITIS_POLICY)])
def test_enforcement_action_is_chosen_on_the_command_line(tool: str, source: Path, action: str,
                                                          tmp_path: Path) -> None:
    code, objects, report = imported(tmp_path, tool, "--enforcement-action", action, str(source))
    constraints = [o for o in objects if o["apiVersion"].startswith("constraints.gatekeeper.sh/")]
    assert code == 0 and {c["spec"]["enforcementAction"] for c in constraints} == {action}
    assert f"enforcementAction: {action} on" in report


def test_an_unknown_enforcement_action_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["import", "ratify", "--enforcement-action", "block", str(RATIFY_INPUTS / "aks-image-integrity.yaml")])
    assert exited.value.code == 2
    assert "invalid choice: 'block'" in capsys.readouterr().err


def ratify_input(*constraints: dict[str, Any]) -> list[dict[str, Any]]:
    documents = list(yaml.safe_load_all((RATIFY_INPUTS / "aks-image-integrity.yaml").read_text()))
    return [*documents, *constraints]


def test_a_ratify_verification_constraint_is_mapped_with_its_match() -> None:
    # ratify-project/ratify library/multi-tenancy-validation/samples/constraint.yaml
    ratify_constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "RatifyVerification",
                         "metadata": {"name": "ratify-constraint"},
                         "spec": {"enforcementAction": "deny", "match": {
                             "kinds": [{"apiGroups": [""], "kinds": ["Pod"]}],
                             "namespaces": ["default", "new-namespace"]}}}
    conversion = convert(ratify_input(ratify_constraint))
    (constraint,) = conversion.kubernetes
    assert constraint["kind"] == "K8sSignedImages" and constraint["metadata"]["name"] == "ratify-constraint"
    assert constraint["spec"]["match"]["namespaces"] == ["default", "new-namespace"]
    assert "excludedNamespaces" not in constraint["spec"]["match"]
    assert constraint["spec"]["enforcementAction"] == "dryrun"  # audit first, whatever the source enforced
    lines = [f"{f.source} -> {f.became}" for f in conversion.findings]
    assert not any("skipped" in line for line in lines)
    assert any(line.startswith("RatifyVerification ratify-constraint: spec.enforcementAction deny") for line in lines)


def test_several_ratify_constraints_each_become_one_and_report_kinds_are_reported() -> None:
    notation_validation = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "notationvalidation",
                           "metadata": {"name": "prod-images"},
                           "spec": {"match": {"namespaces": ["prod"], "excludedNamespaces": ["prod-debug"]}}}
    issuer = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "NotationIssuerValidation",
              "metadata": {"name": "localhost-signature-validation"},
              "spec": {"parameters": {"issuer": "localhost:5000"}}}
    conversion = convert(ratify_input(notation_validation, issuer))
    assert [(c["metadata"]["name"], c["spec"]["match"].get("namespaces")) for c in conversion.kubernetes] == [
        ("prod-images", ["prod"])]
    attention = [f"{f.source}: {f.became}" for f in conversion.findings if f.attention]
    assert any(line.startswith("NotationIssuerValidation localhost-signature-validation: not converted: it checked "
                               "the issuer") for line in attention)


def test_a_malformed_ratify_constraint_is_a_report_line() -> None:
    broken = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "RatifyVerification",
              "metadata": {"name": "broken"}, "spec": {"match": "everything"}}
    conversion = convert(ratify_input(broken))
    assert any(f.attention and f.source == "RatifyVerification broken" and "malformed" in f.became
               for f in conversion.findings)


def test_ratify_library_templates_are_replaced_not_reported_as_foreign() -> None:
    template = {"apiVersion": "templates.gatekeeper.sh/v1beta1", "kind": "ConstraintTemplate",
                "metadata": {"name": "ratifyverification"}, "spec": {}}
    conversion = convert(ratify_input(template))
    (finding,) = [f for f in conversion.findings if f.source == "ConstraintTemplate ratifyverification"]
    assert not finding.attention and "the shipped templates" in finding.became
