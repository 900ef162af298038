"""The shared cache against a real redis-server: sharing, isolation by trust configuration, forged and replayed
entries refused, single flight, and Redis killed mid-run."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from provider.config import RedisConfig
from provider.sharedcache import (
    MAX_ENTRY_BYTES,
    POLL_FIRST_SECONDS,
    POLL_MAX_SECONDS,
    SharedCache,
    trust_fingerprint,
)
from tests.redisserver import RedisServer

FACTS = {"verified": True, "digest": "sha256:" + "a" * 64, "authorities": ["release"]}
KEY = "registry.example/team/app@sha256:" + "a" * 64


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", password="s3cret")
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path: Path, server: RedisServer) -> RedisConfig:
    (tmp_path / "hmac.key").write_text("k" * 64)
    (tmp_path / "password").write_text("s3cret\n")
    return RedisConfig(url=server.url, hmac_key_file=tmp_path / "hmac.key", password_file=tmp_path / "password")


def cache(settings: RedisConfig, fingerprint: str = "f" * 64, events: Counter | None = None) -> SharedCache:
    count = (lambda event: events.update([event])) if events is not None else None
    return SharedCache(settings, fingerprint, lead_wait=2.0, count=count)


def raw(server: RedisServer) -> redis.Redis:
    """A client with Redis access but without the HMAC key: what an attacker inside the cluster may have."""
    return redis.Redis(host="127.0.0.1", port=server.port, password=server.password)


def test_two_processes_share_entries(settings: RedisConfig) -> None:
    first, second = cache(settings), cache(settings)
    assert second.get("verify", KEY) is None
    first.put("verify", KEY, FACTS, None, ttl=60)
    entry = second.get("verify", KEY)
    assert entry is not None and entry.value == FACTS and entry.error is None
    assert 55 < entry.ttl <= 60
    first.put("verify", "other:v1", None, ("NOT_FOUND", "no such tag"), ttl=60)
    assert second.get("verify", "other:v1").error == ("NOT_FOUND", "no such tag")


def test_another_trust_configuration_never_sees_the_entry(settings: RedisConfig, tmp_path: Path) -> None:
    (tmp_path / "cosign.pub").write_text("key one")
    before = trust_fingerprint([tmp_path / "cosign.pub"])
    (tmp_path / "cosign.pub").write_text("key two")
    after = trust_fingerprint([tmp_path / "cosign.pub"])
    assert before != after
    cache(settings, before).put("verify", KEY, FACTS, None, ttl=60)
    assert cache(settings, after).get("verify", KEY) is None
    assert cache(settings, before).get("verify", KEY) is not None


def test_entries_written_without_the_key_are_refused(settings: RedisConfig, server: RedisServer) -> None:
    events: Counter = Counter()
    reader = cache(settings, events=events)
    writer = cache(settings)
    writer.put("verify", "registry.example/team/unsigned:v1", {**FACTS, "verified": False}, None, ttl=60)
    attacker = raw(server)
    names = attacker.keys(f"{settings.prefix}:*")
    assert len(names) == 1
    blob = attacker.get(names[0])
    # 1. The signed entry of one image copied onto another image's key.
    attacker.set(reader._name("verify", KEY), blob)
    assert reader.get("verify", KEY) is None
    # 2. A forged value with the old MAC.
    head, mac, payload = blob.split(b".", 2)
    forged = json.loads(payload)
    forged["value"]["verified"] = True
    attacker.set(names[0], b".".join((head, mac, json.dumps(forged).encode())))
    assert reader.get("verify", "registry.example/team/unsigned:v1") is None
    # 3. An oversized value is refused before it is parsed.
    attacker.set(names[0], b"sw1." + b"0" * 64 + b"." + b"[" * (MAX_ENTRY_BYTES + 200))
    assert reader.get("verify", "registry.example/team/unsigned:v1") is None
    assert events["rejected"] == 3 and events["hit"] == 0


def bytes_sent(attacker: redis.Redis) -> int:
    return int(attacker.info("stats")["total_net_output_bytes"])


def test_a_huge_value_is_never_read(settings: RedisConfig, server: RedisServer) -> None:
    events: Counter = Counter()
    reader = cache(settings, events=events)
    attacker = raw(server)
    huge = 64 * 1024 * 1024
    attacker.set(reader._name("verify", KEY), b"sw1." + b"0" * 64 + b"." + b" " * huge)
    before = bytes_sent(attacker)
    assert reader.get("verify", KEY) is None
    # Everything Redis sent to any client in between: the reader's answer and one INFO reply, not 64 MiB. A
    # plain GET sent the whole value, and the wait below repeated it on every poll.
    assert bytes_sent(attacker) - before < reader.max_blob_bytes
    assert events["rejected"] == 1 and reader.available
    # A key of another type is refused too, and is no reason to think Redis is down.
    attacker.delete(reader._name("verify", KEY))
    attacker.rpush(reader._name("verify", KEY), b"x")
    assert reader.get("verify", KEY) is None and events["rejected"] == 2 and reader.available
    # At the limit the value is read (and then refused for its MAC, as any forged entry).
    attacker.set(reader._name("verify", KEY), b"x" * reader.max_blob_bytes)
    before = bytes_sent(attacker)
    assert reader.get("verify", KEY) is None
    assert bytes_sent(attacker) - before >= reader.max_blob_bytes


def test_the_wait_polls_ever_less_often(settings: RedisConfig, server: RedisServer) -> None:
    events: Counter = Counter()
    leader, follower = cache(settings), cache(settings, events=events)
    assert leader.lead("verify", KEY, hold=30) is not None
    attacker = raw(server)
    attacker.set(follower._name("verify", KEY), b"sw1." + b"0" * 64 + b"." + b" " * (8 * 1024 * 1024))
    assert follower.wait("verify", KEY, time.monotonic() + 30) is None
    # Pauses double from the first to the last: however slow the machine, no more polls than this schedule fits
    # in the wait (2 s); 20 ms apart it was a hundred, each carrying the 8 MiB value.
    pauses, total = [], 0.0
    while total < follower.lead_wait:
        pauses.append(min(POLL_FIRST_SECONDS * 2 ** len(pauses), POLL_MAX_SECONDS))
        total += pauses[-1]
    assert 1 <= events["rejected"] <= len(pauses) + 1


def test_an_expired_entry_replayed_with_a_longer_redis_ttl_is_refused(settings: RedisConfig,
                                                                     server: RedisServer) -> None:
    writer = cache(settings)
    writer.put("verify", KEY, FACTS, None, ttl=0.2)
    attacker = raw(server)
    (name,) = attacker.keys(f"{settings.prefix}:*")
    blob = attacker.get(name)
    assert cache(settings).get("verify", KEY) is not None
    time.sleep(0.3)
    attacker.set(name, blob)  # no expiry at all on the Redis side
    assert cache(settings).get("verify", KEY) is None


def test_one_replica_verifies_while_the_others_wait(settings: RedisConfig) -> None:
    replicas = [cache(settings) for _ in range(3)]
    token = replicas[0].lead("verify", KEY, hold=5)
    assert token is not None
    assert replicas[1].lead("verify", KEY, hold=5) is None and replicas[2].lead("verify", KEY, hold=5) is None
    got: list = []
    waiters = [threading.Thread(target=lambda r=r: got.append(r.wait("verify", KEY, time.monotonic() + 10)))
               for r in replicas[1:]]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.1)
    replicas[0].put("verify", KEY, FACTS, None, ttl=60)
    replicas[0].release("verify", KEY, token)
    for waiter in waiters:
        waiter.join(10)
    assert [entry.value for entry in got] == [FACTS, FACTS]
    assert replicas[1].lead("verify", KEY, hold=5) is not None  # released: the next cold miss may lead


def test_a_stuck_leader_costs_a_bounded_wait(settings: RedisConfig) -> None:
    leader, follower = cache(settings), cache(settings)
    assert leader.lead("verify", KEY, hold=30) is not None  # and never answers
    started = time.monotonic()
    assert follower.wait("verify", KEY, time.monotonic() + 30) is None  # lead_wait (2 s) bounds it
    assert time.monotonic() - started < 25
    assert follower.release("verify", KEY, "not-the-holders-token") is None
    assert follower.lead("verify", KEY, hold=1) is None  # the leader's lock was not removed by a stranger


def test_redis_killed_mid_run_is_a_miss_and_then_left_alone(settings: RedisConfig, server: RedisServer) -> None:
    events: Counter = Counter()
    shared = cache(settings, events=events)
    shared.put("verify", KEY, FACTS, None, ttl=60)
    assert shared.get("verify", KEY) is not None
    server.stop()
    assert shared.get("verify", KEY) is None
    assert events["error"] == 1 and not shared.available
    assert shared.get("verify", KEY) is None and shared.lead("verify", KEY, 1) is None
    assert events["error"] == 1 and events["skipped"] == 2  # no second timeout while Redis is known down


def test_a_short_hmac_key_is_refused(settings: RedisConfig, tmp_path: Path) -> None:
    (tmp_path / "short.key").write_text("tooshort")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        SharedCache(RedisConfig(url=settings.url, hmac_key_file=tmp_path / "short.key"), "f" * 64)
