"""`sigwarden demo`: a self-contained run on loopback, no cluster, no registry, no network.

It makes trust material and small images in a temporary workspace, starts the provider over HTTPS with
mutual TLS exactly as Gatekeeper would call it, sends one ProviderRequest and prints what came back.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from provider.devkit import cosign
from provider.devkit.layout import LayoutWriter
from provider.devkit.pki import issue, make_ca

GATEKEEPER_CN = "gatekeeper-webhook-service.gatekeeper-system.svc"


@dataclass(frozen=True)
class DemoImage:
    key: str
    story: str
    expect_verified: bool


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_workspace(root: Path) -> tuple[Path, list[DemoImage]]:
    """Trust material, images and a config under `root`; returns the config path and the demo images."""
    pki = root / "pki"
    server_ca = make_ca("sigwarden demo CA")
    server_ca.write(pki, "ca")
    issue(server_ca, "sigwarden.sigwarden-system.svc", ("127.0.0.1", "localhost"), server=True).write(pki, "server")
    gatekeeper_ca = make_ca("gatekeeper demo CA")
    gatekeeper_ca.write(pki, "gatekeeper-ca")
    issue(gatekeeper_ca, GATEKEEPER_CN, (GATEKEEPER_CN,), client=True).write(pki, "gatekeeper")

    signing_key = ec.generate_private_key(ec.SECP256R1())
    (root / "cosign.pub").write_bytes(cosign.public_pem(signing_key))

    layouts = root / "layouts"
    signed = LayoutWriter(layouts / "demo.local", "kritis-demo/alpine")
    signed_digest = signed.add_image("3.11", b"alpine 3.11 (attested build)")["digest"]
    cosign.sign_image(signed, signed_digest, "demo.local/kritis-demo/alpine", signing_key)

    LayoutWriter(layouts / "docker.io", "library/alpine").add_image("3.11", b"alpine 3.11 (nobody signed this)")

    # Tampered: the tag now points at an altered manifest; the old signature was copied next to it.
    app = LayoutWriter(layouts / "demo.local", "team/app")
    original = app.add_image("v1", b"app v1")["digest"]
    signature = cosign.sign_image(app, original, "demo.local/team/app", signing_key)
    altered = app.add_image("v1", b"app v1 with a backdoor")["digest"]
    app.tag(signature, altered.replace(":", "-") + ".sig")

    config = {
        "server": {"listen": f"127.0.0.1:{_free_port()}", "metricsListen": f"127.0.0.1:{_free_port()}",
                   "requestDeadline": "2.5s",
                   "tls": {"cert": "pki/server.crt", "key": "pki/server.key", "clientCA": "pki/gatekeeper-ca.crt",
                           "clientNames": [GATEKEEPER_CN]}},
        "stores": [{"type": "oci-layout", "path": "layouts", "match": ["*"]}],
        "authorities": [{"name": "release-key", "cosign": {"publicKeys": [{"file": "cosign.pub"}]}}],
    }
    config_path = root / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    images = [
        DemoImage(f"demo.local/kritis-demo/alpine@{signed_digest}", "signed with the release key", True),
        DemoImage("demo.local/kritis-demo/alpine:3.11", "the same image by tag", True),
        DemoImage("alpine:3.11", "public image nobody signed", False),
        DemoImage("demo.local/team/app:v1", "manifest altered after signing", False),
        DemoImage("demo.local/Team/App", "not a valid reference", False),
    ]
    return config_path, images


def _start(config_path: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    config = yaml.safe_load(config_path.read_text())
    log = (config_path.parent / "provider.log").open("wb")
    process = subprocess.Popen([sys.executable, "-m", "provider", "serve", "--config", str(config_path)],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return process, config["server"]


def _wait_ready(process: subprocess.Popen[bytes], metrics_listen: str, log: Path) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"provider exited early:\n{log.read_text()}")
        try:
            if requests.get(f"http://{metrics_listen}/readyz", timeout=1).status_code == 200:
                return
        except requests.exceptions.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError("provider did not become ready")


def _client(root: Path) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.cert = (str(root / "pki/gatekeeper.crt"), str(root / "pki/gatekeeper.key"))
    session.verify = str(root / "pki/ca.crt")
    return session


def _row(image: DemoImage, item: dict[str, Any]) -> tuple[str, str, bool]:
    if "error" in item:
        return "ERROR", item["error"], image.expect_verified is False
    facts = item["value"]
    if facts["verified"]:
        return "VERIFIED", f"by {', '.join(facts['authorities'])} at {facts['digest'][:19]}…", image.expect_verified
    return "DENIED", facts["reason"], not image.expect_verified


def run_demo(serve: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="sigwarden-demo-") as tmp:
        root = Path(tmp)
        config_path, images = build_workspace(root)
        print(f"workspace: {root}")
        print("  made: a server CA and certificate, a Gatekeeper-like client certificate, a cosign key pair,")
        print("        an OCI layout store with a signed, an unsigned and a tampered image\n")
        process, server = _start(config_path)
        try:
            _wait_ready(process, server["metricsListen"], root / "provider.log")
            url = f"https://{server['listen']}/verify"
            print(f"provider: {url} (TLS, client certificate required, pinned to {GATEKEEPER_CN})\n")
            body = {"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
                    "request": {"keys": [image.key for image in images]}}
            items = _client(root).post(url, json=body, timeout=10).json()["response"]["items"]
            ok = True
            print(f"{'IMAGE':<58} {'RESULT':<9} WHY")
            for image, item in zip(images, items, strict=True):
                verdict, why, as_expected = _row(image, item)
                ok &= as_expected
                print(f"{image.key[:57]:<58} {verdict:<9} {why}")
                print(f"{'':<58} {'':<9} ({image.story})")
            print("\nfull facts of the first answer:")
            print(json.dumps(items[0]["value"], indent=2)[:1500])
            if serve:
                _keep_serving(root, url, body)
            return 0 if ok else 1
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)


def _keep_serving(root: Path, url: str, body: dict[str, Any]) -> None:
    pki = root / "pki"
    print("\nthe provider keeps running; try it (Ctrl-C to stop):")
    print(f"  curl --cacert {pki}/ca.crt --cert {pki}/gatekeeper.crt --key {pki}/gatekeeper.key \\\n"
          f"       -H 'Content-Type: application/json' -d '{json.dumps(body)}' {url}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
