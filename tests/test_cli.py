"""The command line: verify/resolve answer like the server, with the documented exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
from cryptography.hazmat.primitives.asymmetric import ec

from provider.devkit import cosign
from provider.devkit.layout import LayoutWriter
from provider.facts import facts_schema
from tests.helpers import write_yaml

REG = "cli.example"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "provider", *args], capture_output=True, text=True, timeout=60)


def workspace(tmp_path: Path) -> tuple[Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "cosign.pub").write_bytes(cosign.public_pem(key))
    signed = LayoutWriter(tmp_path / "layouts" / REG, "signed")
    digest = signed.add_image("v1", b"signed")["digest"]
    cosign.sign_image(signed, digest, f"{REG}/signed", key)
    LayoutWriter(tmp_path / "layouts" / REG, "unsigned").add_image("v1", b"unsigned")
    config = write_yaml(tmp_path / "config.yaml", {
        "stores": [{"type": "oci-layout", "path": "layouts", "match": ["*"]}],
        "authorities": [{"name": "release", "cosign": {"publicKeys": ["cosign.pub"]}}]})
    return config, digest


def test_verify_json_prints_the_items_array(tmp_path: Path) -> None:
    config, digest = workspace(tmp_path)
    ok = run("verify", "--config", str(config), "-o", "json", f"{REG}/signed:v1")
    assert ok.returncode == 0, ok.stderr
    (item,) = json.loads(ok.stdout)
    assert item["key"] == f"{REG}/signed:v1" and item["value"]["digest"] == digest
    jsonschema.validate(item["value"], facts_schema())
    mixed = run("verify", "--config", str(config), "-o", "json", f"{REG}/signed:v1", f"{REG}/unsigned:v1", "bad/X")
    assert mixed.returncode == 1
    items = json.loads(mixed.stdout)
    assert [i.get("value", {}).get("verified") for i in items[:2]] == [True, False]
    assert items[2]["error"].startswith("INVALID_REFERENCE")


def test_verify_text_and_resolve(tmp_path: Path) -> None:
    config, digest = workspace(tmp_path)
    text = run("verify", "--config", str(config), f"{REG}/signed:v1", f"{REG}/unsigned:v1")
    assert text.returncode == 1
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"VERIFIED  {REG}/signed:v1 {digest} by release")
    assert lines[1].startswith(f"DENIED    {REG}/unsigned:v1 sha256:") and "no signatures found" in lines[1]
    resolved = run("resolve", "--config", str(config), f"{REG}/signed:v1")
    assert resolved.returncode == 0 and resolved.stdout.strip() == f"{REG}/signed:v1@{digest}"
    missing = run("resolve", "--config", str(config), f"{REG}/signed:v9")
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stdout


def test_config_errors_exit_2(tmp_path: Path) -> None:
    bad = write_yaml(tmp_path / "bad.yaml", {"stores": [{"type": "nope"}]})
    result = run("verify", "--config", str(bad), "alpine")
    assert result.returncode == 2
    assert "bad.yaml: stores[0].type: must be one of registry, oci-layout" in result.stderr
    serve = run("serve", "--config", str(write_yaml(tmp_path / "notls.yaml", {})))
    assert serve.returncode == 2 and "notls.yaml: server.tls: cert and key are required to serve" in serve.stderr
    assert run("frobnicate").returncode == 2
