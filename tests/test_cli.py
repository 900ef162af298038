"""The command line: verify/resolve answer like the server, with the documented exit codes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import jsonschema
from cryptography.hazmat.primitives.asymmetric import ec

from provider.devkit import cosign
from provider.devkit.kube import deployment
from provider.devkit.layout import LayoutWriter
from provider.facts import facts_schema
from tests.helpers import VECTORS, ProviderPKI, write_yaml

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
    assert lines[0].startswith(f"verified      {REG}/signed:v1 {digest} by release")
    assert lines[1].startswith(f"not verified  {REG}/unsigned:v1 sha256:") and "no signatures found" in lines[1]
    assert "DENIED" not in text.stdout  # admission is Rego's decision, not the verifier's
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


def test_verify_exits_1_with_the_reason_when_the_registry_is_down(tmp_path: Path) -> None:
    """A registry that cannot be reached is an image not verified (1), not a failure to start (2)."""
    with socket.socket() as closed:  # a loopback port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    config = write_yaml(tmp_path / "config.yaml", {
        "stores": [{"type": "registry", "match": [f"127.0.0.1:{port}/*"], "insecure": [f"127.0.0.1:{port}"]}],
        "authorities": [{"name": "any", "cosign": {"publicKeys": [str(VECTORS / "containers-image/cosign.pub")]}}]})
    result = run("verify", "--config", str(config), "--timeout", "20", f"127.0.0.1:{port}/team/app:v1")
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == (f"not verified  127.0.0.1:{port}/team/app:v1: REGISTRY_UNAVAILABLE: cannot reach "
                                     f"registry 127.0.0.1:{port}: Connection refused")
    assert "Traceback" not in result.stderr


def test_exit_2_when_no_verification_can_start(tmp_path: Path) -> None:
    missing = run("verify", "--config", str(tmp_path / "absent.yaml"), "alpine")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "absent.yaml" in missing.stderr
    assert run("verify").returncode == 2  # usage: no image


def tls_config(tmp_path: Path, **tls: str) -> Path:
    pki = ProviderPKI.create(tmp_path / "pki")
    settings = {"cert": pki.path("server.crt"), "key": pki.path("server.key"), **tls}
    return write_yaml(tmp_path / "config.yaml", {
        "server": {"tls": settings},
        "authorities": [{"name": "any", "cosign": {"publicKeys": [str(VECTORS / "containers-image/cosign.pub")]}}]})


def test_config_check_refuses_what_serve_refuses(tmp_path: Path) -> None:
    no_tls = write_yaml(tmp_path / "notls.yaml", {
        "authorities": [{"name": "any", "cosign": {"publicKeys": [str(VECTORS / "containers-image/cosign.pub")]}}]})
    checked, served = run("config", "check", str(no_tls)), run("serve", "--config", str(no_tls))
    assert checked.returncode == served.returncode == 2
    assert "server.tls: cert and key are required to serve" in checked.stderr
    assert checked.stderr == served.stderr
    verify_only = run("config", "check", "--for", "verify", str(no_tls))
    assert verify_only.returncode == 0 and "ok for verify (1 authorities" in verify_only.stdout

    mismatched = tls_config(tmp_path / "mismatch", key=str(tmp_path / "mismatch/pki/client.key"))
    checked, served = run("config", "check", str(mismatched)), run("serve", "--config", str(mismatched))
    assert checked.returncode == served.returncode == 2
    assert "server.tls: cannot build the TLS context" in checked.stderr and checked.stderr == served.stderr
    assert "Traceback" not in checked.stderr + served.stderr

    good = run("config", "check", str(tls_config(tmp_path / "good")))
    assert good.returncode == 0 and "ok for serve" in good.stdout, good.stderr


def test_config_check_warns_but_passes(tmp_path: Path) -> None:
    pki = ProviderPKI.create(tmp_path / "pki")
    config = write_yaml(tmp_path / "config.yaml", {
        "server": {"tls": {"cert": pki.path("server.crt"), "key": pki.path("server.key"),
                           "clientCA": pki.path("client-ca.crt")}},
        "stores": [{"type": "registry", "match": ["*"],
                    "auth": {"static": {"registry.example": {"username": "u", "password": "p"}}}}]})
    result = run("config", "check", str(config))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 3, result.stderr
    assert "no authorities" in warnings[0]
    assert "stores[0] matches every registry (*) and has credentials" in warnings[1]
    assert "clientCA without clientNames" in warnings[2]
    pinned = write_yaml(tmp_path / "pinned.yaml", {
        "server": {"tls": {"cert": pki.path("server.crt"), "key": pki.path("server.key"),
                           "clientCA": pki.path("client-ca.crt"), "clientNames": ["gk"]}},
        "authorities": [{"name": "any", "cosign": {"publicKeys": [str(VECTORS / "containers-image/cosign.pub")]}}]})
    quiet = run("config", "check", str(pinned))
    assert quiet.returncode == 0 and "warning" not in quiet.stderr


def test_admit_exit_codes_and_one_line_errors(tmp_path: Path) -> None:
    config, _ = workspace(tmp_path)
    constraint = write_yaml(tmp_path / "constraints/signed.yaml", {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSignedImages",
        "metadata": {"name": "signed"}, "spec": {"parameters": {"authorities": ["release"]}}})
    signed = write_yaml(tmp_path / "signed.yaml", deployment("ok", f"{REG}/signed:v1"))
    unsigned = write_yaml(tmp_path / "unsigned.yaml", deployment("no", f"{REG}/unsigned:v1"))
    common = ("admit", "--config", str(config), "--constraints", str(constraint.parent))
    allowed = run(*common, "-f", str(signed))
    assert allowed.returncode == 0 and "deployment.apps/ok created" in allowed.stdout, allowed.stderr
    denied = run(*common, "-f", str(unsigned))
    assert denied.returncode == 1 and "[signed] image cli.example/unsigned:v1 is not attested" in denied.stdout

    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: Pod\nmetadata: [1,\n")
    error = run(*common, "-f", str(broken))
    assert error.returncode == 2 and error.stderr.count("\n") == 1
    assert f"{broken}: not valid YAML at line 3, column 1" in error.stderr

    bad_rego = tmp_path / "bad-template"
    write_yaml(bad_rego / "template.yaml", {
        "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate", "metadata": {"name": "k8sbroken"},
        "spec": {"crd": {"spec": {"names": {"kind": "K8sBroken"}}},
                 "targets": [{"target": "admission.k8s.gatekeeper.sh",
                              "rego": "package k8sbroken\nviolation[{\"msg\": m}] {\n  m := \n}\n"}]}})
    write_yaml(bad_rego / "constraint.yaml", {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sBroken",
                                             "metadata": {"name": "broken"}, "spec": {}})
    error = run("admit", "--config", str(config), "--constraints", str(bad_rego), "-f", str(signed))
    assert error.returncode == 2 and error.stderr.count("\n") == 1, error.stderr
    assert "template.yaml: K8sBroken: Rego error in rego line 2:" in error.stderr and "Traceback" not in error.stderr

    absent = run(*common[:3], "--constraints", str(tmp_path / "nowhere"), "-f", str(signed))
    assert absent.returncode == 2 and "nowhere: no such file or directory" in absent.stderr


def test_policy_build_check_exit_codes(tmp_path: Path) -> None:
    out = tmp_path / "gatekeeper"
    assert run("policy", "build", str(out)).returncode == 0
    assert run("policy", "build", "--check", str(out)).returncode == 0
    (out / "templates/k8ssignedimages.yaml").write_text("kind: ConstraintTemplate\n")
    drifted = run("policy", "build", "--check", str(out))
    assert drifted.returncode == 1 and "k8ssignedimages.yaml: differs from the generated file" in drifted.stdout
