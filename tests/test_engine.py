from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import jsonschema
import pytest

from provider.config import build_config
from provider.devkit.layout import LayoutWriter
from provider.digests import compute_digest
from provider.engine import Engine
from provider.facts import facts_schema
from tests.helpers import write_yaml

REG = "airgap.example"


def make_engine(tmp_path: Path, **verification: object) -> tuple[Engine, Path]:
    root = tmp_path / "layouts"
    root.mkdir(exist_ok=True)
    data = {"server": {"requestDeadline": "500ms"},
            "verification": {"concurrency": 4, **verification},
            "stores": [{"type": "oci-layout", "path": "layouts", "match": [f"{REG}/*"]}]}
    source = write_yaml(tmp_path / "config.yaml", data)
    return Engine(build_config(data, source)), root


def blocking_image(root: Path, name: str = "slow/app", tag: str = "v1") -> tuple[Path, bytes]:
    """An image whose manifest blob is a FIFO: reading it blocks until the test writes the bytes."""
    writer = LayoutWriter(root / REG, name)
    descriptor = writer.add_image(tag, b"slow")
    blob = writer.path / "blobs" / "sha256" / descriptor["digest"].split(":", 1)[1]
    data = blob.read_bytes()
    blob.unlink()
    os.mkfifo(blob)
    return blob, data


def release(fifo: Path, data: bytes) -> None:
    with fifo.open("wb") as handle:  # blocks until the store has the FIFO open
        handle.write(data)


def test_batch_answers_each_distinct_key_in_order(tmp_path: Path) -> None:
    engine, root = make_engine(tmp_path)
    app = LayoutWriter(root / REG, "team/app")
    digest = app.add_image("v1")["digest"]
    keys = [f"{REG}/team/app:v1", "Bad/Ref", f"{REG}/team/app:v1", f"{REG}/team/app:nope",
            f"{REG}/team/app@{digest}", "other.example/app:v1"]
    items = engine.verify(keys, "trace-1")
    assert [i.key for i in items] == [keys[0], keys[1], keys[3], keys[4], keys[5]]
    first, bad, missing, pinned, unrouted = items
    assert first.value["digest"] == digest and first.value["verified"] is False
    assert first.value["reason"] == f"no configured authority covers {REG}/team/app"
    assert first.value["traceID"] == "trace-1" and first.value["image"] == keys[0]
    assert first.value["pinned"] == f"{REG}/team/app@{digest}"
    assert bad.error.startswith("INVALID_REFERENCE: ") and "lowercase" in bad.error
    assert missing.error.startswith("NOT_FOUND: ") and "'nope'" in missing.error
    assert pinned.value["digest"] == digest
    assert unrouted.error.startswith("NOT_FOUND: no store is configured for other.example/app")
    for item in (first, pinned):
        jsonschema.validate(item.value, facts_schema())
    engine.shutdown()


def test_second_request_is_served_from_cache(tmp_path: Path) -> None:
    engine, root = make_engine(tmp_path)
    LayoutWriter(root / REG, "team/app").add_image("v1")
    first = engine.verify([f"{REG}/team/app:v1"], "t1")[0].value
    second = engine.verify([f"{REG}/team/app:v1"], "t2")[0].value
    assert first["cached"] is False and second["cached"] is True
    assert second["traceID"] == "t2" and second["checkedAt"] == first["checkedAt"]
    hits = engine.metrics.cache_hits.labels("verify")._value.get()
    assert hits == 1
    engine.shutdown()


def test_unverified_and_error_results_expire_on_their_own_ttls(tmp_path: Path) -> None:
    engine, root = make_engine(tmp_path, cache={"ttl": "1h", "unverifiedTtl": "200ms", "errorTtl": "200ms"})
    writer = LayoutWriter(root / REG, "team/app")
    writer.add_image("v1")
    assert engine.verify([f"{REG}/team/app:v1"], "t")[0].value["cached"] is False
    assert engine.verify([f"{REG}/team/app:v1"], "t")[0].value["cached"] is True
    assert engine.verify([f"{REG}/team/app:v2"], "t")[0].error.startswith("NOT_FOUND")
    time.sleep(0.3)
    writer.add_image("v2")  # the image appears: the cached error must not outlive errorTtl
    assert engine.verify([f"{REG}/team/app:v1"], "t")[0].value["cached"] is False
    assert engine.verify([f"{REG}/team/app:v2"], "t")[0].value["digest"].startswith("sha256:")
    engine.shutdown()


