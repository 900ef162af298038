"""The image's own filesystem layer, built without a container engine.

The same three commands as the Dockerfile's build stage install the runtime lock and the release wheel into
`/opt/sigwarden/lib` under a scratch root; the tree is then packed as an OCI layer tar with sorted entries, times
at SOURCE_DATE_EPOCH and owner root. The base image's layers are not rebuilt here: the manifest names the base
by digest (org.opencontainers.image.base.*), as the Dockerfile does.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts.release.archives import Entry, tar_bytes
from scripts.release.locks import IMAGE_LOCK

PREFIX = "opt/sigwarden/lib"
ENTRYPOINT = ["python", "-m", "provider"]
CMD = ["serve", "--config", "/etc/sigwarden/config/config.yaml"]
USER = "65532:65532"
ENV = ["PYTHONPATH=/opt/sigwarden/lib", "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1"]


@dataclass(frozen=True)
class BaseImage:
    """The Dockerfile's base image: `name:tag@sha256:…`."""

    name: str
    tag: str
    digest: str

    @classmethod
    def from_dockerfile(cls, dockerfile: Path) -> BaseImage:
        found = re.search(r"^ARG BASE=([^:@\s]+):([^@\s]+)@(sha256:[0-9a-f]{64})$", dockerfile.read_text(), re.M)
        if found is None:
            raise ValueError(f"{dockerfile}: no `ARG BASE=name:tag@sha256:…` line naming the base image by digest")
        return cls(*found.groups())


def pip(*args: str | Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *map(str, args)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip {' '.join(map(str, args[:2]))} failed:\n{done.stderr[-3000:]}")


def install(root: Path, wheel: Path, runtime_lock: Path) -> Path:
    """Install the lock and the wheel under `root`, as the Dockerfile does; returns the site directory."""
    pip("install", "--quiet", "--require-hashes", "--no-compile", "--target", root / PREFIX, "-r", runtime_lock)
    return install_wheel(root, wheel)


def install_wheel(root: Path, wheel: Path) -> Path:
    """The wheel alone, from its own directory (no index, so pip records no download URL in the tree)."""
    lib = root / PREFIX
    pip("install", "--quiet", "--no-index", "--find-links", wheel.parent, "--no-deps", "--no-compile", "--target",
        lib, f"sigwarden=={wheel.name.split('-')[1]}")
    shutil.rmtree(lib / "bin", ignore_errors=True)  # console scripts name the builder's interpreter
    return lib


def layer(root: Path, epoch: int) -> bytes:
    """`root` as an uncompressed OCI layer whose bytes depend on the file contents only."""
    entries = []
    for path in root.rglob("*"):
        if path.is_symlink():
            raise ValueError(f"{path}: symbolic links are not packed into the layer")
        if "__pycache__" in path.parts:
            continue
        name = path.relative_to(root).as_posix()
        if path.is_dir():
            entries.append(Entry(name, None))
        else:
            entries.append(Entry(name, path.read_bytes(), bool(path.stat().st_mode & 0o111)))
    return tar_bytes(entries, epoch)


def architecture() -> str:
    """The OCI name of this machine's architecture: the wheels the lock installed are for it."""
    import platform

    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def config(layer_bytes: bytes, epoch_iso: str, architecture: str) -> dict:
    """The OCI image config of sigwarden's layer: what the Dockerfile's final stage sets."""
    return {"architecture": architecture, "os": "linux", "created": epoch_iso,
            "config": {"User": USER, "Env": ENV, "Entrypoint": ENTRYPOINT, "Cmd": CMD,
                       "ExposedPorts": {"8443/tcp": {}, "9090/tcp": {}}},
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_bytes).hexdigest()]},
            "history": [{"created": epoch_iso, "created_by": f"pip install --require-hashes -r {IMAGE_LOCK}"
                         " --target /opt/sigwarden/lib; pip install --no-index sigwarden (the release wheel)"}]}
