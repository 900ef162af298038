"""Every Gatekeeper object the project ships validates against the real CRD schemas."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from provider import catalog
from provider.policy.build import Output, bundle, drift, repository_outputs
from tests.crds import constraint_schema, validate_object

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted([*(ROOT / "constraints").rglob("*.yaml"), *catalog.template_files()])
TEMPLATES = {d["spec"]["crd"]["spec"]["names"]["kind"]: d
             for p in catalog.template_files() for d in yaml.safe_load_all(p.read_text())}
CONSTRAINTS = sorted([*(ROOT / "constraints/samples").glob("*.yaml"), *catalog.sample_constraints(),
                      *catalog.POLICIES.glob("*/samples/constraint*.yaml")])


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
    (constraint,) = documents(catalog.SAMPLES / "kritis-style.yaml")
    schema = constraint_schema(TEMPLATES["K8sSignedImages"])
    constraint["spec"]["parameters"]["requireAl"] = True
    with pytest.raises(jsonschema.ValidationError, match="requireAl"):
        jsonschema.validate(constraint, schema)
    del constraint["spec"]["parameters"]["requireAl"]
    constraint["spec"]["match"]["namespace"] = ["default"]
    with pytest.raises(jsonschema.ValidationError, match="namespace"):
        jsonschema.validate(constraint, schema)


def test_every_generated_copy_is_up_to_date() -> None:
    """Package data, constraints/ and the Helm chart hold exactly what the one generator makes."""
    assert drift(repository_outputs(ROOT)) == [], "run `make templates`"


def test_templates_carry_the_library_they_import() -> None:
    for kind, template in TEMPLATES.items():
        (target,) = template["spec"]["targets"]
        if "import data.lib.sigwarden" in target["rego"]:
            assert target["libs"] == [path.read_text() for path in sorted(catalog.LIB.glob("*.rego"))], kind


def test_build_check_reports_every_kind_of_drift(tmp_path: Path) -> None:
    output = bundle(tmp_path / "out")
    assert {p.relative_to(tmp_path / "out").as_posix() for p in output.write()} >= {
        "templates/k8ssignedimages.yaml", "samples/kritis-style.yaml", "provider.yaml",
        "mutation/pin-image-digests.yaml"}
    assert output.drift() == []
    (tmp_path / "out/templates/k8ssignedimages.yaml").write_text("edited")
    (tmp_path / "out/samples/kritis-style.yaml").unlink()
    (tmp_path / "out/templates/old.yaml").write_text("stale")
    (tmp_path / "out/kustomization.yaml").write_text("not ours")
    problems = output.drift()
    assert len(problems) == 3
    assert any("k8ssignedimages.yaml: differs" in p for p in problems)
    assert any("kritis-style.yaml: missing" in p for p in problems)
    assert any("old.yaml: not generated" in p for p in problems)
    output.write()
    assert output.drift() == [] and (tmp_path / "out/kustomization.yaml").read_text() == "not ours"


def test_an_output_only_owns_its_patterns(tmp_path: Path) -> None:
    (tmp_path / "notes.yaml").write_text("x")
    output = Output(tmp_path, {"a/b.yaml": b"y"}, ("a/*.yaml",))
    assert output.drift() == [f"{tmp_path / 'a/b.yaml'}: missing"]


def test_the_validator_rejects_a_typo() -> None:
    (provider,) = [d for d in documents(ROOT / "constraints/provider.yaml") if d["metadata"]["name"] == "sigwarden"]
    provider["spec"]["timeOut"] = 3
    with pytest.raises(jsonschema.ValidationError, match="timeOut"):
        validate_object(provider)


def test_mutation_pins_every_image_through_the_mutation_provider() -> None:
    assigns = documents(ROOT / "constraints/mutation/pin-image-digests.yaml")
    pod = {"containers": "image", "initContainers": "image", "ephemeralContainers": "image",
           "volumes": "image.reference"}
    template = {field: leaf for field, leaf in pod.items() if field != "ephemeralContainers"}
    assert {a["spec"]["location"] for a in assigns} == {
        *(f"spec.{f}[name:*].{leaf}" for f, leaf in pod.items()),
        *(f"spec.template.spec.{f}[name:*].{leaf}" for f, leaf in template.items()),
        *(f"spec.jobTemplate.spec.template.spec.{f}[name:*].{leaf}" for f, leaf in template.items())}
    for assign in assigns:
        # Only a named image is pinned: another kind of volume, or a template container without an image,
        # never gets one.
        assert assign["spec"]["parameters"]["pathTests"] == [{"subPath": assign["spec"]["location"],
                                                              "condition": "MustExist"}]
    for assign in assigns:
        external = assign["spec"]["parameters"]["assign"]["externalData"]
        assert external == {"provider": "sigwarden-mutation", "dataSource": "ValueAtLocation",
                            "failurePolicy": "Fail"}
    providers = {d["metadata"]["name"]: d["spec"] for d in documents(ROOT / "constraints/provider.yaml")}
    assert providers["sigwarden"]["url"].endswith("/verify")
    assert providers["sigwarden-mutation"]["url"].endswith("/mutate")


def checkout_copy(tmp_path: Path) -> Path:
    """The parts of a checkout the generator reads and writes, copied: the package, policies/, constraints/
    and the chart's generated files."""
    copy = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("__pycache__")
    for part in ("provider", "policies", "constraints", "scripts", "helm/sigwarden/files"):
        shutil.copytree(ROOT / part, copy / part, ignore=ignore)
    return copy


def in_checkout(copy: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")} | {"PYTHONPATH": str(copy)}
    return subprocess.run([sys.executable, *command], capture_output=True, text=True, cwd=copy, env=env, timeout=120)


def test_a_policy_edited_without_rebuilding_is_caught(tmp_path: Path) -> None:
    """A checkout reads its own top-level policies/: a fresh copy is up to date, and a src.rego edited without
    `make templates` makes `policy build --check constraints` (and the generator's --check) exit 1."""
    copy = checkout_copy(tmp_path)
    fresh = in_checkout(copy, "-m", "provider", "policy", "build", "--check", "constraints")
    assert fresh.returncode == 0 and "constraints: up to date" in fresh.stdout, fresh.stdout + fresh.stderr
    source = copy / "policies/k8ssignedimages/src.rego"
    source.write_text(source.read_text() + "\n# an edit nobody rebuilt\n")
    edited = in_checkout(copy, "-m", "provider", "policy", "build", "--check", "constraints")
    assert edited.returncode == 1, edited.stdout + edited.stderr
    assert edited.stdout.strip() == "constraints/templates/k8ssignedimages.yaml: differs from the generated file"
    every = in_checkout(copy, "scripts/build_templates.py", "--check")
    assert every.returncode == 1, every.stdout + every.stderr
    assert {line.removeprefix(f"{copy}/") for line in every.stdout.splitlines()} == {
        "policies/k8ssignedimages/template.yaml: differs from the generated file",
        "constraints/templates/k8ssignedimages.yaml: differs from the generated file",
        "helm/sigwarden/files/constrainttemplates/k8ssignedimages.yaml: differs from the generated file"}
    assert in_checkout(copy, "scripts/build_templates.py").returncode == 0
    rebuilt = in_checkout(copy, "-m", "provider", "policy", "build", "--check", "constraints")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "# an edit nobody rebuilt" in (copy / "constraints/templates/k8ssignedimages.yaml").read_text()
