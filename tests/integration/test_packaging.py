"""The container image's install path, without a Docker engine: build the wheel, install it into a clean
virtual environment the way the Dockerfile does, and run the entrypoint."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

from tests.helpers import write_yaml

ROOT = Path(__file__).resolve().parents[2]


def run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=600, cwd=cwd)


def test_wheel_installs_and_the_entrypoint_runs(tmp_path: Path) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip wheel --no-deps --wheel-dir /dist ." in dockerfile and 'ENTRYPOINT ["sigwarden"]' in dockerfile
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", tmp_path / "dist", ROOT)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("sigwarden-*.whl")
    venv.create(tmp_path / "env", with_pip=True)
    installed = run(tmp_path / "env/bin/pip", "install", "--quiet", wheel)
    assert installed.returncode == 0, installed.stderr[-2000:]
    entrypoint = tmp_path / "env/bin/sigwarden"
    help_text = run(entrypoint, "--help", cwd=tmp_path)
    assert help_text.returncode == 0 and "serve" in help_text.stdout and "admit" in help_text.stdout
    config = write_yaml(tmp_path / "config.yaml", {"stores": [{"type": "registry", "match": ["*"]}]})
    checked = run(entrypoint, "config", "check", config, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "ok (0 authorities, 1 stores" in checked.stdout
    # The facts schema ships inside the wheel (templates validate against it at runtime).
    schema = run(tmp_path / "env/bin/python", "-c",
                 "from provider.facts import facts_schema; print(facts_schema()['title'])", cwd=tmp_path)
    assert schema.stdout.strip() == "sigwarden facts"
