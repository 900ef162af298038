"""Property tests for the ProviderRequest parser: every body is either keys or a BadRequest, nothing else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provider.server.protocol import API_VERSIONS, MAX_NESTING, BadRequest, nesting_depth, parse_provider_request

MAX_KEYS = 16

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
keys = st.lists(st.text(min_size=1, max_size=60), min_size=1, max_size=MAX_KEYS)


def envelope(keys_value: Any, api_version: Any = API_VERSIONS[0], kind: Any = "ProviderRequest") -> bytes:
    return json.dumps({"apiVersion": api_version, "kind": kind, "request": {"keys": keys_value}}).encode()


def outcome(body: bytes) -> list[str] | BadRequest:
    """The parser's answer; any exception other than BadRequest fails the test."""
    try:
        return parse_provider_request(body, MAX_KEYS)
    except BadRequest as exc:
        message = str(exc)
        assert message and len(message) < 400 and "Traceback" not in message
        return exc


@given(keys)
def test_valid_envelopes_give_back_their_keys(values: list[str]) -> None:
    for api_version in API_VERSIONS:
        assert outcome(envelope(values, api_version)) == values


@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_keys_or_a_bad_request(body: bytes) -> None:
    result = outcome(body)
    assert isinstance(result, BadRequest) or all(isinstance(k, str) and k for k in result)


@given(json_values)
def test_any_json_document_is_keys_or_a_bad_request(document: Any) -> None:
    result = outcome(json.dumps(document).encode())
    assert isinstance(result, BadRequest)  # no random document is a ProviderRequest


@given(keys_value=json_values, api_version=json_values | st.sampled_from(API_VERSIONS),
       kind=json_values | st.just("ProviderRequest"))
def test_every_envelope_shape_is_keys_or_a_bad_request(keys_value: Any, api_version: Any, kind: Any) -> None:
    result = outcome(envelope(keys_value, api_version, kind))
    if not isinstance(result, BadRequest):
        assert result == keys_value and api_version in API_VERSIONS and kind == "ProviderRequest"


@given(st.integers(min_value=MAX_NESTING + 1, max_value=20_000), st.sampled_from(["[", '{"a":']))
def test_deep_nesting_is_refused_at_any_depth(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    inner = "[" * depth + "]" * depth if opener == "[" else opener * depth + "1" + closer * depth
    for body in (inner, envelope(["alpine"]).decode()[:-2] + ', "extra": ' + inner + "}}"):
        for encoding in ("utf-8", "utf-16", "utf-32-be"):  # the JSON parser reads all three
            result = outcome(body.encode(encoding))
            assert isinstance(result, BadRequest) and "nested" in str(result)


def test_brackets_inside_keys_are_not_nesting() -> None:
    values = ["[" * 40 + "{" * 40, "registry.example/app:v1"]
    assert outcome(envelope(values)) == values
    assert outcome(envelope(values).decode().encode("utf-16")) == values


@given(st.integers(min_value=0, max_value=MAX_NESTING - 3))
def test_extra_fields_within_the_depth_limit_are_ignored(depth: int) -> None:
    body = json.loads(envelope(["alpine"]))
    body["extra"] = json.loads("[" * depth + "]" * depth) if depth else 1
    assert outcome(json.dumps(body).encode()) == ["alpine"]


@pytest.mark.parametrize(("value", "depth"), [(1, 0), ([], 1), ({"a": [1, {"b": []}]}, 4), ([[[]], []], 3)])
def test_nesting_depth(value: Any, depth: int) -> None:
    assert nesting_depth(value) == depth


def test_a_huge_value_is_not_echoed_back() -> None:
    result = outcome(envelope(["alpine"], api_version="x" * 1_000_000))
    assert isinstance(result, BadRequest) and len(str(result)) < 300
