"""Interop with a real simple-signing signer: skopeo + gpg push and sign into docker-registry, the signature
goes to a lookaside staging directory served over loopback HTTP, and the provider verifies it."""

from __future__ import annotations

import base64
import functools
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from provider.config import build_config
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from tests.helpers import free_port, write_yaml
from tests.registry import RegistryServer


@pytest.fixture
def lookaside(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "lookaside"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{port}/"
    httpd.shutdown()


def gpg_key(home: Path) -> tuple[str, str]:
    """A fresh ed25519 signing key without a passphrase; returns (fingerprint, armoured public key)."""
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "sigwarden test <test@sigwarden.test>",
                    "ed25519", "sign", "never"], env=env, check=True, capture_output=True)
    listing = subprocess.run(["gpg", "--batch", "--with-colons", "--list-keys"], env=env, check=True,
                             capture_output=True, text=True).stdout
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    armour = subprocess.run(["gpg", "--batch", "--armor", "--export", fingerprint], env=env, check=True,
                            capture_output=True, text=True).stdout
    return fingerprint, armour


def test_skopeo_gpg_signature_verifies(tmp_path: Path, registry: RegistryServer,
                                       lookaside: tuple[Path, str]) -> None:
    assert shutil.which("skopeo") and shutil.which("gpg"), "make test installs skopeo and gnupg"
    staging, lookaside_url = lookaside
    fingerprint, armour = gpg_key(tmp_path / "gnupg")
    writer = LayoutWriter(tmp_path / "oci", "app")
    writer.add_image("v1", b"signed by skopeo")
    LayoutWriter(tmp_path / "oci", "plain").add_image("v1", b"never signed")
    registries_d = tmp_path / "registries.d"
    registries_d.mkdir()
    write_yaml(registries_d / "default.yaml", {"docker": {registry.host: {"lookaside-staging": f"file://{staging}",
                                                                          "lookaside": lookaside_url}}})
    env = {**os.environ, "GNUPGHOME": str(tmp_path / "gnupg")}
    for name, sign in (("app", ["--sign-by", fingerprint]), ("plain", [])):
        copied = subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", "--registries.d", str(registries_d),
                                 *sign, f"oci:{tmp_path / 'oci' / name}:v1",
                                 f"docker://{registry.host}/team/{name}:v1"],
                                env=env, capture_output=True, text=True, timeout=120)
        assert copied.returncode == 0, copied.stderr
    assert list(staging.rglob("signature-1")), "skopeo wrote no lookaside signature"

    data = {"stores": [{"type": "registry", "match": ["*"], "insecure": [registry.host]}],
            "authorities": [{"name": "release-gpg", "attestation": {
                "publicKeyData": base64.b64encode(armour.encode()).decode(), "lookaside": lookaside_url}}]}
    engine = Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))
    signed, plain = engine.verify([f"{registry.host}/team/app:v1", f"{registry.host}/team/plain:v1"], "t")
    engine.shutdown()
    assert signed.value["verified"] is True, signed.value["signatures"]
    assert signed.value["signatures"][0]["format"] == "simplesigning"
    assert signed.value["signatures"][0]["signer"]["keyId"] == fingerprint.upper()
    assert plain.value["verified"] is False and plain.value["reason"].startswith("no signatures found")
