"""Every command against every kind of bad input file: one line naming the file, exit 2, never a traceback.

The table is subcommand slot by kind of bad input. A slot is one place a command reads a file (the config, a
key the config names, a suite, a manifest, `--ca`…); every kind is tried in every slot that reads a file of
that sort. Rego errors (a template that does not parse, a rule that fails while evaluating) are rows of their own:
regorus reports them with a Rust backtrace that must never reach the user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from provider.cli import main
from provider.devkit import cosign
from provider.devkit.kube import deployment
from tests.helpers import ProviderPKI, write_yaml

# Bad contents by kind; "missing" and "directory" are made by `place`.
CONTENTS: dict[str, bytes] = {
    "not UTF-8": b"\xff\xfe\x00\x81 binary",
    "malformed": b"a: [1,\n  b: {\n",
    "wrong shape": b"- just\n- a list\n",
}
KINDS = ("missing", "directory", *CONTENTS)


@dataclass(frozen=True)
class Slot:
    name: str
    argv: Callable[[Path, Path], list[str]]  # (workspace, bad file) -> arguments
    kinds: tuple[str, ...] = KINDS
    filename: str = "input.yaml"


def _workspace(root: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    (root / "cosign.pub").write_bytes(cosign.public_pem(key))
    (root / "layouts").mkdir()
    write_yaml(root / "config.yaml", {"stores": [{"type": "oci-layout", "path": "layouts", "match": ["*"]}]})
    write_yaml(root / "pod.yaml", deployment("app", "cli.example/app:v1"))
    ProviderPKI.create(root / "pki")
    return root


def _config_naming(key: str) -> Callable[[Path, Path], list[str]]:
    """A valid config whose only authority reads the bad file (a key, a trust policy)."""
    def argv(root: Path, bad: Path) -> list[str]:
        authority: dict[str, object] = {"name": "release"}
        if key == "publicKeys":
            authority["cosign"] = {"publicKeys": [str(bad)]}
        else:
            authority["notation"] = {"trustStores": {"ca:release": [str(root / "pki/ca.crt")]},
                                     "trustPolicy": {"file": str(bad)}}
        config = write_yaml(root / "with-file.yaml", {
            "stores": [{"type": "oci-layout", "path": "layouts", "match": ["*"]}], "authorities": [authority]})
        return ["verify", "--config", str(config), "cli.example/app:v1"]
    return argv


ALL_BUT_DIRECTORY = tuple(k for k in KINDS if k != "directory")  # slots that read directories too
PROVIDER = "https://127.0.0.1:9"  # never reached: the files are read before any call

SLOTS = [
    Slot("config check", lambda r, b: ["config", "check", str(b)]),
    Slot("verify --config", lambda r, b: ["verify", "--config", str(b), "cli.example/app:v1"]),
    Slot("resolve --config", lambda r, b: ["resolve", "--config", str(b), "cli.example/app:v1"]),
    Slot("serve --config", lambda r, b: ["serve", "--config", str(b)]),
    Slot("verify: cosign public key", _config_naming("publicKeys"), filename="cosign.pem"),
    Slot("verify: notation trust policy", _config_naming("trustPolicy"), filename="trustpolicy.json"),
    Slot("policy test --config", lambda r, b: ["policy", "test", "--config", str(b)]),
    Slot("policy test SUITE", lambda r, b: ["policy", "test", "--config", str(r / "config.yaml"), str(b)],
         ALL_BUT_DIRECTORY),
    Slot("admit -f", lambda r, b: ["admit", "--config", str(r / "config.yaml"), "-f", str(b)]),
    Slot("admit --constraints", lambda r, b: ["admit", "--config", str(r / "config.yaml"), "--constraints", str(b),
                                              "-f", str(r / "pod.yaml")], ALL_BUT_DIRECTORY),
    Slot("admit --namespaces", lambda r, b: ["admit", "--config", str(r / "config.yaml"), "--namespaces", str(b),
                                             "-f", str(r / "pod.yaml")], ALL_BUT_DIRECTORY),
    Slot("admit --config", lambda r, b: ["admit", "--config", str(b), "-f", str(r / "pod.yaml")]),
    Slot("admit --ca", lambda r, b: ["admit", "--provider", PROVIDER, "--ca", str(b), "-f", str(r / "pod.yaml")],
         filename="ca.pem"),
    Slot("admit --cert", lambda r, b: ["admit", "--provider", PROVIDER, "--cert", str(b), "--key",
                                       str(r / "pki/client.key"), "-f", str(r / "pod.yaml")], filename="client.pem"),
    Slot("admit --key", lambda r, b: ["admit", "--provider", PROVIDER, "--cert", str(r / "pki/client.crt"),
                                      "--key", str(b), "-f", str(r / "pod.yaml")], filename="client.key"),
    Slot("audit --manifests", lambda r, b: ["audit", "--no-progress", "--config", str(r / "config.yaml"),
                                            "--manifests", str(b)], ALL_BUT_DIRECTORY),
    Slot("audit --constraints", lambda r, b: ["audit", "--no-progress", "--config", str(r / "config.yaml"),
                                              "--manifests", str(r / "pod.yaml"), "--constraints", str(b)],
         ALL_BUT_DIRECTORY),
    Slot("audit --namespaces", lambda r, b: ["audit", "--no-progress", "--config", str(r / "config.yaml"),
                                             "--manifests", str(r / "pod.yaml"), "--namespaces", str(b)],
         ALL_BUT_DIRECTORY),
    Slot("audit --gatekeeper-status", lambda r, b: ["audit", "--no-progress", "--config", str(r / "config.yaml"),
                                                    "--manifests", str(r / "pod.yaml"), "--gatekeeper-status",
                                                    str(b)], filename="status.json"),
    Slot("audit --baseline", lambda r, b: ["audit", "--no-progress", "--config", str(r / "config.yaml"),
                                           "--manifests", str(r / "pod.yaml"), "--baseline", str(b)],
         filename="baseline.json"),
    Slot("audit --config", lambda r, b: ["audit", "--no-progress", "--config", str(b), "--manifests",
                                         str(r / "pod.yaml")]),
    Slot("audit --ca", lambda r, b: ["audit", "--no-progress", "--provider", PROVIDER, "--ca", str(b),
                                     "--manifests", str(r / "pod.yaml")], filename="ca.pem"),
    Slot("policy build --policies", lambda r, b: ["policy", "build", str(r / "out"), "--policies", str(b)]),
    Slot("import kritis", lambda r, b: ["import", "kritis", str(b)], ALL_BUT_DIRECTORY),
    Slot("import ratify", lambda r, b: ["import", "ratify", str(b)], ALL_BUT_DIRECTORY),
]


def place(root: Path, slot: Slot, kind: str) -> Path:
    bad = root / "bad" / slot.filename
    bad.parent.mkdir(exist_ok=True)
    if kind == "directory":
        bad.mkdir()
    elif kind != "missing":
        bad.write_bytes(CONTENTS[kind])
    return bad


def assert_one_line_error(capfd: pytest.CaptureFixture[str], argv: list[str], *names: str) -> None:
    code = main(argv)
    out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and "backtrace" not in err.lower() and "internal error" not in err, err
    assert len(lines) == 1 and lines[0].startswith("sigwarden: "), err
    assert any(name in lines[0] for name in names), err


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _workspace(tmp_path_factory.mktemp("bad-inputs"))


def remove(bad: Path) -> None:
    """Put the slot back as it was: the next case places its own bad input there."""
    if bad.is_dir():
        bad.rmdir()
    else:
        bad.unlink(missing_ok=True)


@pytest.mark.parametrize(("slot", "kind"), [pytest.param(s, k, id=f"{s.name}-{k}") for s in SLOTS for k in s.kinds])
def test_bad_input_file_is_one_line_exit_2(root: Path, slot: Slot, kind: str, capfd: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(root)
    monkeypatch.delenv("SIGWARDEN_CONFIG", raising=False)
    bad = place(root, slot, kind)
    try:
        assert_one_line_error(capfd, slot.argv(root, bad), slot.filename)
    finally:
        remove(bad)


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_kubeconfig_is_one_line_exit_2(root: Path, kind: str, capfd: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`audit --cluster` reads KUBECONFIG: the same table for that file."""
    slot = Slot("audit --cluster", lambda r, b: ["audit", "--cluster", "--no-progress"], filename="kubeconfig")
    bad = place(root, slot, kind)
    monkeypatch.setenv("KUBECONFIG", str(bad))
    try:
        assert_one_line_error(capfd, slot.argv(root, bad), slot.filename)
    finally:
        remove(bad)


