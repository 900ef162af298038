"""The hashed lock files under requirements/ and the pyproject.toml inputs each one is compiled from.

One lock per install that matters: `runtime` (the image), `build` (the build backend the release builds with),
one per extra under `extras/` (runtime plus that extra) and `dev` (runtime plus every extra: what `make deps`
installs). Each lock records a fingerprint of its inputs, so a change to pyproject.toml that the lock has not
seen is found without resolving anything. `make lock` regenerates them all with pip-tools.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK_DIR = "requirements"
# What the image installs: the runtime and every cloud SDK (`[cloud]`), so one image runs on any cloud.
IMAGE_LOCK = f"{LOCK_DIR}/extras/cloud.txt"
REGENERATE = "make lock"
FINGERPRINT_PREFIX = "# pyproject-inputs: "
BUILD_INPUT = f"{LOCK_DIR}/build.in"


@dataclass(frozen=True)
class Lock:
    """One lock file: its path relative to the root and the pyproject.toml inputs it is compiled from."""

    name: str
    path: str
    requirements: tuple[str, ...]
    extras: tuple[str, ...] = ()
    build: bool = False

    def fingerprint(self, requires_python: str) -> str:
        inputs = {"requires-python": requires_python, "requirements": sorted(self.requirements),
                  "extras": sorted(self.extras), "build": self.build}
        return "sha256:" + hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def read_pyproject(root: Path = ROOT) -> dict:
    with (root / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def expected_locks(pyproject: dict) -> list[Lock]:
    """Every lock pyproject.toml calls for, in the order they are compiled."""
    project = pyproject["project"]
    runtime = tuple(project.get("dependencies", []))
    extras: dict[str, list[str]] = project.get("optional-dependencies", {})
    locks = [Lock("runtime", f"{LOCK_DIR}/runtime.txt", runtime),
             Lock("build", f"{LOCK_DIR}/build.txt", tuple(pyproject["build-system"]["requires"]), build=True)]
    name = canonicalize_name(project["name"])
    for extra in sorted(extras):
        included = _with_included(extra, extras, name)
        requirements = tuple(line for other in included for line in extras[other] if other in extras)
        locks.append(Lock(f"extra {extra}", f"{LOCK_DIR}/extras/{extra}.txt", runtime + requirements, included))
    every = tuple(requirement for extra in sorted(extras) for requirement in extras[extra])
    locks.append(Lock("dev", f"{LOCK_DIR}/dev.txt", runtime + every, tuple(sorted(extras))))
    return locks


def _with_included(extra: str, extras: dict[str, list[str]], name: str) -> tuple[str, ...]:
    """`extra` and every extra it names through `<project>[other]` (as `cloud = ["sigwarden[aws]"]`)."""
    found, todo = {extra}, [extra]
    while todo:
        for line in extras.get(todo.pop(), []):
            requirement = Requirement(line)
            if canonicalize_name(requirement.name) == name:
                for included in requirement.extras - found:
                    found.add(included)
                    todo.append(included)
    return tuple(sorted(found))


def _drop_self_reference(text: str, name: str) -> str:
    """pip-compile pins an extra that names the project itself as `<project> @ file:///<checkout>` (unhashable,
    and a machine path); every extra it names is compiled in already, so the entry goes."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        if line.startswith(("# WARNING: pip install will require", "# Consider using a hashable URL")):
            continue
        if not line[:1].isspace() and not line.startswith("#"):
            skipping = canonicalize_name(line.split(" ", 1)[0].split("[", 1)[0]) == name and " @ " in line
        if not skipping:
            kept.append(line)
    return "".join(kept)


def build_requirements(lock: Lock) -> list[str]:
    return [*lock.requirements, "wheel"] if lock.build else list(lock.requirements)


def recorded_fingerprint(text: str) -> str:
    for line in text.splitlines():
        if line.startswith(FINGERPRINT_PREFIX):
            return line[len(FINGERPRINT_PREFIX):].strip()
    return ""


