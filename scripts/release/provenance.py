"""The in-toto statement with SLSA v1 provenance of a release: what was built, from which commit and locks.

The builder is `make release` on the machine that ran it; a CI system that signs keylessly replaces the builder
id and run details with its own (see SECURITY.md).
"""

from __future__ import annotations

import hashlib
import platform
from datetime import UTC, datetime
from pathlib import Path

from scripts.release.imagefs import BaseImage
from scripts.release.locks import IMAGE_LOCK, LOCK_DIR

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PREDICATE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:sigwarden:release:make-release:v1"
BUILDER_ID = "urn:sigwarden:builder:make-release"
LOCKS = (IMAGE_LOCK, f"{LOCK_DIR}/build.txt")


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def predicate(tree: Path, commit: str, epoch: int, base: BaseImage) -> dict:
    """SLSA v1 provenance: resolvedDependencies (the materials) are the source commit, the locks, the base."""
    materials = [{"name": "source", "digest": {"gitCommit": commit}}]
    for lock in LOCKS:
        materials.append({"name": lock, "digest": {"sha256": hashlib.sha256((tree / lock).read_bytes()).hexdigest()}})
    materials.append({"name": f"{base.name}:{base.tag}", "digest": {"sha256": base.digest.split(":", 1)[1]}})
    return {"buildDefinition": {"buildType": BUILD_TYPE,
                                "externalParameters": {"target": "release", "commit": commit},
                                "internalParameters": {"SOURCE_DATE_EPOCH": str(epoch),
                                                       "python": platform.python_version()},
                                "resolvedDependencies": materials},
            "runDetails": {"builder": {"id": BUILDER_ID},
                           "metadata": {"invocationId": f"{commit}:{epoch}", "startedOn": iso(epoch),
                                        "finishedOn": iso(epoch)}}}


def statement(subjects: dict[str, str], provenance: dict) -> dict:
    """The statement over every release file and manifest: `name -> sha256:<hex>`."""
    return {"_type": STATEMENT_TYPE,
            "subject": [{"name": name, "digest": {"sha256": digest.split(":", 1)[1]}}
                        for name, digest in sorted(subjects.items())],
            "predicateType": SLSA_PREDICATE, "predicate": provenance}
