"""The wheel and sdist, built from the committed tree with SOURCE_DATE_EPOCH and checked byte for byte.

setuptools' wheels honour SOURCE_DATE_EPOCH; its sdists take file times, owners and the gzip header time from
the build machine, so the sdist is re-packed in a fixed form (sorted members, times at the epoch, owner
root, gzip time 0) before the two builds are compared.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from scripts.release.archives import Entry, gzip_bytes, tar_bytes

# One process per hook, as build frontends do (setuptools keeps state between hooks); the backend logs to
# stdout too, so the built name comes on a marked line of its own.
HOOK = ("import sys, setuptools.build_meta as backend\n"
        "print('built:', getattr(backend, sys.argv[1])(sys.argv[2]))\n")


class NotReproducible(Exception):
    """Two builds of one commit differ."""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.rstrip()


def source_commit(root: Path) -> str:
    return git(root, "rev-parse", "HEAD")


def commit_epoch(root: Path, commit: str) -> int:
    return int(git(root, "log", "-1", "--format=%ct", commit))


def modified_files(root: Path) -> list[str]:
    """Tracked files that differ from HEAD: a release describes a commit, so these must not exist."""
    return [line[3:] for line in git(root, "status", "--porcelain", "--untracked-files=no").splitlines()]


def export_tree(root: Path, commit: str, dest: Path) -> Path:
    """The committed tree only (no build leftovers, no untracked files), as `git archive` writes it."""
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=root, check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def normalise_tar_gz(path: Path, epoch: int) -> None:
    """Re-pack a .tar.gz so its bytes depend on the file contents only."""
    entries = []
    with tarfile.open(path) as source:
        for member in source.getmembers():
            if member.isdir():
                entries.append(Entry(member.name, None))
            elif member.isfile():
                data = source.extractfile(member).read()  # type: ignore[union-attr]
                entries.append(Entry(member.name, data, bool(member.mode & 0o111)))
    path.write_bytes(gzip_bytes(tar_bytes(entries, epoch)))


def build_once(tree: Path, out: Path, epoch: int) -> list[Path]:
    """Wheel and sdist of `tree` with the build backend of this interpreter (installed from build.txt)."""
    out.mkdir(parents=True, exist_ok=True)
    env = {"SOURCE_DATE_EPOCH": str(epoch), "PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "TZ": "UTC"}
    names = []
    for hook in ("build_wheel", "build_sdist"):
        done = subprocess.run([sys.executable, "-c", HOOK, hook, str(out)], cwd=tree, env=env, capture_output=True,
                              text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{hook} of {tree} failed:\n{done.stderr[-3000:]}")
        names.append([line for line in done.stdout.splitlines() if line.startswith("built: ")][-1].split()[1])
    normalise_tar_gz(out / names[1], epoch)
    return [out / names[0], out / names[1]]


def build_twice(root: Path, commit: str, epoch: int, out: Path) -> list[Path]:
    """Build from two fresh exports of `commit`; keep the first only when both are byte-identical."""
    with tempfile.TemporaryDirectory(prefix="sigwarden-build-") as scratch:
        runs = []
        for attempt in ("a", "b"):
            tree = export_tree(root, commit, Path(scratch) / attempt / "src")
            runs.append(build_once(tree, Path(scratch) / attempt / "dist", epoch))
        for first, second in zip(*runs, strict=True):
            if first.name != second.name or first.read_bytes() != second.read_bytes():
                raise NotReproducible(f"{first.name}: two builds of {commit[:12]} differ")
        out.mkdir(parents=True, exist_ok=True)
        kept = []
        for built in runs[0]:
            target = out / built.name
            target.write_bytes(built.read_bytes())
            kept.append(target)
        return kept
