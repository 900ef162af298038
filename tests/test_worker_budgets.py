"""How many workers a pod runs (the cgroup CPU quota, not the node) and how its budgets are divided among them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provider.config import ConfigError, load_config
from provider.config.budgets import MIN_CACHE_BYTES, MIN_CONNECTIONS, worker_share
from provider.server.cpus import cpu_quota, default_workers
from tests.helpers import write_yaml


def cgroup(tmp_path: Path, proc_lines: str, files: dict[str, str]) -> tuple[Path, Path]:
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(proc_lines)
    root = tmp_path / "sys-fs-cgroup"
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    root.mkdir(exist_ok=True)
    return proc, root


@pytest.mark.parametrize(("proc_lines", "files", "quota"), [
    # cgroup v2 inside a container: the namespace root is the container's cgroup.
    ("0::/\n", {"cpu.max": "150000 100000\n"}, 1.5),
    ("0::/\n", {"cpu.max": "max 100000\n"}, None),
    # v2 seen from the host: the pod's cgroup and its ancestors; the smallest quota wins.
    ("0::/kubepods/pod1/ctr\n", {"kubepods/pod1/ctr/cpu.max": "max 100000", "kubepods/pod1/cpu.max": "50000 100000",
                                  "kubepods/cpu.max": "800000 100000"}, 0.5),
    # cgroup v1, combined and separate controller mounts; -1 is no quota.
    ("4:cpu,cpuacct:/\n0::/\n", {"cpu,cpuacct/cpu.cfs_quota_us": "300000", "cpu,cpuacct/cpu.cfs_period_us": "100000"},
     3.0),
    ("1:cpu:/\n2:cpuacct:/\n", {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
    # Nothing readable: no quota.
    ("garbage", {}, None),
    ("0::/\n", {"cpu.max": "lots of cpus"}, None),
])
def test_cpu_quota_is_read_from_the_cgroup(tmp_path: Path, proc_lines: str, files: dict[str, str],
                                           quota: float | None) -> None:
    proc, root = cgroup(tmp_path, proc_lines, files)
    assert cpu_quota(proc, root) == quota


def test_missing_proc_file_means_the_root_cgroup(tmp_path: Path) -> None:
    _, root = cgroup(tmp_path, "", {"cpu.max": "200000 100000"})
    assert cpu_quota(tmp_path / "absent", root) == 2.0


@pytest.mark.parametrize(("quota", "workers"), [(None, 1), (0.25, 1), (1.0, 1), (1.5, 2), (2.0, 2), (7.2, 8)])
def test_default_workers_round_the_quota_up(quota: float | None, workers: int) -> None:
    assert default_workers(quota) == workers


def test_config_takes_auto_or_a_worker_count(tmp_path: Path) -> None:
    assert load_config(write_yaml(tmp_path / "auto.yaml", {"server": {"workers": "auto"}})).server.workers == 0
    assert load_config(write_yaml(tmp_path / "none.yaml", {})).server.workers == 0
    assert load_config(write_yaml(tmp_path / "two.yaml", {"server": {"workers": 2}})).server.workers == 2
    for bad, problem in ((0, "must be at least 1"), (65, "at most 64"), ("many", "expected an integer")):
        with pytest.raises(ConfigError, match=f"server.workers: {problem}"):
            load_config(write_yaml(tmp_path / "bad.yaml", {"server": {"workers": bad}}))


def test_serve_refuses_a_bad_worker_count_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "provider", "serve", "--config", str(tmp_path / "c.yaml"),
                             "--workers", "0"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--workers: expected a number of worker processes from 1 to 64, got '0'" in result.stderr
    assert "Traceback" not in result.stderr


def pod_config(tmp_path: Path, max_bytes: int, connections: int, per_address: int, wildcard: int,
               concurrency: int) -> Path:
    return write_yaml(tmp_path / "pod.yaml", {
        "server": {"maxConnections": connections},
        "verification": {"concurrency": concurrency, "cache": {"maxBytes": max_bytes}},
        "stores": [{"type": "registry", "match": ["*"], "concurrencyPerAddress": per_address,
                    "concurrencyWildcard": wildcard}]})


def test_one_worker_keeps_the_whole_budget(tmp_path: Path) -> None:
    config = load_config(pod_config(tmp_path, 64 << 20, 4096, 8, 64, 32))
    assert worker_share(config, 1) is config


@given(workers=st.integers(2, 64), max_bytes=st.integers(1 << 20, 1 << 32), connections=st.integers(16, 100_000),
       per_address=st.integers(1, 256), wildcard=st.integers(1, 1024), concurrency=st.integers(1, 512))
def test_workers_shares_stay_within_the_pod_budget(tmp_path_factory: pytest.TempPathFactory, workers: int,
                                                   max_bytes: int, connections: int, per_address: int, wildcard: int,
                                                   concurrency: int) -> None:
    config = load_config(pod_config(tmp_path_factory.mktemp("pod"), max_bytes, connections, per_address, wildcard,
                                    concurrency))
    share = worker_share(config, workers)
    pairs = [(share.verification.cache.max_bytes, max_bytes, MIN_CACHE_BYTES),
             (share.server.max_connections, connections, MIN_CONNECTIONS),
             (share.stores[0].concurrency_per_address, per_address, 1),
             (share.stores[0].concurrency_wildcard, wildcard, 1),
             (share.verification.concurrency, concurrency, 1)]
    for part, total, floor in pairs:
        # Within the pod's budget unless the floor each worker needs to be useful is larger.
        assert part * workers <= max(total, floor * workers)
        assert part >= floor
        # Nothing is left unused beyond rounding.
        assert total - part * workers < workers or part == floor
    # What is trusted is not a budget: it stays whole.
    assert share.authorities == config.authorities and share.stores[0].match == config.stores[0].match


def test_several_workers_without_a_shared_cache_are_warned_about(tmp_path: Path) -> None:
    from provider.config.checks import config_warnings

    path = write_yaml(tmp_path / "c.yaml", {"server": {"workers": 3}})
    assert any("server.workers is 3 without verification.cache.redis" in w for w in config_warnings(load_config(path)))
    write_yaml(path, {"server": {"workers": 1}})
    assert not any("server.workers" in w for w in config_warnings(load_config(path)))


def test_registry_caches_are_carved_out_of_the_pod_cache_budget(tmp_path: Path) -> None:
    from provider.metrics import Metrics
    from provider.stores import build_store
    from provider.stores.registry import RegistryStore

    mib = 1024 * 1024
    path = write_yaml(tmp_path / "c.yaml", {
        "verification": {"cache": {"maxBytes": "64MiB"}},
        "stores": [{"type": "registry", "match": ["a.example/*"]}, {"type": "registry", "match": ["*"]},
                   {"type": "oci-layout", "path": str(tmp_path), "match": ["local/*"]}]})
    config = load_config(path)
    for workers, share in ((1, 32 * mib), (4, 8 * mib)):
        # Two registry stores split the (worker's share of the) budget; the layout store has no such caches.
        worker = worker_share(config, workers)
        store = build_store(worker.stores[0], worker, Metrics())
        assert isinstance(store, RegistryStore)
        assert (store.cache_bytes.tags, store.cache_bytes.verified, store.cache_bytes.tokens) == \
            (share // 4, share // 2, share // 8)
        assert store.client.tokens.max_bytes == share // 8
        store.close()
    # A small budget still leaves each cache its floor of 1 MiB.
    small = worker_share(load_config(write_yaml(tmp_path / "small.yaml", {
        "verification": {"cache": {"maxBytes": "1MiB"}}, "stores": [{"type": "registry", "match": ["*"]}]})), 8)
    store = build_store(small.stores[0], small, Metrics())
    assert isinstance(store, RegistryStore)
    assert min(vars(store.cache_bytes).values()) == mib
    store.close()
