"""Every Gatekeeper object the project ships validates against the real CRD schemas."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from provider.policy.templates import build_all
from tests.crds import constraint_schema, validate_object

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "constraints").rglob("*.yaml"))
TEMPLATES = {d["spec"]["crd"]["spec"]["names"]["kind"]: d
             for p in (ROOT / "constraints/templates").glob("*.yaml") for d in yaml.safe_load_all(p.read_text())}
CONSTRAINTS = sorted([*(ROOT / "constraints/samples").glob("*.yaml"),
                      *(ROOT / "policies").glob("*/samples/constraint*.yaml")])


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", [p for p in SHIPPED if p not in CONSTRAINTS], ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_objects_fit_the_crds(path: Path) -> None:
    for obj in documents(path):
        validate_object(obj)


@pytest.mark.parametrize("path", CONSTRAINTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_constraints_fit_their_templates(path: Path) -> None:
    for obj in documents(path):
        jsonschema.validate(obj, constraint_schema(TEMPLATES[obj["kind"]]))


def test_constraint_schema_rejects_unknown_parameters_and_match_typos() -> None:
    (constraint,) = documents(ROOT / "constraints/samples/kritis-style.yaml")
    schema = constraint_schema(TEMPLATES["K8sSignedImages"])
    constraint["spec"]["parameters"]["requireAl"] = True
    with pytest.raises(jsonschema.ValidationError, match="requireAl"):
        jsonschema.validate(constraint, schema)
    del constraint["spec"]["parameters"]["requireAl"]
    constraint["spec"]["match"]["namespace"] = ["default"]
    with pytest.raises(jsonschema.ValidationError, match="namespace"):
        jsonschema.validate(constraint, schema)


def test_generated_templates_equal_the_committed_ones(tmp_path: Path) -> None:
    for generated in build_all(ROOT / "policies", tmp_path):
        committed = ROOT / "constraints/templates" / generated.name
        assert committed.read_text() == generated.read_text(), f"run scripts/build_templates.py ({generated.name})"
    assert {p.name for p in tmp_path.iterdir()} == {p.name for p in (ROOT / "constraints/templates").glob("*.yaml")}


def test_the_validator_rejects_a_typo() -> None:
    (provider,) = [d for d in documents(ROOT / "constraints/provider.yaml") if d["metadata"]["name"] == "sigwarden"]
    provider["spec"]["timeOut"] = 3
    with pytest.raises(jsonschema.ValidationError, match="timeOut"):
        validate_object(provider)


def test_mutation_pins_all_three_container_lists_through_the_mutation_provider() -> None:
    assigns = documents(ROOT / "constraints/mutation/pin-image-digests.yaml")
    assert {a["spec"]["location"] for a in assigns} == {
        "spec.containers[name:*].image", "spec.initContainers[name:*].image",
        "spec.ephemeralContainers[name:*].image"}
    for assign in assigns:
        external = assign["spec"]["parameters"]["assign"]["externalData"]
        assert external == {"provider": "sigwarden-mutation", "dataSource": "ValueAtLocation",
                            "failurePolicy": "Fail"}
    providers = {d["metadata"]["name"]: d["spec"] for d in documents(ROOT / "constraints/provider.yaml")}
    assert providers["sigwarden"]["url"].endswith("/verify")
    assert providers["sigwarden-mutation"]["url"].endswith("/mutate")
