"""Whatever a client sends, the real server answers a ProviderResponse: 200 with per-item errors, or a 4xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider.devkit.layout import LayoutWriter
from provider.devkit.process import ProviderProcess
from tests.helpers import ProviderPKI, free_port, write_yaml
from tests.test_protocol import json_values

REG = "airgap.example"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProviderProcess, requests.Session]]:
    root = tmp_path_factory.mktemp("bad-input")
    pki = ProviderPKI.create(root / "pki")
    LayoutWriter(root / "layouts" / REG, "team/app").add_image("v1", b"app")
    port, metrics_port = free_port(), free_port()
    config = write_yaml(root / "config.yaml", {
        "server": {"listen": f"127.0.0.1:{port}", "metricsListen": f"127.0.0.1:{metrics_port}", "maxKeys": 8,
                   "tls": {"cert": pki.path("server.crt"), "key": pki.path("server.key"),
                           "clientCA": pki.path("client-ca.crt")}},
        "stores": [{"type": "oci-layout", "path": str(root / "layouts"), "match": [f"{REG}/*"]}]})
    provider = ProviderProcess(config, port, metrics_port)
    try:
        provider.wait_ready()
        session = requests.Session()
        session.trust_env = False
        session.cert, session.verify = pki.client_pair, pki.path("ca.crt")
        yield provider, session
    finally:
        provider.stop()


# Keys that reach the engine: odd text of every kind, including near-references and control characters.
odd_keys = st.lists(st.text(max_size=40) | st.from_regex(r"[a-z0-9./:@_-]{1,60}", fullmatch=True)
                    | st.sampled_from([f"{REG}/team/app:v1", f"{REG}/team/app@sha256:" + "0" * 64,
                                       "\x00", "a" * 5000, "\ud800", "alpine:é", " alpine"]),
                    min_size=0, max_size=10)
shapes = st.one_of(
    odd_keys.map(lambda keys: {"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
                               "request": {"keys": keys}}),
    st.fixed_dictionaries({"apiVersion": st.sampled_from(["externaldata.gatekeeper.sh/v1alpha1", "v1"]) | json_values,
                           "kind": st.just("ProviderRequest") | json_values,
                           "request": json_values | st.fixed_dictionaries({"keys": json_values | odd_keys})}),
    json_values,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=shapes, path=st.sampled_from(["/verify", "/mutate"]))
def test_any_envelope_gets_a_provider_response_never_a_500(served: tuple[ProviderProcess, requests.Session],
                                                           body: Any, path: str) -> None:
    provider, session = served
    response = session.post(provider.url + path, data=json.dumps(body), timeout=30)
    assert response.status_code in (200, 400), response.text[:300]
    answer = response.json()
    assert answer["kind"] == "ProviderResponse" and "Traceback" not in response.text
    if response.status_code == 400:
        assert answer["response"]["systemError"] and answer["response"]["items"] == []
        return
    for item in answer["response"]["items"]:
        assert ("value" in item) != ("error" in item)
        if "error" in item:
            assert item["error"].split(":", 1)[0] in ("INVALID_REFERENCE", "NOT_FOUND", "UNAUTHORIZED",
                                                      "REGISTRY_UNAVAILABLE", "TIMEOUT")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=200))
def test_any_body_bytes_get_a_provider_response(served: tuple[ProviderProcess, requests.Session],
                                                raw: bytes) -> None:
    provider, session = served
    response = session.post(provider.url + "/verify", data=raw, timeout=30)
    assert response.status_code in (200, 400) and response.json()["kind"] == "ProviderResponse"


def test_garbage_on_the_wire_gets_a_json_answer(served: tuple[ProviderProcess, requests.Session]) -> None:
    provider, session = served
    for method, path in (("PUT", "/verify"), ("POST", "/%ff%00"), ("DELETE", "/mutate")):
        response = session.request(method, provider.url + path, data=b"{}", timeout=30)
        assert 400 <= response.status_code < 500 and response.json()["kind"] == "ProviderResponse"
    headers = {f"X-Filler-{i}": "v" * 1000 for i in range(64)}  # 64 KiB of headers
    response = session.post(provider.url + "/verify", data=b"{}", headers=headers, timeout=30)
    assert response.status_code == 431 and "server.maxHeaderBytes" in response.json()["response"]["systemError"]
