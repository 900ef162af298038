"""Egress at work: images, redirects and token realms that point where a wildcard store must not connect.

Every target listens on loopback (or inside a network namespace the test creates) and counts the
connections it accepts, so "refused" means no connection was made, not merely an error answered.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provider.config import build_config
from provider.engine import Engine
from tests.helpers import VECTORS, ProviderPKI, write_yaml
from tests.hostile import TOKEN, HostileRegistry


class Listener:
    """A TCP socket that accepts, counts and closes connections."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind((address, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listeners() -> Iterator[dict[str, Listener]]:
    found = {"v4": Listener("127.0.0.1"), "v6": Listener("::1"), "other": Listener("127.0.0.2")}
    yield found
    for listener in found.values():
        listener.close()


def engine(tmp_path: Path, stores: list[dict[str, Any]] | None = None, deadline: str = "2s") -> Engine:
    data: dict[str, Any] = {"server": {"requestDeadline": deadline},
                            "authorities": [{"name": "any", "cosign": {"publicKeys": [str(COSIGN_KEY)]}}]}
    if stores is not None:
        data["stores"] = stores
    return Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))


COSIGN_KEY = VECTORS / "containers-image/cosign.pub"


def errors_for(e: Engine, keys: list[str]) -> dict[str, str]:
    try:
        return {item.key: item.error for item in e.verify(keys, "t")}
    finally:
        e.shutdown()


def test_default_config_never_connects_to_loopback_or_metadata(tmp_path: Path,
                                                              listeners: dict[str, Listener]) -> None:
    v4, v6 = listeners["v4"].port, listeners["v6"].port
    keys = [f"127.0.0.1:{v4}/app:v1", f"[::1]:{v6}/app:v1", f"2130706433:{v4}/app:v1", f"0x7f.1:{v4}/app:v1",
            f"localhost:{v4}/app:v1", "169.254.169.254/latest:v1", "0.0.0.0:1/app:v1"]
    found = errors_for(engine(tmp_path), keys)
    for key in keys:
        assert found[key].startswith("REGISTRY_UNAVAILABLE: egress policy refuses "), (key, found[key])
    assert f"refuses 127.0.0.1:{v4}: 127.0.0.1 is a loopback address; name the host" in found[keys[0]]
    assert f"refuses ::1:{v6}: ::1 is a loopback address" in found[keys[1]]
    assert "169.254.169.254 is a cloud metadata address" in found["169.254.169.254/latest:v1"]
    assert listeners["v4"].accepted == 0 and listeners["v6"].accepted == 0


def test_a_store_that_names_the_host_may_connect_there(tmp_path: Path, listeners: dict[str, Listener]) -> None:
    # The control for the test above: the same listener does see a connection once the host is named.
    port = listeners["v4"].port
    found = errors_for(engine(tmp_path, [{"type": "registry", "match": ["*"], "insecure": [f"127.0.0.1:{port}"]}]),
                       [f"127.0.0.1:{port}/app:v1", f"2130706433:{port}/app:v1"])
    assert listeners["v4"].accepted >= 1
    assert not found[f"127.0.0.1:{port}/app:v1"].startswith("REGISTRY_UNAVAILABLE: egress")
    # Another spelling of the same address is not the named host: still refused.
    assert found[f"2130706433:{port}/app:v1"].startswith("REGISTRY_UNAVAILABLE: egress policy refuses")


@pytest.fixture
def tls_hostile(pki: ProviderPKI) -> Iterator[HostileRegistry]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.path("server.crt"), pki.path("server.key"))
    server = HostileRegistry(tls=context)
    yield server
    server.stop()


@pytest.fixture
def hostile() -> Iterator[HostileRegistry]:
    server = HostileRegistry()
    yield server
    server.stop()


