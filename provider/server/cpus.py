"""How many worker processes a pod should run: the container's CPU quota, not the node's CPU count.

A container limited to 2 CPUs on a 64-core node sees 64 CPUs in `os.cpu_count()`; 64 workers there would
spend the memory of 64 interpreters to share 2 CPUs. The quota lives in the cgroup: `cpu.max` (cgroup v2) or
`cpu.cfs_quota_us` / `cpu.cfs_period_us` (v1), on the container's own cgroup or any ancestor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path, PurePosixPath

PROC_CGROUP = Path("/proc/self/cgroup")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def cpu_quota(proc_cgroup: Path = PROC_CGROUP, root: Path = CGROUP_ROOT) -> float | None:
    """CPUs the cgroup quota allows this process (e.g. 1.5), or None when no quota applies."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = ["0::/"]
    quotas: list[float] = []
    for line in lines:
        _, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if controllers == "":
            quotas += _quotas(root, path, _v2_quota)
        elif "cpu" in controllers.split(","):
            # Mounted under the joined controller names (cpu,cpuacct), often with a `cpu` link beside it.
            for mount in dict.fromkeys((controllers, "cpu")):
                quotas += _quotas(root / mount, path, _v1_quota)
    return min(quotas) if quotas else None


def default_workers(quota: float | None) -> int:
    """One worker per CPU of quota, rounded up; one when there is no quota (set server.workers then)."""
    return 1 if quota is None else max(1, math.ceil(quota - 1e-9))


def _quotas(base: Path, cgroup_path: str, read: Callable[[Path], float | None]) -> list[float]:
    """Quotas on the cgroup and each ancestor (inside a container the namespace root is the container's)."""
    found = []
    relative = PurePosixPath(cgroup_path or "/").relative_to("/")
    for depth in range(len(relative.parts), -1, -1):
        quota = read(base.joinpath(*relative.parts[:depth]))
        if quota is not None:
            found.append(quota)
    return found


def _v2_quota(directory: Path) -> float | None:
    try:
        quota, _, period = (directory / "cpu.max").read_text().strip().partition(" ")
    except OSError:
        return None
    if quota == "max" or not quota.isdigit() or not period.isdigit() or int(period) == 0:
        return None
    return int(quota) / int(period)


def _v1_quota(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text().strip())
        period = int((directory / "cpu.cfs_period_us").read_text().strip())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None
