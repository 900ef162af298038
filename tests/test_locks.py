"""The hashed locks under requirements/ agree with pyproject.toml, and a disagreement names `make lock`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.release import locks

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """pyproject.toml and requirements/ copied, to be changed the way an edit without `make lock` would."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_locks_agree_with_pyproject() -> None:
    found = locks.problems(ROOT)
    assert found == [], "\n".join(found)


def test_every_lock_pins_every_package_with_hashes() -> None:
    for lock in locks.expected_locks(locks.read_pyproject(ROOT)):
        pinned = locks.pins((ROOT / lock.path).read_text())
        assert pinned and all(hashes for _version, hashes in pinned.values()), lock.path
        assert "://" not in (ROOT / lock.path).read_text(), f"{lock.path} names an index"


def test_a_new_extra_without_its_lock_names_the_target(checkout: Path) -> None:
    edit(checkout / "pyproject.toml", "[project.optional-dependencies]\n",
         '[project.optional-dependencies]\nsbom = ["cyclonedx-bom"]\n')
    found = locks.problems(checkout)
    assert ("requirements/extras/sbom.txt is missing (extra sbom of pyproject.toml has no lock): run `make lock`"
            in found)
    # dev.txt holds every extra, so it is out of date too.
    assert any(p.startswith("requirements/dev.txt was compiled from other") for p in found)
    assert all(p.endswith("run `make lock`") for p in found)


def test_a_changed_requirement_is_caught_even_when_the_pins_still_fit(checkout: Path) -> None:
    edit(checkout / "pyproject.toml", '"tqdm>=4.66"', '"tqdm>=4.65"')
    found = locks.problems(checkout)
    assert "requirements/runtime.txt was compiled from other pyproject.toml inputs than the current runtime" \
           " requirements: run `make lock`" in found


def test_a_pin_outside_the_specifier_is_named(checkout: Path) -> None:
    edit(checkout / "pyproject.toml", '"cachetools>=5.3"', '"cachetools>=99"')
    found = locks.problems(checkout)
    assert any(p.startswith("requirements/runtime.txt pins cachetools==") and "outside 'cachetools>=99'" in p
               for p in found), found


def test_a_removed_extra_leaves_a_stale_lock(checkout: Path) -> None:
    edit(checkout / "pyproject.toml", "\nrelease = [", "\nrelease_tools = [")
    found = locks.problems(checkout)
    assert "requirements/extras/release.txt locks an extra pyproject.toml no longer has: run `make lock`" in found


def test_a_lock_without_hashes_is_refused(checkout: Path) -> None:
    runtime = checkout / "requirements" / "runtime.txt"
    runtime.write_text("\n".join(line for line in runtime.read_text().splitlines()
                                 if "--hash=" not in line or "flask" in line))
    assert any("pins without hashes" in p for p in locks.problems(checkout))


def test_an_extra_that_names_other_extras_locks_them_all() -> None:
    pyproject = {"project": {"name": "sigwarden", "dependencies": ["flask>=3"],
                             "optional-dependencies": {"aws": ["boto3>=1.34"], "vault": ["hvac>=2"],
                                                       "cloud": ["sigwarden[aws,vault]"]}},
                 "build-system": {"requires": ["setuptools>=68"]}}
    (cloud,) = [lock for lock in locks.expected_locks(pyproject) if lock.name == "extra cloud"]
    assert cloud.extras == ("aws", "cloud", "vault")
    assert {"flask>=3", "boto3>=1.34", "hvac>=2"} <= set(cloud.requirements)


def test_the_self_reference_pip_compile_writes_for_such_an_extra_is_dropped() -> None:
    # What pip-tools writes for `cloud = ["sigwarden[aws]"]`: an unhashable local path of the checkout.
    compiled = ("boto3==1.44.18 \\\n    --hash=sha256:aa\n    # via sigwarden\n"
                "# WARNING: pip install will require the following package to be hashed.\n"
                "# Consider using a hashable URL like https://example.invalid/archive.zip\n"
                "sigwarden @ file:///home/someone/sigwarden\n    # via sigwarden (pyproject.toml)\n"
                "six==1.17.0 \\\n    --hash=sha256:bb\n    # via python-dateutil\n")
    kept = locks._drop_self_reference(compiled, "sigwarden")
    assert kept == ("boto3==1.44.18 \\\n    --hash=sha256:aa\n    # via sigwarden\n"
                    "six==1.17.0 \\\n    --hash=sha256:bb\n    # via python-dateutil\n")


def test_a_lock_naming_a_local_path_is_refused(checkout: Path) -> None:
    runtime = checkout / "requirements" / "runtime.txt"
    runtime.write_text(runtime.read_text() + "sigwarden @ file:///home/someone/sigwarden\n")
    assert "requirements/runtime.txt names a local path or URL instead of a hashed pin: run `make lock`" \
           in locks.problems(checkout)
