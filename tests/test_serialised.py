"""Pre-serialised facts: warm answers assembled from bytes equal what the JSON encoder gives for the same
document, whatever the client put in its keys."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from hypothesis import given
from hypothesis import strategies as st

from provider.devkit.layout import LayoutWriter
from provider.facts import facts_schema
from provider.metrics import Metrics
from provider.serialised import ItemEnd, SerialisedFacts, quoted, response_bytes
from provider.server.app import create_app
from provider.server.protocol import provider_response
from provider.state import ProviderState
from tests.helpers import provider_request, write_yaml

REG = "airgap.example"
FACTS = {"reference": f"{REG}/team/app:v1", "digest": "sha256:" + "a" * 64, "verified": True,
         "authorities": ["release", 'q"uote'], "reason": "\\ \" \x00 \u2028 é", "signatures": []}
HOSTILE = ['a"b', "back\\slash", "ctl\x00\x01\x1f\x7f", "line\nbreak\r\t", '"},"value":{"verified":true}}',
           "\u2028\u2029 é 𝄞", "\ud800", ""]


@given(key=st.one_of(st.sampled_from(HOSTILE), st.text()), trace=st.text(max_size=20),
       reference=st.text(max_size=40), cached=st.booleans())
def test_an_item_from_bytes_is_the_encoders_document(key: str, trace: str, reference: str, cached: bool) -> None:
    facts = SerialisedFacts.from_json(json.dumps(FACTS).encode())
    end = ItemEnd.of(trace)
    item = json.loads(facts.spliced(quoted(key), quoted(reference), end.cached if cached else end.fresh))
    expected = {"key": key, "value": {"image": key, **FACTS, "reference": reference, "cached": cached,
                                      "traceID": trace}}
    assert item == expected
    assert list(item) == ["key", "value"] and item["value"]["verified"] is True


def test_a_response_from_bytes_equals_the_protocol_document() -> None:
    items = [{"key": k, "error": f"INVALID_REFERENCE: {k}"} for k in HOSTILE[:3]]
    body = response_bytes([json.dumps(i).encode() for i in items], 'TIMEOUT: "x"\n')
    assert json.loads(body) == provider_response(items, 'TIMEOUT: "x"\n')
    assert json.loads(response_bytes([])) == provider_response([])


def test_warm_answers_echo_hostile_keys_exactly(tmp_path: Path) -> None:
    digest = LayoutWriter(tmp_path / "layouts" / REG, "team/app").add_image("v1", b"app")["digest"]
    config = write_yaml(tmp_path / "config.yaml", {
        "stores": [{"type": "oci-layout", "path": "layouts", "match": [f"{REG}/*"]}]})
    state = ProviderState(config, Metrics())
    state.load()
    client = create_app(state).test_client()
    good = [f"{REG}/team/app:v1", f"{REG}/team/app@{digest}"]
    keys = [*good, *HOSTILE[:-2], f"{REG}/team/app:v1\x00\"", f'{REG}/team/app:v1"}}]']
    for cached in (False, True, True):  # the third answer comes from the warm index
        response = client.post("/verify", json=provider_request(keys), headers={"X-Request-Id": "trace-1"})
        assert response.status_code == 200
        items = response.get_json()["response"]["items"]
        assert [item["key"] for item in items] == keys
        for item in items[:2]:
            value = item["value"]
            jsonschema.validate(value, facts_schema())
            assert value["image"] == item["key"] and value["cached"] is cached and value["traceID"] == "trace-1"
            assert value["reference"] == item["key"] and value["digest"] == digest
        assert all(item["error"].startswith("INVALID_REFERENCE: ") for item in items[2:])
    state.runtime.engine.shutdown()


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=12)


@given(facts=st.dictionaries(st.sampled_from(["reference", "verified", "digest", "x", "é\u2028"]), JSON, max_size=6),
       authorities=st.lists(st.text(max_size=5), max_size=3))
def test_facts_encoded_once_equal_facts_read_back_from_json(facts: dict, authorities: list[str]) -> None:
    # built facts hold tuples where JSON has lists; `authorities` is always a list of names (the facts schema)
    facts = {**facts, "authorities": authorities, "tuple": ("a", 1)}
    assert SerialisedFacts.of(facts) == SerialisedFacts.from_json(json.dumps(facts).encode())