def _compile(lock: Lock, requires_python: str, project: str, root: Path) -> None:
    output = root / lock.path
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "piptools", "compile", "--quiet", "--generate-hashes", "--allow-unsafe",
               "--strip-extras", "--no-emit-index-url", "--no-emit-find-links", "--no-emit-trusted-host",
               "--newline", "LF", "--output-file", lock.path]
    if lock.build:
        # The build backend is not a project dependency: compile [build-system].requires as a plain input
        # (wheel too, which setuptools needs for bdist_wheel without build isolation).
        source = root / BUILD_INPUT
        source.write_text(f"# Generated by `{REGENERATE}` from [build-system].requires in pyproject.toml.\n"
                          + "\n".join(build_requirements(lock)) + "\n")
        command.append(BUILD_INPUT)
    else:
        command += [f"--extra={extra}" for extra in lock.extras]
        command.append("pyproject.toml")
    subprocess.run(command, cwd=root, check=True, env={**os.environ, "CUSTOM_COMPILE_COMMAND": REGENERATE})
    text = _drop_self_reference(output.read_text(), project)
    output.write_text(f"{FINGERPRINT_PREFIX}{lock.fingerprint(requires_python)}\n{text}")


def regenerate(root: Path = ROOT) -> list[Path]:
    """Compile every lock pyproject.toml calls for and remove the locks of extras that are gone."""
    pyproject = read_pyproject(root)
    locks = expected_locks(pyproject)
    requires_python = pyproject["project"].get("requires-python", "")
    for lock in locks:
        _compile(lock, requires_python, canonicalize_name(pyproject["project"]["name"]), root)
    wanted = {root / lock.path for lock in locks}
    stale = [path for path in (root / LOCK_DIR / "extras").glob("*.txt") if path not in wanted]
    for path in stale:
        path.unlink()
    return sorted(wanted)


def pins(text: str) -> dict[str, tuple[str, int]]:
    """`name -> (version, number of hashes)` of a hashed requirements file."""
    found: dict[str, tuple[str, int]] = {}
    name = ""
    for line in text.splitlines():
        stripped = line.strip()
        if line and not line[0].isspace() and "==" in line and not line.startswith("#"):
            name, version = line.split(" ", 1)[0].split("==", 1)
            name = canonicalize_name(name.split("[", 1)[0])
            found[name] = (version, 0)
        if name and "--hash=" in stripped:
            version, hashes = found[name]
            found[name] = (version, hashes + stripped.count("--hash="))
    return found


def problems(root: Path = ROOT) -> list[str]:
    """Every way the locks under requirements/ disagree with pyproject.toml, each naming the fix."""
    pyproject = read_pyproject(root)
    project_name = canonicalize_name(pyproject["project"]["name"])
    requires_python = pyproject["project"].get("requires-python", "")
    found: list[str] = []
    locks = expected_locks(pyproject)
    for lock in locks:
        path = root / lock.path
        if not path.is_file():
            found.append(f"{lock.path} is missing ({lock.name} of pyproject.toml has no lock): run `{REGENERATE}`")
            continue
        text = path.read_text()
        if recorded_fingerprint(text) != lock.fingerprint(requires_python):
            found.append(f"{lock.path} was compiled from other pyproject.toml inputs than the current {lock.name}"
                         f" requirements: run `{REGENERATE}`")
        pinned = pins(text)
        for line in build_requirements(lock):
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            if name == project_name or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
                continue  # an extra naming other extras of this project; a requirement for another platform
            if name not in pinned:
                found.append(f"{lock.path} does not pin {requirement.name} ({line}): run `{REGENERATE}`")
            elif not requirement.specifier.contains(pinned[name][0], prereleases=True):
                found.append(f"{lock.path} pins {requirement.name}=={pinned[name][0]}, outside {line!r}:"
                             f" run `{REGENERATE}`")
        if any(" @ " in line or "://" in line or line.startswith("-e") for line in text.splitlines()
               if not line.lstrip().startswith("#")):
            found.append(f"{lock.path} names a local path or URL instead of a hashed pin: run `{REGENERATE}`")
        unhashed = sorted(name for name, (_version, hashes) in pinned.items() if not hashes)
        if unhashed:
            found.append(f"{lock.path} pins without hashes: {', '.join(unhashed)}: run `{REGENERATE}`")
    wanted = {root / lock.path for lock in locks}
    for path in sorted((root / LOCK_DIR / "extras").glob("*.txt")):
        if path not in wanted:
            found.append(f"{path.relative_to(root)} locks an extra pyproject.toml no longer has: run `{REGENERATE}`")
    return found