def test_redirect_from_https_to_plain_http_is_refused(tmp_path: Path, tls_hostile: HostileRegistry,
                                                      hostile: HostileRegistry, pki: ProviderPKI) -> None:
    tls_hostile.redirect_to = f"{hostile.url}/v2/anything/manifests/v1"
    store = {"type": "registry", "match": [f"{tls_hostile.host}/*"], "ca": pki.path("ca.crt")}
    found = errors_for(engine(tmp_path, [store]), [f"{tls_hostile.host}/redirect:v1"])
    assert found[f"{tls_hostile.host}/redirect:v1"] == (
        f"REGISTRY_UNAVAILABLE: registry {tls_hostile.host} redirected {tls_hostile.url}/v2/redirect/manifests/v1 "
        f"to plain http ({hostile.url}/v2/anything/manifests/v1); refused because {hostile.host} is not listed "
        "as insecure")
    assert sum(hostile.hits.values()) == 0


def test_redirect_to_a_refused_network_makes_no_connection(tmp_path: Path, hostile: HostileRegistry,
                                                           listeners: dict[str, Listener]) -> None:
    other = listeners["other"]
    hostile.redirect_to = f"http://127.0.0.2:{other.port}/blob"
    store = {"type": "registry", "match": ["*"], "insecure": [hostile.host]}
    found = errors_for(engine(tmp_path, [store]), [f"{hostile.host}/redirect:v1"])
    assert found[f"{hostile.host}/redirect:v1"].startswith(
        f"REGISTRY_UNAVAILABLE: egress policy refuses 127.0.0.2:{other.port}: 127.0.0.2 is a loopback address")
    assert other.accepted == 0
    # A denied network refuses even the redirect target the store named itself.
    denied = {"type": "registry", "match": ["*"], "insecure": [hostile.host, f"127.0.0.2:{other.port}"],
              "denyNetworks": ["127.0.0.2/32"]}
    found = errors_for(engine(tmp_path, [denied]), [f"{hostile.host}/redirect:v1"])
    assert "127.0.0.2 is in denyNetworks 127.0.0.2/32" in found[f"{hostile.host}/redirect:v1"]
    assert other.accepted == 0


def test_credentials_never_go_to_a_plain_http_token_realm(tmp_path: Path, tls_hostile: HostileRegistry,
                                                          hostile: HostileRegistry, pki: ProviderPKI) -> None:
    tls_hostile.realm = f"{hostile.url}/token"
    store = {"type": "registry", "match": [f"{tls_hostile.host}/*"], "ca": pki.path("ca.crt"),
             "auth": {"static": {tls_hostile.host: {"username": "ci", "password": "pw"}}}}
    found = errors_for(engine(tmp_path, [store]), [f"{tls_hostile.host}/realm:v1"])
    assert found[f"{tls_hostile.host}/realm:v1"] == (
        f"UNAUTHORIZED: registry {tls_hostile.host} sent a token realm over plain http ({hostile.url}/token); "
        f"credentials are not sent there unless {hostile.host} is listed as insecure")
    assert sum(hostile.hits.values()) == 0


