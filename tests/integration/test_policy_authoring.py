"""Writing one's own policy: `policy init` gives a folder whose suite passes at once against the built-in fixture
images, `policy test` runs a folder of suites on the Rego as edited, `policy build` inlines the lib helpers into
the user's templates, and `policy fixtures` lists images that really are what it says."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from provider.cli import main
from provider.config import load_config
from provider.devkit.fixtures import FIXTURES, UNSIGNED, World, build_world
from provider.engine import Engine
from provider.policy.external import EngineExternalData
from provider.policy.suite import run_suite
from tests.crds import validate_object


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="module")
def engine(world: World) -> Iterator[Engine]:
    engine = Engine(load_config(str(world.config)))
    yield engine
    engine.shutdown()


def test_the_fixture_list_says_what_verifies_each_image(engine: Engine, capfd: pytest.CaptureFixture[str]) -> None:
    items = engine.verify([f.reference for f in FIXTURES], "fixtures", deadline=time.monotonic() + 60)
    for fixture, item in zip(FIXTURES, items, strict=True):
        vouched = set(item.value.get("authorities", [])) if not item.error else set()
        assert vouched == set(fixture.signed_by), (fixture.reference, item.error or item.value.get("reason"))
    kinds = {a.name: a for a in engine.config.authorities}
    signers = {name for f in FIXTURES for name in f.signed_by}
    assert {"release", "keyless-ci", "notation-release", "gpg-release"} <= signers <= set(kinds)
    assert main(["policy", "fixtures"]) == 0
    out = capfd.readouterr().out
    assert all(f.reference in out for f in FIXTURES)


def test_init_gives_a_suite_that_passes_as_written(tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SIGWARDEN_CONFIG", raising=False)
    policy = tmp_path / "signed-by-ci"
    assert main(["policy", "init", str(policy)]) == 0
    assert {p.name for p in policy.iterdir()} == {"meta.yaml", "src.rego", "template.yaml", "samples", "suite.yaml"}
    template = yaml.safe_load((policy / "template.yaml").read_text())
    validate_object(template)  # Gatekeeper's ConstraintTemplate CRD
    assert template["metadata"]["name"] == "signedbyci" and template["spec"]["crd"]["spec"]["names"]["kind"] == \
        "SignedByCi"
    assert any("package lib.sigwarden.answers" in lib for lib in template["spec"]["targets"][0]["libs"])
    capfd.readouterr()
    # No config, no provider: the built-in fixture images (what a new user has).
    assert main(["policy", "test", f"{policy}/"]) == 0
    out = capfd.readouterr().out
    assert "9 passed, 0 failed" in out and "FAIL" not in out
    # Each case passes for the reason it is there.
    results = {r.case: r for r in run_suite(policy / "suite.yaml", EngineExternalData(engine))}
    (unsigned,) = results["unsigned"].messages
    assert unsigned.startswith(f'image {UNSIGNED} is not signed by any of ["gpg-release", "keyless-ci", '
                               '"notation-release", "release"]: no signatures found for sha256:'), unsigned
    assert "could not be verified: REGISTRY_UNAVAILABLE" in results["registry-unreachable"].messages[0]
    assert results["keyless-signed"].messages == [] and results["gpg-signed"].messages == []


def test_policy_test_runs_the_rego_as_edited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SIGWARDEN_CONFIG", raising=False)
    policy = tmp_path / "edited"
    assert main(["policy", "init", str(policy)]) == 0
    source = policy / "src.rego"
    # A wrong edit (every vouched image now violates): template.yaml is not rebuilt, the suite still sees it.
    source.write_text(source.read_text().replace("count(wanted & vouching.authorities(facts, false)) == 0",
                                                 "count(wanted & vouching.authorities(facts, false)) > 0"))
    capfd.readouterr()
    assert main(["policy", "test", str(policy)]) == 1
    out = capfd.readouterr().out
    assert "FAIL " in out and "cosign-key-signed: expected no violations" in out


def test_policy_test_takes_a_directory_of_suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SIGWARDEN_CONFIG", raising=False)
    for name in ("first-policy", "second-policy"):
        assert main(["policy", "init", str(tmp_path / "policies" / name)]) == 0
    (tmp_path / "policies" / "notes.yaml").write_text("not: a suite\n")  # other YAML in the tree is skipped
    capfd.readouterr()
    assert main(["policy", "test", str(tmp_path / "policies")]) == 0
    out = capfd.readouterr().out
    assert "first-policy/suite.yaml" in out and "second-policy/suite.yaml" in out and "18 passed, 0 failed" in out
    (tmp_path / "empty").mkdir()
    assert main(["policy", "test", str(tmp_path / "empty")]) == 2
    assert "no suite files (kind: Suite) in this directory" in capfd.readouterr().err


def test_build_inlines_the_library_into_user_templates(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", "init", str(tmp_path / "mine" / "signed-by-ci")]) == 0
    hand_written = yaml.safe_load((tmp_path / "mine" / "signed-by-ci" / "template.yaml").read_text())
    hand_written["metadata"]["name"] = "handwritten"
    hand_written["spec"]["crd"]["spec"]["names"]["kind"] = "Handwritten"
    hand_written["spec"]["targets"][0]["rego"] = hand_written["spec"]["targets"][0]["rego"].replace(
        "package signedbyci", "package handwritten")
    del hand_written["spec"]["targets"][0]["libs"]  # as a user writes it: imports the library, ships none
    (tmp_path / "handwritten.yaml").write_text(yaml.safe_dump(hand_written))
    out = tmp_path / "out"
    assert main(["policy", "build", str(out), "--policies", str(tmp_path / "mine"), "--policies",
                 str(tmp_path / "handwritten.yaml")]) == 0
    for name in ("signedbyci", "handwritten"):
        template = yaml.safe_load((out / "templates" / f"{name}.yaml").read_text())
        validate_object(template)
        libs = template["spec"]["targets"][0]["libs"]
        assert any("package lib.sigwarden.vouching" in lib for lib in libs), name
    assert (out / "templates" / "k8ssignedimages.yaml").is_file()  # the shipped ones are still there
    assert main(["policy", "build", str(out), "--check", "--policies", str(tmp_path / "mine"), "--policies",
                 str(tmp_path / "handwritten.yaml")]) == 0
    capfd.readouterr()
    clash = tmp_path / "clash" / "k8s-signed-images"
    assert main(["policy", "init", str(clash)]) == 0
    assert main(["policy", "build", str(out), "--policies", str(clash)]) == 2
    assert "a shipped template has that name" in capfd.readouterr().err


@pytest.mark.parametrize(("name", "problem"), [("Bad_Name", "lowercase letters, digits and single dashes"),
                                               ("taken", "exists and is not an empty directory")])
def test_init_refuses_in_one_line(tmp_path: Path, name: str, problem: str, capfd: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.rego").write_text("package mine\n")
    assert main(["policy", "init", str(tmp_path / name)]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and problem in err
