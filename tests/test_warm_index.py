"""The warm index (raw key to answer) never answers otherwise than the full path would.

The property test drives one provider state through random requests (spellings of the same images, pinned and
tagged, invalid and blank keys), tags re-pointed in the store, time passing for the cache (entries expire and are
purged) and config reloads, and after each step compares the answers given through the index with the answers of
the full path (parse, normalise, cache lookups), byte for byte.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider.devkit import cosign
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine, Item
from provider.metrics import Metrics
from provider.state import ProviderState
from tests.helpers import write_yaml

REG = "airgap.example"
KEY = ec.generate_private_key(ec.SECP256R1())


class World:
    """A provider state over an OCI layout store: one signed image, unsigned images, tags to re-point."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "cosign.pub").write_bytes(cosign.public_pem(KEY))
        self.app = LayoutWriter(root / "layouts" / REG, "team/app")
        self.hub = LayoutWriter(root / "layouts" / "docker.io", "library/app")
        self.contents = 0
        self.digests = {"app": [self.point("app", "v1"), self.point("app", "v2")],
                        "hub": [self.point("hub", "v1")]}
        self.signed = self.app.add_image("signed", b"signed")["digest"]
        cosign.sign_image(self.app, self.signed, f"{REG}/team/app", KEY)
        self.generation = 0
        self.write_config()
        self.state = ProviderState(root / "config.yaml", Metrics())
        self.state.load()

    def point(self, repository: str, tag: str) -> str:
        """(Re-)point `tag` at new content; returns the new digest."""
        self.contents += 1
        writer = self.app if repository == "app" else self.hub
        return str(writer.add_image(tag, f"content {self.contents}".encode())["digest"])

    def write_config(self) -> None:
        # Each generation changes what mutation answers (keepTag, exemptions), so a stale index would show.
        data: dict[str, Any] = {
            "server": {"requestDeadline": "10s"},
            "mutation": {"deadline": "10s", "keepTag": self.generation % 2 == 1,
                         "exemptImages": [f"{REG}/team/app:v2"] if self.generation % 3 == 2 else []},
            "verification": {"concurrency": 4, "cache": {"ttl": "1h", "unverifiedTtl": "30m", "errorTtl": "10m",
                                                         "tagTtl": "2m"}},
            "stores": [{"type": "oci-layout", "path": "layouts", "match": ["*"]}],
            "authorities": [{"name": "release", "cosign": {"publicKeys": ["cosign.pub"]}}]}
        write_yaml(self.root / "config.yaml", data)

    @property
    def engine(self) -> Engine:
        assert self.state.runtime is not None
        return self.state.runtime.engine

    def keys(self) -> list[str]:
        """Spellings of the same images, pinned or not, and keys that are not references at all."""
        app, hub = self.digests["app"][-1], self.digests["hub"][-1]
        return [f"{REG}/team/app:v1", f"{REG}/team/app:v2", f"{REG}/team/app@{app}", f"{REG}/team/app:v1@{app}",
                f"{REG}/team/app:signed", f"{REG}/team/app@{self.signed}", f"{REG}/team/app:missing",
                "app:v1", "library/app:v1", "docker.io/library/app:v1", "index.docker.io/library/app:v1",
                f"docker.io/library/app@{hub}", "app", "Bad/Ref", "", " ", f"{REG}/team/app:v1 "]


def view(items: list[Item]) -> list[tuple[bytes, str, tuple[str, ...], bool]]:
    return [(item.to_bytes(), item.outcome, item.vouched_by, item.transient) for item in items]


def agree(world: World, kind: str, keys: list[str]) -> None:
    """Ask (filling the cache), then: the full path, the index, and the index again all give the same bytes."""
    engine = world.engine
    run = engine.verify if kind == "verify" else engine.resolve
    if kind == "verify":
        keys = [key for key in keys if key]  # an empty key is refused with the request on /verify
    run(keys, "trace")
    hits = engine.metrics.cache_hits.labels(kind)
    before = hits._value.get()
    full = view(run(keys, "trace", warm=False))
    counted_full, before = hits._value.get() - before, hits._value.get()
    indexed = view(run(keys, "trace"))
    counted_indexed = hits._value.get() - before
    again = view(run(keys, "trace"))
    assert indexed == full
    assert again == full
    assert counted_indexed == counted_full  # an index hit is a cache hit, an answer needing no cache is not


