"""The installed package does everything a checkout does: build the wheel, install it offline into a clean
virtual environment (no system site-packages, only the wheelhouse `make deps` fills), and run every command that
needs package data from an empty directory."""

from __future__ import annotations

import json
import os
import re
import subprocess
import venv
from pathlib import Path

import pytest

from tests.helpers import write_yaml

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(os.environ.get("SIGWARDEN_WHEELHOUSE", ROOT / ".wheelhouse"))


def run(*command: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "SIGWARDEN_"))}
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ directory of a fresh venv with the wheel installed from the wheelhouse only."""
    assert (WHEELHOUSE / "setuptools").parent.is_dir() and any(WHEELHOUSE.glob("setuptools-*.whl")), \
        f"no wheelhouse at {WHEELHOUSE}: run `make deps`"
    tmp = tmp_path_factory.mktemp("wheel")
    venv.create(tmp / "env", with_pip=True, system_site_packages=False)
    pip = [tmp / "env/bin/python", "-m", "pip", "--isolated", "--disable-pip-version-check"]
    offline = ["--no-index", "--find-links", WHEELHOUSE]
    built = run(*pip, "wheel", *offline, "--no-deps", "--wheel-dir", tmp / "dist", ROOT, cwd=tmp)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("sigwarden-*.whl")
    done = run(*pip, "install", "--quiet", *offline, wheel, cwd=tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    checked = run(*pip, "check", cwd=tmp)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return tmp / "env/bin"


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    directory = tmp_path / "empty"
    directory.mkdir()
    return directory


def test_the_dockerfile_installs_the_same_wheel() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip wheel --no-deps --wheel-dir /dist ." in dockerfile and 'ENTRYPOINT ["sigwarden"]' in dockerfile
    # The image runs on every cloud: all the cloud SDK extras are installed with the wheel.
    assert '/opt/sigwarden/bin/pip install "$(ls /dist/*.whl)[cloud]"' in dockerfile


def test_the_wheel_ships_the_catalog_and_the_rego_engine(installed: Path, empty: Path) -> None:
    probe = run(installed / "python", "-c", (
        "import json, regorus, provider, provider.catalog as c\n"
        "from provider.facts import facts_schema\n"
        "print(json.dumps({'templates': [p.parent.name for p in c.template_files() if p.is_file()],"
        " 'suites': len(c.suite_files()), 'samples': len(c.sample_constraints()), 'lib': (c.LIB / 'images.rego')"
        ".is_file(), 'site': 'site-packages' in provider.__file__, 'schema': facts_schema()['title']}))"), cwd=empty)
    assert probe.returncode == 0, probe.stderr
    shipped = json.loads(probe.stdout)
    assert shipped["site"], "provider must be imported from the installed wheel, not the checkout"
    assert shipped["templates"] == ["k8sdigestpinnedimages", "k8simagecontent", "k8sratifyverification",
                                   "k8ssignedimages"]
    assert shipped["suites"] == 4 and shipped["samples"] >= 6 and shipped["lib"]
    assert shipped["schema"] == "sigwarden facts"
    help_text = run(installed / "sigwarden", "--help", cwd=empty)
    assert help_text.returncode == 0 and "serve" in help_text.stdout and "admit" in help_text.stdout


def test_demo_runs_from_the_wheel(installed: Path, empty: Path) -> None:
    demo = run(installed / "sigwarden", "demo", cwd=empty)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "all decisions as expected" in demo.stdout
    assert "MISMATCH" not in demo.stdout
    assert list(empty.iterdir()) == []


def test_policy_test_runs_the_shipped_suites(installed: Path, empty: Path) -> None:
    result = run(installed / "sigwarden", "policy", "test", cwd=empty)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    passed = re.search(r"^(\d+) passed, 0 failed$", result.stdout, re.MULTILINE)
    assert passed and int(passed[1]) >= 25, result.stdout[-2000:]


def test_policy_build_writes_ready_to_apply_yaml(installed: Path, empty: Path) -> None:
    result = run(installed / "sigwarden", "policy", "build", "gatekeeper", cwd=empty)
    assert result.returncode == 0, result.stderr
    out = empty / "gatekeeper"
    for relative in (ROOT / "constraints").rglob("*.yaml"):  # the same bytes as the checkout's copy
        relative = relative.relative_to(ROOT / "constraints")
        assert (out / relative).read_bytes() == (ROOT / "constraints" / relative).read_bytes(), relative
    assert run(installed / "sigwarden", "policy", "build", "--check", "gatekeeper", cwd=empty).returncode == 0
    (out / "provider.yaml").write_text("edited\n")
    assert run(installed / "sigwarden", "policy", "build", "--check", "gatekeeper", cwd=empty).returncode == 1


def world(installed: Path, directory: Path) -> Path:
    """The fixture images and config of the installed package's devkit."""
    made = run(installed / "python", "-c", "import sys; from pathlib import Path; "
               "from provider.devkit.fixtures import build_world; print(build_world(Path(sys.argv[1])).config)",
               directory / "world", cwd=directory)
    assert made.returncode == 0, made.stderr
    return Path(made.stdout.strip())


def test_admit_and_audit_default_to_the_shipped_templates_and_constraints(installed: Path, empty: Path,
                                                                         tmp_path: Path) -> None:
    config = world(installed, tmp_path)
    signed = write_yaml(empty / "signed.yaml", pod("app", "registry.sigwarden.test/team/app:v1"))
    unsigned = write_yaml(empty / "unsigned.yaml", pod("other", "registry.sigwarden.test/team/unsigned:v1"))
    allowed = run(installed / "sigwarden", "admit", "--config", config, "-f", "signed.yaml", cwd=empty)
    assert allowed.returncode == 0 and "pod/app created" in allowed.stdout, allowed.stdout + allowed.stderr
    # The label-required sample selects namespaces by label, and no Namespace objects were given: say so.
    assert "signed-required-namespaces has a namespaceSelector but no Namespace objects were given" in allowed.stderr
    denied = run(installed / "sigwarden", "admit", "--config", config, "-f", "unsigned.yaml", cwd=empty)
    assert denied.returncode == 1, denied.stdout + denied.stderr
    assert "[kritis-attested-images] image registry.sigwarden.test/team/unsigned:v1 is not attested" in denied.stdout

    audited = run(installed / "sigwarden", "audit", "--config", config, "--manifests", signed, "--manifests",
                  unsigned, "--json", "report.json", "--no-progress", cwd=empty)
    assert audited.returncode == 1, audited.stdout + audited.stderr
    report = (empty / "report.json").read_text()
    json.loads(report)
    assert "registry.sigwarden.test/team/unsigned:v1 is not attested" in report
    assert "team/app:v1 is not attested" not in report  # signed: only the digest-pinning sample flags it


def pod(name: str, image: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "main", "image": image}]}}
