"""The provider endpoints answered in front of Flask give exactly what Flask's routes give for the same request."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

from provider.devkit.layout import LayoutWriter
from provider.metrics import Metrics
from provider.server.app import ENDPOINTS, ProviderEndpoints, create_app
from provider.server.wsgi import HTTPAnswer
from provider.state import ProviderState
from tests.helpers import provider_request, write_yaml

REG = "airgap.example"


@pytest.fixture
def state(tmp_path: Path) -> Iterator[ProviderState]:
    LayoutWriter(tmp_path / "layouts" / REG, "team/app").add_image("v1", b"app")
    config = write_yaml(tmp_path / "config.yaml", {
        "server": {"maxBodyBytes": 4096, "maxKeys": 4},
        "stores": [{"type": "oci-layout", "path": "layouts", "match": [f"{REG}/*"]}]})
    state = ProviderState(config, Metrics())
    state.load()
    yield state
    state.runtime.engine.shutdown()


def call(app: Any, environ: dict[str, Any]) -> HTTPAnswer:
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started["status"], started["headers"] = status, headers

    body = b"".join(app(environ, start_response))
    return HTTPAnswer(int(started["status"].split()[0]), sorted(started["headers"]), body)


def environ(path: str, body: bytes, method: str = "POST") -> dict[str, Any]:
    return EnvironBuilder(path=path, method=method, data=body, content_type="application/json",
                          headers={"X-Request-Id": "trace-1"}).get_environ()


BODIES = [json.dumps(provider_request([f"{REG}/team/app:v1", "Not A Reference", f"{REG}/team/app:v1"])).encode(),
          json.dumps(provider_request([f"{REG}/team/app:v1"] * 5 + ["x"])).encode(),  # over maxKeys
          b'{"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest"',  # not JSON
          b"[" * 40 + b"]" * 40,
          b'{"pad": "' + b"x" * 5000 + b'"}']  # over maxBodyBytes


def test_every_endpoint_answers_as_flask_routing_would(state: ProviderState) -> None:
    app = create_app(state)
    assert isinstance(app.wsgi_app, ProviderEndpoints)
    flask_only = app.wsgi_app.flask_app
    call(app, environ("/verify", BODIES[0]))  # warm: both paths below answer from the cache
    for path in ENDPOINTS:
        for body in BODIES:
            front, routed = call(app, environ(path, body)), call(flask_only, environ(path, body))
            assert front == routed, (path, body[:60])
            assert ("Content-Type", "application/json") in front.headers and json.loads(front.body)["kind"]
    items = json.loads(call(app, environ("/verify", BODIES[0])).body)["response"]["items"]
    assert [item["key"] for item in items] == [f"{REG}/team/app:v1", "Not A Reference"]
    assert items[0]["value"]["cached"] is True and items[0]["value"]["traceID"] == "trace-1"


def test_other_methods_and_paths_still_get_flasks_protocol_shaped_errors(state: ProviderState) -> None:
    app = create_app(state)
    for method, path, status in (("GET", "/verify", 405), ("PUT", "/mutate", 405), ("POST", "/verify/", 404),
                                 ("POST", "/nope", 404)):
        answer = call(app, environ(path, BODIES[0], method))
        assert answer.status == status
        assert f"{method} {path}" in json.loads(answer.body)["response"]["systemError"]


def test_a_body_without_a_length_is_read_as_empty(state: ProviderState) -> None:
    bare = environ("/verify", BODIES[0])
    del bare["CONTENT_LENGTH"]
    bare["wsgi.input"] = io.BytesIO(BODIES[0])
    answer = call(create_app(state), bare)
    assert answer.status == 400 and "not valid JSON" in json.loads(answer.body)["response"]["systemError"]


def test_a_failure_inside_the_handler_is_a_json_500_on_both_paths(state: ProviderState,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(keys: list[str], trace_id: str) -> list[Any]:
        raise RuntimeError("engine bug")

    monkeypatch.setattr(state.runtime.engine, "verify", broken)
    app = create_app(state)
    for wsgi in (app, app.wsgi_app.flask_app):
        answer = call(wsgi, environ("/verify", BODIES[0]))
        assert answer.status == 500
        assert json.loads(answer.body)["response"]["systemError"] == "internal error; see the provider log"


def test_metrics_count_each_answer_once(state: ProviderState) -> None:
    app = create_app(state)
    for _ in range(3):
        call(app, environ("/verify", BODIES[0]))
    registry = state.metrics.registry
    assert registry.get_sample_value("sigwarden_items_total", {"endpoint": "verify", "outcome": "unverified"}) == 3
    assert registry.get_sample_value("sigwarden_items_total",
                                     {"endpoint": "verify", "outcome": "INVALID_REFERENCE"}) == 3
    assert registry.get_sample_value("sigwarden_request_duration_seconds_count", {"endpoint": "verify"}) == 3


def test_mutate_answers_blank_placeholders_unchanged_and_verify_refuses_an_empty_key(state: ProviderState) -> None:
    """A pod template's `image: ""` or `" "` names nothing to pin; /verify keys are never empty (templates skip
    blank images), so there an empty key stays a malformed request."""
    app = create_app(state)
    body = json.dumps(provider_request(["", " ", f"{REG}/team/app:v1"])).encode()
    items = json.loads(call(app, environ("/mutate", body)).body)["response"]["items"]
    assert [(item["key"], item.get("value")) for item in items[:2]] == [("", ""), (" ", " ")]
    assert items[2]["value"].startswith(f"{REG}/team/app:v1@sha256:")
    refused = call(app, environ("/verify", body))
    assert refused.status == 400
    assert json.loads(refused.body)["response"]["systemError"] == (
        "REQUEST_REFUSED: request.keys[0] is an empty string")
