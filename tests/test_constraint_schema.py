"""Constraints are validated against their template's schema as the API server does, in `admit`, `policy test`,
`audit` and `policy build`.

Upstream rules followed (each row names its own):
- open-policy-agent/frameworks constraint/pkg/client/crds/schema.go CreateSchema: the template's openAPIV3Schema is
  the constraint CRD's `spec.parameters`; `spec` has match, enforcementAction, scopedEnforcementActions, parameters.
- frameworks constraint/pkg/apis/templates/v1/conversion.go and schema/transform.go AddPreserveUnknownFields:
  with legacySchema every object keeps unknown fields; v1beta1/v1alpha1 default legacySchema to true, v1 to false.
- kubernetes apiextensions-apiserver: a value of the wrong type is refused; kubectl's strict field validation
  (default since 1.25) refuses a field the structural schema does not declare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from provider import catalog, cli
from provider.policy.gatekeeper import PolicyError, PolicySet, check_constraints
from tests.helpers import write_yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "constraints" / "templates"


def constraint(kind: str, spec: dict[str, Any], name: str = "c") -> dict[str, Any]:
    return {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind, "metadata": {"name": name},
            "spec": spec}


def pod() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "registry.example/tools/debug:v1"}]}}


def user_template(api_version: str, validation: dict[str, Any] | None) -> dict[str, Any]:
    crd: dict[str, Any] = {"names": {"kind": "K8sTeamLabel"}}
    if validation is not None:
        crd["validation"] = validation
    return {"apiVersion": api_version, "kind": "ConstraintTemplate", "metadata": {"name": "k8steamlabel"},
            "spec": {"crd": {"spec": crd}, "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": (
                "package k8steamlabel\n\nviolation[{\"msg\": msg}] {\n  not input.review.object.metadata.labels"
                "[input.parameters.label]\n  msg := sprintf(\"missing label %v\", [input.parameters.label])\n}\n")}]}}


LABEL_SCHEMA = {"openAPIV3Schema": {"type": "object", "properties": {"label": {"type": "string"},
                                                                     "maxAge": {"type": "integer", "minimum": 0}}}}


def run_admit(tmp_path: Path, documents: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    constraints = tmp_path / "constraints.yaml"
    constraints.write_text(yaml.safe_dump_all(documents))
    objects = write_yaml(tmp_path / "pod.yaml", pod())
    config = write_yaml(tmp_path / "config.yaml", {"stores": [{"type": "registry", "match": ["*"]}]})
    code = cli.main(["admit", "--config", str(config), "--constraints", str(constraints), "-f", str(objects)])
    return code, capsys.readouterr().err


EXEMPT = ["registry.example/tools/*"]

# (rule followed, shipped-template constraint spec, the error `admit` must give). Shipped templates are v1.
REFUSED = [
    # apiextensions-apiserver: a wrong type is refused whatever the template version.
    ("wrong type boolean", "K8sSignedImages", {"parameters": {"requireAll": "yes", "exemptImages": EXEMPT}},
     "spec.parameters.requireAll: must be a boolean, got a string 'yes'"),
    ("wrong type list", "K8sSignedImages", {"parameters": {"authorities": "release", "exemptImages": EXEMPT}},
     "spec.parameters.authorities: must be a list, got a string 'release'"),
    ("wrong item type", "K8sSignedImages", {"parameters": {"exemptImages": [*EXEMPT, 5]}},
     "spec.parameters.exemptImages[1]: must be a string, got an integer 5"),
    # CreateSchema + strict field validation: a v1 template's schema prunes undeclared parameters; kubectl refuses.
    ("unknown parameter v1", "K8sSignedImages", {"parameters": {"authoritys": ["release"], "exemptImages": EXEMPT}},
     "spec.parameters.authoritys: unknown field: the template K8sSignedImages (templates.gatekeeper.sh/v1) does "
     "not declare it, and kubectl's strict field validation refuses it; did you mean authorities?"),
    # CreateSchema: spec has exactly match, enforcementAction, scopedEnforcementActions and parameters.
    ("unknown spec field", "K8sSignedImages", {"paramters": {"requireAll": True}},
     "spec.paramters: unknown field: kubectl's strict field validation refuses it"),
]


@pytest.mark.parametrize(("rule", "kind", "spec", "error"), REFUSED, ids=[r[0] for r in REFUSED])
def test_admit_refuses_what_the_api_server_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str], rule: str,
                                                   kind: str, spec: dict[str, Any], error: str) -> None:
    code, err = run_admit(tmp_path, [constraint(kind, spec)], capsys)
    assert code == 2
    assert f"{kind} c: {error}" in err
    assert len(err.strip().splitlines()) == 1


def test_the_issue_example_names_both_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_admit(tmp_path, [constraint("K8sSignedImages", {
        "parameters": {"authoritys": ["release"], "requireAll": "yes"}})], capsys)
    assert code == 2
    assert "spec.parameters.requireAll: must be a boolean, got a string 'yes' (and 1 more)" in err


@pytest.mark.parametrize(("api_version", "validation", "kept"), [
    # frameworks v1beta1/v1alpha1 types: legacySchema defaults to true → AddPreserveUnknownFields.
    ("templates.gatekeeper.sh/v1beta1", LABEL_SCHEMA, True),
    ("templates.gatekeeper.sh/v1alpha1", LABEL_SCHEMA, True),
    # legacySchema given explicitly wins over the version's default.
    ("templates.gatekeeper.sh/v1", {**LABEL_SCHEMA, "legacySchema": True}, True),
    ("templates.gatekeeper.sh/v1beta1", {**LABEL_SCHEMA, "legacySchema": False}, False),
    ("templates.gatekeeper.sh/v1", LABEL_SCHEMA, False),
])
def test_unknown_parameters_of_user_templates(tmp_path: Path, capsys: pytest.CaptureFixture[str], api_version: str,
                                              validation: dict[str, Any], kept: bool) -> None:
    documents = [user_template(api_version, validation),
                 constraint("K8sTeamLabel", {"parameters": {"label": "team", "lable": "owner"}})]
    code, err = run_admit(tmp_path, documents, capsys)
    if kept:
        assert code == 1  # the pod lacks the label: the constraint was used
        assert (f"warning: {tmp_path / 'constraints.yaml'}: K8sTeamLabel c: spec.parameters.lable: unknown field, "
                f"kept: the template K8sTeamLabel is {api_version} with legacySchema (the default before "
                "templates.gatekeeper.sh/v1), so the API server keeps parameters it does not declare, and the "
                "policy will not read this one; did you mean label?") in err
    else:
        assert code == 2
        assert "K8sTeamLabel c: spec.parameters.lable: unknown field: the template K8sTeamLabel" in err


@pytest.mark.parametrize("api_version", ["templates.gatekeeper.sh/v1beta1", "templates.gatekeeper.sh/v1"])
def test_a_wrong_type_is_refused_for_legacy_templates_too(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          api_version: str) -> None:
    documents = [user_template(api_version, LABEL_SCHEMA),
                 constraint("K8sTeamLabel", {"parameters": {"label": "team", "maxAge": -1}})]
    code, err = run_admit(tmp_path, documents, capsys)
    assert code == 2 and "spec.parameters.maxAge: must be at least 0, got -1" in err
    documents[1]["spec"]["parameters"]["maxAge"] = "1d"
    code, err = run_admit(tmp_path, documents, capsys)
    assert code == 2 and "spec.parameters.maxAge: must be an integer, got a string '1d'" in err


def test_templates_without_a_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # v1 conversion.go: no schema and no legacySchema → the CRD has no parameters field at all.
    documents = [user_template("templates.gatekeeper.sh/v1", None),
                 constraint("K8sTeamLabel", {"parameters": {"label": "team"}})]
    code, err = run_admit(tmp_path, documents, capsys)
    assert code == 2 and "spec.parameters: unknown field: the template K8sTeamLabel" in err
    # v1beta1 without a schema: legacySchema keeps every parameter, and the policy may read any of them.
    documents[0] = user_template("templates.gatekeeper.sh/v1beta1", None)
    code, err = run_admit(tmp_path, documents, capsys)
    assert code == 1 and "warning" not in err


def test_policy_test_refuses_a_suite_constraint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_yaml(tmp_path / "template.yaml", user_template("templates.gatekeeper.sh/v1", LABEL_SCHEMA))
    write_yaml(tmp_path / "constraint.yaml", constraint("K8sTeamLabel", {"parameters": {"labels": ["team"]}}))
    write_yaml(tmp_path / "pod.yaml", pod())
    suite = write_yaml(tmp_path / "suite.yaml", {"kind": "Suite", "tests": [
        {"name": "t", "template": "template.yaml", "constraint": "constraint.yaml",
         "cases": [{"name": "c", "object": "pod.yaml", "assertions": [{"violations": "yes"}]}]}]})
    config = write_yaml(tmp_path / "config.yaml", {"stores": [{"type": "registry", "match": ["*"]}]})
    assert cli.main(["policy", "test", "--config", str(config), str(suite)]) == 2
    assert "K8sTeamLabel c: spec.parameters.labels: unknown field" in capsys.readouterr().err


def test_policy_test_warns_of_kept_parameters_as_admit_does(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # frameworks transform.go AddPreserveUnknownFields: a v1beta1 template keeps the unknown parameter, so the
    # suite runs (exit 0) and the warning `admit` gives is printed too, naming the suite, the test and the field.
    write_yaml(tmp_path / "template.yaml", user_template("templates.gatekeeper.sh/v1beta1", LABEL_SCHEMA))
    write_yaml(tmp_path / "constraint.yaml", constraint("K8sTeamLabel", {"parameters": {"label": "team",
                                                                                         "lable": "owner"}}))
    write_yaml(tmp_path / "pod.yaml", pod())
    suite = write_yaml(tmp_path / "suite.yaml", {"kind": "Suite", "tests": [
        {"name": "t", "template": "template.yaml", "constraint": "constraint.yaml",
         "cases": [{"name": "c", "object": "pod.yaml", "assertions": [{"violations": "yes"}]}]}]})
    config = write_yaml(tmp_path / "config.yaml", {"stores": [{"type": "registry", "match": ["*"]}]})
    assert cli.main(["policy", "test", "--config", str(config), str(suite)]) == 0
    out, err = capsys.readouterr()
    assert "1 passed, 0 failed" in out
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        f"warning: {suite}: test t: constraint.yaml: K8sTeamLabel c: spec.parameters.lable: unknown field, kept: "
        "the template K8sTeamLabel is templates.gatekeeper.sh/v1beta1 with legacySchema (the default before "
        "templates.gatekeeper.sh/v1), so the API server keeps parameters it does not declare, and the policy will "
        "not read this one; did you mean label?"]


def test_policy_build_checks_the_samples(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.main(["policy", "build", "--check", str(ROOT / "constraints")]) == 0
    samples = write_yaml(tmp_path / "samples" / "bad.yaml", constraint("K8sSignedImages", {
        "parameters": {"requireAll": "yes"}}))
    monkeypatch.setattr(catalog, "sample_constraints", lambda: [samples.parent])
    assert cli.main(["policy", "build", "--check", str(ROOT / "constraints")]) == 2
    assert "K8sSignedImages c: spec.parameters.requireAll: must be a boolean" in capsys.readouterr().err


def test_the_evaluator_itself_takes_any_constraint(tmp_path: Path) -> None:
    """PolicySet only evaluates (so the templates' own fail-closed Rego stays testable); the loading commands check."""
    path = write_yaml(tmp_path / "c.yaml", constraint("K8sImageContent", {"parameters": {"allowOnError": "no"}}))
    policies = PolicySet.from_paths([TEMPLATES, path], lambda request: {})
    with pytest.raises(PolicyError, match=r"K8sImageContent c: spec.parameters.allowOnError: must be a boolean"):
        check_constraints(policies.templates.values(), policies.constraints)
