from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from provider.config import ConfigError, load_config
from provider.config.guard import check_replacement, declared_keys
from provider.devkit.cosign import public_pem
from provider.devkit.pki import make_ca

PEM_KEY = public_pem(ec.generate_private_key(ec.SECP256R1())).decode()


def write(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


@pytest.fixture
def serving(tmp_path: Path):
    ca = make_ca("client CA")
    ca.write(tmp_path, "client-ca")
    return {"server": {"tls": {"clientCA": str(tmp_path / "client-ca.crt"), "clientNames": ["gk"]}},
            "stores": [{"type": "registry", "match": ["registry.example/*"]}],
            "authorities": [{"name": "team", "cosign": {"publicKeys": [{"pem": PEM_KEY}]}}]}


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_an_empty_file_is_refused_at_start(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="the config file is empty"):
        load_config(write(tmp_path / "c.yaml", text))


@pytest.mark.parametrize("text", ["[]\n", "- a\n", "just a string\n", "42\n"])
def test_a_non_mapping_is_refused_at_start(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path / "c.yaml", text))


def test_declared_keys_notes_presence_not_value() -> None:
    assert declared_keys({"authorities": [], "server": {"tls": {"clientCA": None}}}) == {
        "authorities", "server.tls.clientCA"}
    assert declared_keys({"server": None, "stores": None}) == {"stores"}
    assert declared_keys([]) == frozenset()


@pytest.mark.parametrize(("drop", "field", "explicit"), [
    (lambda c: c.pop("authorities"), "authorities", lambda c: c.update(authorities=[])),
    (lambda c: c.pop("stores"), "stores", lambda c: c.update(stores=[])),
    (lambda c: c["server"]["tls"].pop("clientNames"), "server.tls.clientNames",
     lambda c: c["server"]["tls"].update(clientNames=[])),
    (lambda c: (c["server"]["tls"].pop("clientNames"), c["server"]["tls"].pop("clientCA")), "server.tls.clientCA",
     lambda c: c["server"]["tls"].update(clientNames=[], clientCA=None)),
])
def test_dropping_protection_needs_the_key_written_out(tmp_path: Path, serving: dict, drop, field: str,
                                                       explicit) -> None:
    old = load_config(write(tmp_path / "old.yaml", serving))
    drop(serving)
    implicit = load_config(write(tmp_path / "new.yaml", serving))
    with pytest.raises(ConfigError) as refused:
        check_replacement(old, implicit)
    assert refused.value.field_path == field and "on purpose" in refused.value.problem
    explicit(serving)
    check_replacement(old, load_config(write(tmp_path / "new.yaml", serving)))  # accepted


def test_unchanged_protection_passes(tmp_path: Path, serving: dict) -> None:
    old = load_config(write(tmp_path / "old.yaml", serving))
    check_replacement(old, load_config(write(tmp_path / "new.yaml", serving)))