def test_deadline_answers_timeout_and_work_fills_the_cache(tmp_path: Path) -> None:
    engine, root = make_engine(tmp_path)
    LayoutWriter(root / REG, "team/app").add_image("v1")
    fifo, data = blocking_image(root)
    started = time.monotonic()
    items = engine.verify([f"{REG}/slow/app:v1", f"{REG}/team/app:v1"], "t")
    waited = time.monotonic() - started
    # The store is still blocked (nothing was written to the FIFO), yet the request was answered.
    assert items[0].error.startswith("TIMEOUT: verify of airgap.example/slow/app:v1 did not finish within 0.5s")
    assert items[1].value["digest"].startswith("sha256:")
    assert waited >= 0.5  # it did wait for the deadline, not give up early
    release(fifo, data)  # the background job, not a new one, reads it: a new reader would block
    for _ in range(100):
        again = engine.verify([f"{REG}/slow/app:v1"], "t")[0]
        if not again.error and again.value["cached"]:
            break
        time.sleep(0.05)
    assert again.value["digest"] == compute_digest(data) and again.value["cached"] is True
    engine.shutdown()


def test_concurrent_requests_share_one_inflight_verification(tmp_path: Path) -> None:
    engine, root = make_engine(tmp_path, concurrency=8)
    fifo, data = blocking_image(root)
    results: list[object] = []

    def ask() -> None:
        results.append(engine.verify([f"{REG}/slow/app:v1"], "t", deadline=time.monotonic() + 20)[0])

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    release(fifo, data)  # one write satisfies exactly one reader: a second job would block forever
    for thread in threads:
        thread.join(timeout=25)
    assert len(results) == 4
    assert {r.value["digest"] for r in results} == {compute_digest(data)}
    assert engine.metrics.cache_misses.labels("verify")._value.get() == 4
    engine.shutdown()


def test_resolve_pins_and_keeps_pinned_references(tmp_path: Path) -> None:
    engine, root = make_engine(tmp_path)
    digest = LayoutWriter(root / REG, "team/app").add_image("v1")["digest"]
    pinned = f"{REG}/team/app@sha256:{'c' * 64}"
    items = engine.resolve([f"{REG}/team/app:v1", pinned, "nope:"], "t")
    assert items[0].value == f"{REG}/team/app:v1@{digest}"
    assert items[1].value == pinned
    assert items[2].error.startswith("INVALID_REFERENCE")
    engine.shutdown()
    engine, _ = make_engine(tmp_path)
    object.__setattr__(engine.config, "mutation", type(engine.config.mutation)(keep_tag=False))
    assert engine.resolve([f"{REG}/team/app:v1"], "t")[0].value == f"{REG}/team/app@{digest}"
    engine.shutdown()