def test_proxy_environment_variables_are_ignored(tmp_path: Path, hostile: HostileRegistry,
                                                 listeners: dict[str, Listener],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = f"http://127.0.0.1:{listeners['v4'].port}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    e = engine(tmp_path, [{"type": "registry", "match": ["*"], "insecure": [hostile.host]}])
    item = e.resolve([f"{hostile.host}/flaky:v1"], "t", deadline=None)[0]
    e.shutdown()
    assert item.error == "" and listeners["v4"].accepted == 0


NETNS_SCRIPT = textwrap.dedent("""
    import json, socket, sys, threading
    from pathlib import Path
    from provider.config import build_config
    from provider.engine import Engine

    accepted = []
    listener = socket.socket()
    listener.bind(("169.254.169.254", 8080))
    listener.listen(8)
    def serve():
        while True:
            conn, _ = listener.accept()
            accepted.append(1)
            conn.close()
    threading.Thread(target=serve, daemon=True).start()

    out = {}
    for name, stores in (("default", None),
                         ("named", [{"type": "registry", "match": ["*"], "insecure": ["169.254.169.254:8080"]}])):
        data = {"authorities": []}
        if stores:
            data["stores"] = stores
        engine = Engine(build_config(data, Path(sys.argv[1])))
        before = len(accepted)
        item = engine.verify(["169.254.169.254:8080/latest:v1"], "t")[0]
        engine.shutdown()
        out[name] = {"error": item.error, "accepted": len(accepted) - before}
    print(json.dumps(out))
""")


@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("ip") is None, reason="needs unshare and ip")
def test_metadata_address_inside_a_network_namespace(tmp_path: Path) -> None:
    """169.254.169.254 put on the loopback of a namespace this test creates: no packet leaves the machine."""
    (tmp_path / "config.yaml").write_text("{}\n")
    script = tmp_path / "probe.py"
    script.write_text(NETNS_SCRIPT)
    command = (f"ip link set lo up && ip addr add 169.254.169.254/32 dev lo && "
               f"{sys.executable} {script} {tmp_path / 'config.yaml'}")
    done = subprocess.run(["unshare", "-rn", "sh", "-c", command], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["default"]["accepted"] == 0
    assert out["default"]["error"].startswith(
        "REGISTRY_UNAVAILABLE: egress policy refuses 169.254.169.254:8080: 169.254.169.254 is a cloud metadata "
        "address")
    # The control: a store that names the address does reach the listener in the namespace.
    assert out["named"]["accepted"] >= 1


def test_redirect_to_another_host_carries_no_credentials(tmp_path: Path, hostile: HostileRegistry) -> None:
    cdn = HostileRegistry()
    try:
        hostile.redirect_to = f"{cdn.url}/v2/cdn/manifests/v1"
        store = {"type": "registry", "match": ["*"], "insecure": [hostile.host, cdn.host],
                 "auth": {"static": {hostile.host: {"username": "ci", "password": "pw"}}}}
        found = errors_for(engine(tmp_path, [store]), [f"{hostile.host}/private-redirect:v1"])
        assert found[f"{hostile.host}/private-redirect:v1"].startswith("NOT_FOUND: ")  # the CDN has no such thing
        assert f"Bearer {TOKEN}" in hostile.authorization  # the registry itself got the token
        assert cdn.hits["/v2/cdn/manifests/v1"] >= 1 and set(cdn.authorization) == {None}
    finally:
        cdn.stop()


def test_token_realm_is_under_the_same_egress_policy(tmp_path: Path, hostile: HostileRegistry,
                                                     listeners: dict[str, Listener]) -> None:
    other = listeners["other"]
    hostile.realm = f"http://127.0.0.2:{other.port}/token"  # a realm the store does not name
    store = {"type": "registry", "match": ["*"], "insecure": [hostile.host]}
    found = errors_for(engine(tmp_path, [store]), [f"{hostile.host}/realm:v1"])
    assert found[f"{hostile.host}/realm:v1"].startswith(
        f"REGISTRY_UNAVAILABLE: egress policy refuses 127.0.0.2:{other.port}: 127.0.0.2 is a loopback address")
    assert other.accepted == 0


def test_the_server_answers_egress_errors_and_connects_nowhere(start_provider: Any, pki: ProviderPKI,
                                                               listeners: dict[str, Listener]) -> None:
    import requests

    from tests.helpers import provider_request

    provider = start_provider({})  # the default config: one registry store matching "*"
    keys = [f"127.0.0.1:{listeners['v4'].port}/app:v1", f"[::1]:{listeners['v6'].port}/app:v1",
            "169.254.169.254/latest:v1"]
    for path in ("/verify", "/mutate"):
        response = requests.post(provider.url + path, json=provider_request(keys), cert=pki.client_pair,
                                 verify=pki.path("ca.crt"), timeout=10)
        items = response.json()["response"]["items"]
        assert [item["key"] for item in items] == keys
        for item in items:
            assert item["error"].startswith("REGISTRY_UNAVAILABLE: egress policy refuses "), item
    assert listeners["v4"].accepted == 0 and listeners["v6"].accepted == 0
