"""GPG simple signing: an expired key, a revoked subkey and a corrupted signature each get their own reason.

Keys and signatures are made by the real gpg in a throw-away GNUPGHOME (`--faked-system-time` makes a key
that has already expired; `revkey` revokes a signing subkey after it signed).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provider.devkit.layout import LayoutWriter
from tests.test_simplesigning import verify

REPOSITORY = "testing/gpg"


@dataclass(frozen=True)
class Gpg:
    home: Path

    def run(self, *args: str, stdin: str | None = None) -> str:
        env = {**os.environ, "GNUPGHOME": str(self.home)}
        done = subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", *args],
                              env=env, input=stdin, capture_output=True, text=True, check=True)
        return done.stdout

    def fingerprint(self, email: str, index: int = 0) -> str:
        lines = self.run("--with-colons", "--list-keys", email).splitlines()
        return [line.split(":")[9] for line in lines if line.startswith("fpr:")][index]

    def export(self, email: str) -> str:
        return base64.b64encode(self.run("--armor", "--export", email).encode()).decode()

    def sign(self, email: str, payload: bytes, *options: str) -> bytes:
        env = {**os.environ, "GNUPGHOME": str(self.home)}
        return subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", *options,
                               "-u", email, "--sign"], env=env, input=payload, capture_output=True,
                              check=True).stdout


@pytest.fixture(scope="module")
def gpg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gpg]:
    assert shutil.which("gpg"), "make test installs gnupg"
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    keys = Gpg(home)
    keys.run("--faked-system-time", "20200101T000000", "--quick-gen-key", "Expired <expired@sigwarden.test>",
             "ed25519", "sign", "1d")
    keys.run("--quick-gen-key", "Subkeys <subkeys@sigwarden.test>", "ed25519", "cert", "never")
    keys.run("--quick-add-key", keys.fingerprint("subkeys@sigwarden.test"), "ed25519", "sign", "never")
    keys.run("--quick-gen-key", "Plain <plain@sigwarden.test>", "ed25519", "sign", "never")
    yield keys
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env={**os.environ, "GNUPGHOME": str(home)}, check=False)


def image_with_signature(tmp_path: Path, sign: object) -> str:
    """An image in a layout and, in a file lookaside, the signature `sign(payload)` returns for it."""
    writer = LayoutWriter(tmp_path / "layouts/docker.io", REPOSITORY)
    digest = writer.add_image("latest", b"gpg signed")["digest"]
    payload = json.dumps({"critical": {"type": "atomic container signature",
                                       "image": {"docker-manifest-digest": digest},
                                       "identity": {"docker-reference": f"docker.io/{REPOSITORY}:latest"}},
                          "optional": {}}).encode()
    signatures = tmp_path / "sigstore" / f"{REPOSITORY}@{digest.replace(':', '=')}"
    signatures.mkdir(parents=True)
    (signatures / "signature-1").write_bytes(sign(payload))  # type: ignore[operator]
    return digest


def reason(tmp_path: Path, key: str) -> str:
    item = verify(tmp_path, f"{REPOSITORY}:latest", {"publicKeyData": key,
                                                     "lookaside": f"file://{tmp_path}/sigstore"})
    (signature,) = item.value["signatures"]
    assert item.value["verified"] is signature["verified"]
    return "" if signature["verified"] else signature["reason"]


def test_a_good_gpg_signature_verifies(tmp_path: Path, gpg: Gpg) -> None:
    image_with_signature(tmp_path, lambda payload: gpg.sign("plain@sigwarden.test", payload))
    assert reason(tmp_path, gpg.export("plain@sigwarden.test")) == ""


def test_signature_by_a_key_that_has_expired_since(tmp_path: Path, gpg: Gpg) -> None:
    image_with_signature(tmp_path, lambda payload: gpg.sign("expired@sigwarden.test", payload,
                                                            "--faked-system-time", "20200101T120000"))
    fingerprint = gpg.fingerprint("expired@sigwarden.test")
    assert reason(tmp_path, gpg.export("expired@sigwarden.test")) == (
        f"key {fingerprint} expired at 2020-01-02T00:00:00Z")


def test_signature_by_a_revoked_subkey(tmp_path: Path, gpg: Gpg) -> None:
    image_with_signature(tmp_path, lambda payload: gpg.sign("subkeys@sigwarden.test", payload))
    primary, subkey = gpg.fingerprint("subkeys@sigwarden.test"), gpg.fingerprint("subkeys@sigwarden.test", 1)
    before = reason(tmp_path, gpg.export("subkeys@sigwarden.test"))
    assert before == ""
    gpg.run("--command-fd", "0", "--edit-key", primary, stdin="key 1\nrevkey\ny\n0\n\ny\nsave\n")
    assert reason(tmp_path, gpg.export("subkeys@sigwarden.test")) == (
        f"signing subkey {subkey} of certificate {primary} is revoked")


def test_corrupted_signature(tmp_path: Path, gpg: Gpg) -> None:
    def corrupted(payload: bytes) -> bytes:
        message = bytearray(gpg.sign("plain@sigwarden.test", payload, "--compress-algo", "none"))
        message[-10] ^= 0x01  # inside the signature value: still parses, no longer verifies
        return bytes(message)

    image_with_signature(tmp_path, corrupted)
    fingerprint = gpg.fingerprint("plain@sigwarden.test")
    assert reason(tmp_path, gpg.export("plain@sigwarden.test")) == (
        f"the signature by key {fingerprint} does not verify: the signature or the signed payload is corrupted "
        "or was altered")


def test_signature_by_an_unknown_key_keeps_its_reason(tmp_path: Path, gpg: Gpg) -> None:
    image_with_signature(tmp_path, lambda payload: gpg.sign("plain@sigwarden.test", payload))
    assert reason(tmp_path, gpg.export("expired@sigwarden.test")) == (
        "signed by a key not trusted by authority kritis-key")