def test_index_images_report_platforms(tmp_path: Path) -> None:
    engine, root = make_engine(tmp_path)
    index = LayoutWriter(root / REG, "multi").add_index("v1", {"linux/amd64": b"a", "linux/arm64": b"b"})
    facts = engine.verify([f"{REG}/multi:v1"], "t")[0].value
    assert facts["digest"] == index["digest"]
    assert facts["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [p["architecture"] for p in facts["platforms"]] == ["amd64", "arm64"]
    jsonschema.validate(facts, facts_schema())
    engine.shutdown()


def test_tampered_manifest_is_an_error_never_facts(tmp_path: Path) -> None:
    engine, root = make_engine(tmp_path)
    writer = LayoutWriter(root / REG, "team/app")
    digest = writer.add_image("v1")["digest"]
    blob = writer.path / "blobs" / "sha256" / digest.split(":", 1)[1]
    blob.write_bytes(blob.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion":2 '))
    item = engine.verify([f"{REG}/team/app:v1"], "t")[0]
    assert item.value is None
    assert item.error.startswith("REGISTRY_UNAVAILABLE: ") and f"not the requested {digest}" in item.error
    engine.shutdown()


@pytest.mark.parametrize("size", [5 * 1024 * 1024])
def test_oversize_manifest_is_refused(tmp_path: Path, size: int) -> None:
    engine, root = make_engine(tmp_path)
    writer = LayoutWriter(root / REG, "big")
    writer.add_manifest(b'{"schemaVersion":2,"pad":"' + b"x" * size + b'"}', "v1")
    item = engine.verify([f"{REG}/big:v1"], "t")[0]
    assert item.error.startswith("REGISTRY_UNAVAILABLE: ") and "limit" in item.error
    engine.shutdown()


def test_one_cache_entry_per_repository_and_digest(tmp_path: Path) -> None:
    engine, root = make_engine(tmp_path)
    writer = LayoutWriter(root / REG, "team/app")
    digest = writer.add_image("v1")["digest"]
    writer.add_image("alias")  # the same content: the same digest under a second tag
    first = engine.verify([f"{REG}/team/app:v1"], "t")[0].value
    spellings = [f"{REG}/team/app@{digest}", f"{REG}/team/app:v1@{digest}", f"{REG}/team/app:alias"]
    others = engine.verify(spellings, "t")
    assert first["cached"] is False
    # Both digest spellings are cache hits; the second tag needs its tag resolved, but no new verification.
    assert [item.value["cached"] for item in others][:2] == [True, True]
    # Each answer names the reference it was asked about; the facts themselves are the same object.
    assert [item.value["reference"] for item in others] == spellings
    assert {item.value["checkedAt"] for item in others} == {first["checkedAt"]}
    facts_keys = [key for key in engine._cache if key[0] == "facts"]
    assert facts_keys == [("facts", f"{REG}/team/app", digest)]
    engine.shutdown()


def test_a_repointed_tag_is_seen_after_tag_ttl_not_after_the_facts_ttl(tmp_path: Path) -> None:
    engine, root = make_engine(tmp_path, cache={"ttl": "1h", "unverifiedTtl": "1h", "tagTtl": "200ms"})
    writer = LayoutWriter(root / REG, "team/app")
    old = writer.add_image("v1", b"old")["digest"]
    assert engine.verify([f"{REG}/team/app:v1"], "t")[0].value["digest"] == old
    new = writer.add_image("v1", b"new")["digest"]  # the tag now names other content
    assert new != old
    time.sleep(0.3)  # past tagTtl, far within the facts TTL of the old digest
    again = engine.verify([f"{REG}/team/app:v1"], "t")[0].value
    assert again["digest"] == new and again["cached"] is False
    assert engine.resolve([f"{REG}/team/app:v1"], "t")[0].value == f"{REG}/team/app:v1@{new}"
    engine.shutdown()


def test_cached_errors_keep_a_reason_not_an_exception(tmp_path: Path) -> None:
    engine, _ = make_engine(tmp_path)
    error = engine.verify([f"{REG}/team/missing:v1"], "t")[0].error
    assert error.startswith("NOT_FOUND: ")
    stored = list(engine._cache.values())
    assert stored and all(type(result.error) is str and not isinstance(result.value, BaseException)
                          for result in stored)
    assert engine.verify([f"{REG}/team/missing:v1"], "t")[0].error == error  # answered from the cache
    assert engine.metrics.cache_hits.labels("verify")._value.get() == 1
    engine.shutdown()


def test_cache_stays_within_max_bytes(tmp_path: Path) -> None:
    from provider.engine import WARM_SHARE
    from provider.results import ENTRY_OVERHEAD, Result

    engine, _ = make_engine(tmp_path, cache={"maxBytes": "1MiB"})
    facts = b"{" + b'"x":0,' * 300 + b'"y":1}'
    for index in range(5000):  # ~12 MiB of results offered to a 1 MiB cache
        with engine._lock:
            engine._remember(("facts", f"{REG}/app{index}", "sha256:" + "0" * 64), Result(facts, "", 3600.0))
    assert engine.cache_bytes <= 1024 * 1024
    # maxBytes holds the cache and the warm index: the index's share is not the cache's.
    assert engine.cache_entries() == (1024 * 1024 - 1024 * 1024 // WARM_SHARE) // (len(facts) + ENTRY_OVERHEAD)
    assert ("facts", f"{REG}/app4999", "sha256:" + "0" * 64) in engine._cache  # least recently used went first
    assert ("facts", f"{REG}/app0", "sha256:" + "0" * 64) not in engine._cache
    engine.shutdown()


def test_mutate_answers_within_its_own_deadline(tmp_path: Path) -> None:
    from provider.engine import transient_system_error

    engine, root = make_engine(tmp_path, concurrency=4)
    object.__setattr__(engine.config, "mutation", type(engine.config.mutation)(deadline=0.2))
    fifo, data = blocking_image(root)
    item = engine.resolve([f"{REG}/slow/app:v1"], "t")[0]
    assert item.error.startswith("TIMEOUT: resolve of airgap.example/slow/app:v1 did not finish within 0.2s")
    assert item.transient is True
    assert transient_system_error([item]) == "TIMEOUT: not finished in time, retry shortly: airgap.example/slow/app:v1"
    release(fifo, data)
    engine.shutdown()