steps = st.lists(st.one_of(
    st.tuples(st.just("ask"), st.sampled_from(["verify", "resolve"]),
              st.lists(st.integers(min_value=0, max_value=16), min_size=1, max_size=8),
              st.lists(st.text(max_size=12), max_size=2)),
    st.tuples(st.just("repoint"), st.sampled_from(["app", "hub"]), st.sampled_from(["v1", "v2"])),
    st.tuples(st.just("time"), st.sampled_from([30.0, 150.0, 700.0, 2000.0, 4000.0])),
    st.tuples(st.just("reload"))), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_the_warm_index_answers_as_the_full_path_would(tmp_path_factory: Any, steps: list[tuple[Any, ...]]) -> None:
    world = World(tmp_path_factory.mktemp("warm"))
    try:
        for step in steps:
            if step[0] == "ask":
                _, kind, picks, extra = step
                pool = world.keys()
                agree(world, kind, [pool[i] for i in picks] + extra)
            elif step[0] == "repoint":
                _, repository, tag = step
                if not (repository == "hub" and tag == "v2"):
                    world.digests[repository].append(world.point(repository, tag))
            elif step[0] == "time":
                # Time passes for the cache: whatever expired by then is purged (tags after 2 min, errors after 10).
                with world.engine._lock:
                    world.engine._cache.expire(time.monotonic() + step[1])
            else:
                world.generation += 1
                world.write_config()
                world.state.load()
        agree(world, "verify", world.keys())
        agree(world, "resolve", world.keys())
        assert world.engine.warm_entries() > 0
    finally:
        world.engine.shutdown()


def test_a_repointed_tag_is_answered_anew_once_its_entry_is_gone(tmp_path: Path) -> None:
    world = World(tmp_path)
    engine, key = world.engine, f"{REG}/team/app:v1"
    old = world.digests["app"][0]
    for _ in range(2):  # the second answer comes from the cache and is indexed
        assert engine.verify([key], "t")[0].value["digest"] == old
    assert engine.warm_entries() == 1
    assert engine.verify([key], "t")[0].value["digest"] == old  # from the index
    new = world.point("app", "v1")
    with engine._lock:
        engine._cache.expire(time.monotonic() + 150)  # past tagTtl (2 min): the tag's entry is purged
    fresh = engine.verify([key], "t")[0].value
    assert fresh["digest"] == new and fresh["cached"] is False
    assert engine.resolve([key], "t")[0].value == f"{REG}/team/app@{new}"
    engine.shutdown()


def test_a_config_reload_starts_an_empty_index(tmp_path: Path) -> None:
    world = World(tmp_path)
    key = f"{REG}/team/app:v1"
    for _ in range(2):
        assert world.engine.resolve([key], "t")[0].value == f"{REG}/team/app@{world.digests['app'][0]}"
    assert world.engine.warm_entries() == 1
    world.generation = 1  # keepTag: the pinned answer keeps the tag
    world.write_config()
    world.state.load()
    assert world.engine.warm_entries() == 0
    assert world.engine.resolve([key], "t")[0].value == f"{key}@{world.digests['app'][0]}"
    world.engine.shutdown()


def test_index_entries_stay_within_their_share_of_max_bytes(tmp_path: Path) -> None:
    from provider.engine import WARM_SHARE

    world = World(tmp_path)
    engine = world.engine
    budget = engine.config.verification.cache.max_bytes // WARM_SHARE
    keys = [f"Bad/Ref{i}" for i in range(budget // 400 + 200)]  # invalid references are indexed too
    for start in range(0, len(keys), 1000):
        engine.verify(keys[start:start + 1000], "t")
    assert engine._warm_bytes <= budget
    assert engine.warm_entries() < len(keys)
    engine.shutdown()


def test_an_evicted_entry_takes_its_index_entries_with_it(tmp_path: Path) -> None:
    world = World(tmp_path)
    engine, key = world.engine, f"{REG}/team/app@{world.signed}"
    for _ in range(2):
        assert engine.verify([key], "t")[0].value["verified"] is True
    assert engine.warm_entries() == 1
    with engine._lock:
        del engine._cache[("facts", f"{REG}/team/app", world.signed)]  # as the least recently used would go
    again = engine.verify([key], "t")[0].value
    assert again["verified"] is True and again["cached"] is False  # verified anew, not answered from the index
    engine.shutdown()


def test_the_cache_mirror_follows_evictions(tmp_path: Path) -> None:
    from provider.config import build_config
    from provider.results import Result

    (tmp_path / "layouts").mkdir()
    data = {"verification": {"cache": {"maxBytes": "1MiB"}},
            "stores": [{"type": "oci-layout", "path": "layouts", "match": ["*"]}]}
    engine = Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))
    with engine._lock:
        for index in range(500):  # about 2 MiB offered to the 896 KiB the cache holds: many are evicted again
            engine._remember(("facts", f"{REG}/app{index}", "sha256:" + "0" * 64), Result(b"x" * 4000, "", 3600.0))
        assert set(engine._cache.held) == set(engine._cache) and 0 < len(engine._cache) < 500
        assert all(engine._cache.held[key][0] is engine._cache[key] for key in engine._cache)
    engine.shutdown()
