"""The cold path's pieces for the benchmarks: signed images in a real docker-registry, the raw-fetch floor, and a
sampling profiler that sees every thread (cProfile sees only the thread that enabled it, and cold work runs on
the verification pool).
"""

from __future__ import annotations

import collections
import hashlib
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import requests
from cryptography.hazmat.primitives.asymmetric import ec

from provider.devkit import cosign
from provider.devkit.layout import LayoutWriter
from tests.registry import RegistryServer

T = TypeVar("T")
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
PROJECT = str(Path(__file__).resolve().parents[2])


def publish_signed(root: Path, registry: RegistryServer, key: ec.EllipticCurvePrivateKey, count: int,
                   prefix: str = "cold") -> list[tuple[str, str]]:
    """`count` cosign-signed images, one repository each (pushed 8 at once); returns (repository, tag) pairs."""

    def push(i: int) -> tuple[str, str]:
        repository = f"{prefix}/img{i}"
        writer = LayoutWriter(root / "staging" / f"{prefix}-{i}", "repo")
        digest = writer.add_image("v1", f"{prefix} image {i}".encode())["digest"]
        cosign.sign_image(writer, digest, f"{registry.host}/{repository}", key)
        registry.push_layout(writer.path, repository)
        return repository, "v1"

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(push, range(count)))


def fetch_floor(registry: RegistryServer, pairs: list[tuple[str, str]], concurrency: int = 32,
                tags: bool = False, host: str = "") -> float:
    """Seconds for the fetches verification cannot skip (manifest by tag, signature manifest, payload),
    `concurrency` images at once. With `tags`, also the two tags discovery asks beside `.sig` (`.att` and the
    referrers tag `sha256-<hex>`; absent here), at the same time as `.sig`: the fetches the data flow names,
    in as few round trips as the provider makes them. `host` reaches the registry another way (a proxy)."""
    session = requests.Session()
    session.trust_env = False
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=3 * concurrency))
    beside = ThreadPoolExecutor(2 * concurrency) if tags else None

    def fetch(pair: tuple[str, str]) -> None:
        repository, tag = pair
        url = f"http://{host or registry.host}/v2/{repository}"
        manifest = session.get(f"{url}/manifests/{tag}", headers={"Accept": ACCEPT})
        prefix = f"{url}/manifests/sha256-{hashlib.sha256(manifest.content).hexdigest()}"
        others = [beside.submit(session.get, f"{prefix}{suffix}", headers={"Accept": ACCEPT})
                  for suffix in (".att", "")] if beside else []
        signature = session.get(f"{prefix}.sig", headers={"Accept": ACCEPT})
        for other in others:
            other.result()
        session.get(f"{url}/blobs/{signature.json()['layers'][0]['digest']}").raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(fetch, pairs))
    elapsed = time.perf_counter() - started
    if beside is not None:
        beside.shutdown()
    session.close()
    return elapsed


class Sampler:
    """Every `interval` seconds, the stacks of all threads but its own: per function, the samples in which it
    was running (self) and in which it was on the stack (total)."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.own: collections.Counter[str] = collections.Counter()
        self.total: collections.Counter[str] = collections.Counter()
        self.sites: collections.Counter[str] = collections.Counter()  # running code <- innermost project frame
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(threading.get_ident(),), daemon=True)

    def _run(self, caller: int) -> None:
        me = threading.get_ident()
        while not self._stop.wait(self.interval):
            for ident, frame in sys._current_frames().items():
                if ident in (me, caller):
                    continue  # the caller only waits for the pool
                names = []
                while frame is not None:
                    code = frame.f_code
                    names.append(f"{code.co_filename.replace(PROJECT + '/', '')}:{code.co_name}")
                    frame = frame.f_back
                if not any(name.startswith("provider/") for name in names):
                    continue  # an idle pool thread
                self.samples += 1
                self.own[names[0]] += 1
                self.sites[f"{names[0]} <- {next(n for n in names if n.startswith('provider/'))}"] += 1
                for name in set(names):
                    self.total[name] += 1

    def run(self, work: Callable[[], T]) -> T:
        self._thread.start()
        try:
            return work()
        finally:
            self._stop.set()
            self._thread.join()

    def report(self, top: int = 25, only: str = "provider/") -> str:
        lines = [f"{self.samples} samples of busy threads (waits included); by time on the stack ({only}):"]
        for name, count in [(n, c) for n, c in self.total.most_common() if n.startswith(only)][:top]:
            lines.append(f"  {100 * count / max(1, self.samples):5.1f}%  {name}")
        lines.append("by time running (any code):")
        for name, count in self.own.most_common(top):
            lines.append(f"  {100 * count / max(1, self.samples):5.1f}%  {name}")
        lines.append("by running code and the innermost project function it runs for:")
        for name, count in self.sites.most_common(top):
            lines.append(f"  {100 * count / max(1, self.samples):5.1f}%  {name}")
        return "\n".join(lines)


def profiled(work: Callable[[], T], top: int = 30) -> T:
    """cProfile in every thread started while `work` runs (pools start their threads on first use), summed:
    where the CPU goes (waits show in cumulative time only)."""
    import cProfile
    import io
    import pstats

    profiles: list[cProfile.Profile] = []

    def start(*_: Any) -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()  # replaces this hook in the new thread

    threading.setprofile(start)
    try:
        result = work()
    finally:
        threading.setprofile(None)  # type: ignore[arg-type]
        for profile in profiles:
            profile.disable()  # a no-op off its own thread; the stats are read as they are
    out = io.StringIO()
    if profiles:
        stats = pstats.Stats(profiles[0], stream=out)
        for profile in profiles[1:]:
            stats.add(profile)
        stats.sort_stats("tottime").print_stats(top)
    print(out.getvalue())
    return result


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result
