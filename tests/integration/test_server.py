"""The provider under a real gunicorn with real TLS and mTLS on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import requests
import yaml

from provider.devkit.layout import LayoutWriter
from provider.devkit.pki import issue, make_ca
from provider.devkit.process import ProviderProcess
from provider.digests import compute_digest
from provider.facts import facts_schema
from provider.metrics import Metrics
from provider.server.health import create_health_app, serve_health
from provider.server.pod import StatusBoard, StatusPublisher, pod_registry
from provider.state import ProviderState
from tests.helpers import (
    GATEKEEPER_NAME,
    ProviderPKI,
    free_port,
    metric_value,
    provider_request,
    wait_for,
    write_yaml,
)

REG = "airgap.example"
Start = Callable[..., ProviderProcess]


@pytest.fixture
def layouts(tmp_path: Path) -> Path:
    root = tmp_path / "layouts"
    LayoutWriter(root / REG, "team/app").add_image("v1", b"app")
    LayoutWriter(root / REG, "team/other").add_image("v2", b"other")
    return root


def layout_config(root: Path) -> dict:
    return {"stores": [{"type": "oci-layout", "path": str(root), "match": [f"{REG}/*"]}]}


def post(provider: ProviderProcess, pki: ProviderPKI, body: object, path: str = "/verify",
         cert: tuple[str, str] | None = None, **kwargs: object) -> requests.Response:
    send = {"data": body} if isinstance(body, (bytes, str)) else {"json": body}
    return requests.post(provider.url + path, cert=cert or pki.client_pair, verify=pki.path("ca.crt"),
                         timeout=10, **send, **kwargs)


def test_verify_answers_each_distinct_key_in_order_with_schema_valid_facts(
        start_provider: Start, pki: ProviderPKI, layouts: Path) -> None:
    provider = start_provider(layout_config(layouts))
    keys = [f"{REG}/team/app:v1", f"{REG}/team/other:v2", f"{REG}/team/app:v1", "acme/UPPER", f"{REG}/nope:v1"]
    response = post(provider, pki, provider_request(keys))
    assert response.status_code == 200
    body = response.json()
    assert body["apiVersion"] == "externaldata.gatekeeper.sh/v1beta1" and body["kind"] == "ProviderResponse"
    assert body["response"]["idempotent"] is True and body["response"]["systemError"] == ""
    items = body["response"]["items"]
    assert [i["key"] for i in items] == [keys[0], keys[1], keys[3], keys[4]]
    for item in items[:2]:
        jsonschema.validate(item["value"], facts_schema())
        assert item["value"]["verified"] is False
    trace_ids = {i["value"]["traceID"] for i in items[:2]}
    assert len(trace_ids) == 1 and trace_ids.pop()
    assert items[2]["error"].startswith("INVALID_REFERENCE: ")
    assert items[3]["error"].startswith("NOT_FOUND: ")
    alias = post(provider, pki, provider_request(keys[:1], "externaldata.gatekeeper.sh/v1alpha1"),
                 path="/ratify/gatekeeper/v1/verify")
    assert alias.status_code == 200
    assert alias.json()["response"]["items"][0]["value"]["cached"] is True
    log = provider.log()
    assert '"msg": "request"' in log and '"keys": 5' in log and '"outcomes"' in log


def test_mutate_pins_digests(start_provider: Start, pki: ProviderPKI, layouts: Path) -> None:
    provider = start_provider(layout_config(layouts))
    digest = compute_digest((layouts / REG / "team/app/index.json").read_bytes())  # not the image digest
    items = post(provider, pki, provider_request([f"{REG}/team/app:v1"]), "/mutate").json()["response"]["items"]
    pinned = items[0]["value"]
    assert pinned.startswith(f"{REG}/team/app:v1@sha256:") and digest not in pinned
    again = post(provider, pki, provider_request([pinned]), "/ratify/gatekeeper/v1/mutate").json()
    assert again["response"]["items"][0]["value"] == pinned


def test_handshake_refuses_missing_or_foreign_client_certificates(start_provider: Start, pki: ProviderPKI) -> None:
    provider = start_provider()
    for cert in (None, (pki.path("stranger.crt"), pki.path("stranger.key"))):
        with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
            requests.post(provider.url + "/verify", json=provider_request(["alpine"]), cert=cert,
                          verify=pki.path("ca.crt"), timeout=10)
    assert post(provider, pki, b"{}").status_code == 400  # the right client certificate gets through


def test_pinned_client_names(start_provider: Start, pki: ProviderPKI) -> None:
    wrong = start_provider(client_names=["someone-else.gatekeeper-system.svc"])
    response = post(wrong, pki, provider_request(["alpine"]))
    assert response.status_code == 403
    assert GATEKEEPER_NAME in response.json()["response"]["systemError"]
    right = start_provider(client_names=[GATEKEEPER_NAME])
    assert post(right, pki, b"{}").status_code == 400  # past the name check, into request validation


@pytest.mark.parametrize(("body", "problem"), [
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    ({"apiVersion": "v1", "kind": "ProviderRequest", "request": {"keys": ["a"]}}, "apiVersion must be"),
    ({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "Pod", "request": {"keys": ["a"]}},
     "kind must be ProviderRequest"),
    (provider_request("alpine"), "request.keys must be a list"),
    (provider_request(["alpine", 7]), "request.keys[1] must be a string"),
    (provider_request([]), "request.keys is empty"),
    (provider_request(["alpine", ""]), "request.keys[1] is an empty string"),
    (provider_request([f"img{i}" for i in range(11)]), "more than the limit of 10"),
    (b'{"pad": "' + b"x" * 300_000 + b'"}', "over the limit of 262144"),
])
def test_malformed_requests_get_400_with_a_system_error(start_provider: Start, pki: ProviderPKI, body: object,
                                                        problem: str) -> None:
    provider = start_provider({"server": {"maxKeys": 10, "maxBodyBytes": 262144}})
    response = post(provider, pki, body)
    assert response.status_code == 400
    system_error = response.json()["response"]["systemError"]
    assert problem in system_error
    # Templates tell a refused request from an unavailable provider by this code (allowOnError never covers it).
    assert system_error.startswith("REQUEST_REFUSED: ")
    assert "Traceback" not in response.text and response.json()["response"]["items"] == []


def test_unknown_paths_and_methods_answer_in_protocol_shape(start_provider: Start, pki: ProviderPKI) -> None:
    provider = start_provider()
    missing = post(provider, pki, provider_request(["a"]), "/nowhere")
    assert missing.status_code == 404 and "POST /verify" in missing.json()["response"]["systemError"]
    wrong = requests.get(provider.url + "/verify", cert=pki.client_pair, verify=pki.path("ca.crt"), timeout=10)
    assert wrong.status_code == 405 and wrong.json()["kind"] == "ProviderResponse"


def test_deadline_holds_and_late_work_lands_in_the_cache(start_provider: Start, pki: ProviderPKI,
                                                         layouts: Path) -> None:
    writer = LayoutWriter(layouts / REG, "slow/app")
    digest = writer.add_image("v1", b"slow")["digest"]
    blob = writer.path / "blobs" / "sha256" / digest.split(":", 1)[1]
    data = blob.read_bytes()
    blob.unlink()
    os.mkfifo(blob)  # reading the manifest blocks until the test writes it
    provider = start_provider({**layout_config(layouts), "server": {"requestDeadline": "700ms"}})
    started = time.monotonic()
    response = post(provider, pki, provider_request([f"{REG}/slow/app:v1", f"{REG}/team/app:v1"]))
    assert time.monotonic() - started >= 0.7
    answer = response.json()["response"]
    # The unfinished key is not an item (Gatekeeper would cache it for minutes) but the systemError, which
    # Gatekeeper never caches; the finished one is answered as usual.
    (fast,) = answer["items"]
    assert fast["key"] == f"{REG}/team/app:v1" and fast["value"]["digest"].startswith("sha256:")
    assert answer["systemError"].startswith("TIMEOUT: ") and f"{REG}/slow/app:v1" in answer["systemError"]
    with blob.open("wb") as handle:
        handle.write(data)
    for _ in range(50):
        item = post(provider, pki, provider_request([f"{REG}/slow/app:v1"])).json()["response"]["items"][0]
        if "value" in item and item["value"]["cached"]:
            break
        time.sleep(0.1)
    assert item["value"]["digest"] == digest and item["value"]["cached"] is True



def test_rotated_server_certificate_and_client_ca_take_effect_without_restart(
        start_provider: Start, pki: ProviderPKI, tmp_path: Path) -> None:
    provider = start_provider()
    pid = provider.process.pid
    new_ca = make_ca("rotated server CA")
    new_ca.write(tmp_path / "rotated", "ca")
    new_server = issue(new_ca, "sigwarden", ("127.0.0.1",), server=True)
    new_server.write(tmp_path / "rotated", "server")
    shutil.copy(tmp_path / "rotated/server.crt", pki.path("server.crt"))
    shutil.copy(tmp_path / "rotated/server.key", pki.path("server.key"))

    def served_by_new_ca() -> bool:
        try:
            requests.post(provider.url + "/verify", data=b"{}", cert=pki.client_pair,
                          verify=str(tmp_path / "rotated/ca.crt"), timeout=5)
            return True
        except requests.exceptions.SSLError:
            return False

    wait_for(served_by_new_ca, "the rotated server certificate")
    with pytest.raises(requests.exceptions.SSLError):
        requests.post(provider.url + "/verify", data=b"{}", cert=pki.client_pair, verify=pki.path("ca.crt"),
                      timeout=5)

    new_client_ca = make_ca("rotated gatekeeper CA")
    new_client = issue(new_client_ca, GATEKEEPER_NAME, (GATEKEEPER_NAME,), client=True)
    new_client.write(tmp_path / "rotated", "client")
    Path(pki.path("client-ca.crt")).write_bytes(new_client_ca.cert_pem)
    new_pair = (str(tmp_path / "rotated/client.crt"), str(tmp_path / "rotated/client.key"))

    def accepts_new_client() -> bool:
        try:
            return requests.post(provider.url + "/verify", data=b"{}", cert=new_pair,
                                 verify=str(tmp_path / "rotated/ca.crt"), timeout=5).status_code == 400
        except (requests.exceptions.SSLError, requests.exceptions.ConnectionError):
            return False

    wait_for(accepts_new_client, "the rotated client CA")
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.post(provider.url + "/verify", data=b"{}", cert=pki.client_pair,
                      verify=str(tmp_path / "rotated/ca.crt"), timeout=5)
    assert provider.process.pid == pid and provider.process.poll() is None
    metrics = requests.get(provider.metrics_url + "/metrics", timeout=5).text
    assert metric_value(metrics, "sigwarden_tls_reloads_total", {"result": "success"}) >= 2


def test_broken_config_edit_keeps_the_old_config_serving(start_provider: Start, pki: ProviderPKI,
                                                         layouts: Path) -> None:
    provider = start_provider(layout_config(layouts))
    key = f"{REG}/team/app:v1"
    assert "value" in post(provider, pki, provider_request([key])).json()["response"]["items"][0]
    good_text = provider.config_path.read_text()
    provider.config_path.write_text(good_text + "\nverification: {cache: {ttl: forever}}\n")

    def failures() -> float:
        text = requests.get(provider.metrics_url + "/metrics", timeout=5).text
        return metric_value(text, "sigwarden_config_reloads_total", {"result": "failure"})

    wait_for(lambda: failures() >= 1, "the reload-failure metric")
    assert "value" in post(provider, pki, provider_request([key])).json()["response"]["items"][0]
    assert "config reload failed" in provider.log() and "verification.cache.ttl" in provider.log()
    time.sleep(0.5)
    assert failures() == 1  # reported once per edit, not on every poll

    # A good edit is picked up: the store now covers another registry only, so the key has no store.
    # (The server section stays: a reload that silently dropped the client CA would be refused.)
    config = yaml.safe_load(good_text)
    config["stores"][0]["match"] = ["elsewhere.example/*"]
    write_yaml(provider.config_path, config)

    def reloaded() -> bool:
        item = post(provider, pki, provider_request([key])).json()["response"]["items"][0]
        return item.get("error", "").startswith("NOT_FOUND: no store is configured")

    wait_for(reloaded, "the fixed config to serve")
    text = requests.get(provider.metrics_url + "/metrics", timeout=5).text
    assert metric_value(text, "sigwarden_config_reloads_total", {"result": "success"}) == 1


def test_metrics_expose_latency_items_and_cache(start_provider: Start, pki: ProviderPKI, layouts: Path) -> None:
    provider = start_provider(layout_config(layouts))
    key = f"{REG}/team/app:v1"
    post(provider, pki, provider_request([key, "acme/Bad"]))
    post(provider, pki, provider_request([key]))
    text = requests.get(provider.metrics_url + "/metrics", timeout=5).text
    assert metric_value(text, "sigwarden_request_duration_seconds_count", {"endpoint": "verify"}) == 2
    assert metric_value(text, "sigwarden_items_total", {"endpoint": "verify", "outcome": "unverified"}) == 2
    assert metric_value(text, "sigwarden_item_errors_total", {"code": "INVALID_REFERENCE"}) == 1
    assert metric_value(text, "sigwarden_cache_hits_total", {"cache": "verify"}) == 1
    assert metric_value(text, "sigwarden_cache_misses_total", {"cache": "verify"}) == 1
    assert metric_value(text, "sigwarden_workers", {}) == 1
    assert metric_value(text, "sigwarden_cache_max_bytes", {}) == 64 * 1024 * 1024
    assert metric_value(text, "sigwarden_config_last_reload_success", {}) == 1
    assert requests.get(provider.metrics_url + "/healthz", timeout=5).text == "ok\n"
    assert requests.get(provider.metrics_url + "/readyz", timeout=5).status_code == 200


def test_readyz_is_not_ready_until_a_worker_has_loaded_config(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "config.yaml", {})
    board = StatusBoard(tmp_path / "run")
    board.directory.mkdir()
    state = ProviderState(config, Metrics())
    publisher = StatusPublisher(board, state)
    port = free_port()
    server = serve_health(create_health_app(lambda: board.readiness(2), pod_registry(board)), f"127.0.0.1:{port}")
    try:
        before = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert before.status_code == 503 and "not loaded (0 of 2 workers ready)" in before.text
        publisher.publish_if_changed()  # a worker still loading says so
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 503
        state.load()
        publisher.publish_if_changed()
        after = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert after.status_code == 200 and after.text == "ready: 1/2 workers, 0 authorities, 1 stores\n"
        board.forget(os.getpid())  # the worker exited
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 503
    finally:
        server.shutdown()
        if state.runtime is not None:
            state.runtime.engine.shutdown()


def test_a_side_port_in_use_stops_serve_with_one_line(tmp_path: Path, pki: ProviderPKI) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        taken = busy.getsockname()[1]
        config = write_yaml(tmp_path / "config.yaml", {"server": {
            "listen": f"127.0.0.1:{free_port()}", "metricsListen": f"127.0.0.1:{taken}",
            "tls": {"cert": pki.path("server.crt"), "key": pki.path("server.key")}}})
        result = subprocess.run([sys.executable, "-m", "provider", "serve", "--config", str(config)],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"sigwarden: config error: {config}: server.metricsListen: cannot listen on 127.0.0.1:{taken}: "
        "Address already in use")
    assert "Traceback" not in result.stderr