def _template(kind: str, rego: str) -> list[dict[str, object]]:
    return [{"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
             "metadata": {"name": kind.lower()},
             "spec": {"crd": {"spec": {"names": {"kind": kind}}},
                      "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": rego}]}},
            {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind, "metadata": {"name": "c"}, "spec": {}}]


REGO = {
    "does not parse": ("K8sUnparsed", 'package k8sunparsed\nviolation[{"msg": m}] {\n  m := (\n}\n'),
    # A builtin failing at evaluation time: regorus raises with its Rust backtrace attached.
    "fails evaluating": ("K8sFailing", 'package k8sfailing\nviolation[{"msg": m}] {\n'
                                       '  input.review.object.kind\n  m := sprintf("%v", [to_number("x")])\n}\n'),
}


@pytest.mark.parametrize("command", ["admit", "audit", "policy test"])
@pytest.mark.parametrize("problem", list(REGO))
def test_rego_errors_are_one_line_exit_2(root: Path, tmp_path: Path, command: str, problem: str,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    kind, rego = REGO[problem]
    template, constraint = _template(kind, rego)
    policy = tmp_path / "policy"
    write_yaml(policy / "template.yaml", template)
    write_yaml(policy / "constraint.yaml", constraint)
    config, pod = str(root / "config.yaml"), str(root / "pod.yaml")
    if command == "admit":
        argv = ["admit", "--config", config, "--constraints", str(policy), "-f", pod]
    elif command == "audit":
        argv = ["audit", "--no-progress", "--config", config, "--constraints", str(policy), "--manifests", pod]
    else:
        (tmp_path / "pod.yaml").write_text((root / "pod.yaml").read_text())
        suite = {"kind": "Suite", "apiVersion": "test.gatekeeper.sh/v1alpha1", "tests": [
            {"name": "t", "template": "policy/template.yaml", "constraint": "policy/constraint.yaml",
             "cases": [{"name": "c", "object": "pod.yaml", "assertions": [{"violations": "no"}]}]}]}
        (tmp_path / "suite.yaml").write_text(yaml.safe_dump(suite))
        argv = ["policy", "test", "--config", config, str(tmp_path)]
    assert_one_line_error(capfd, argv, "template.yaml")
    capfd.readouterr()
