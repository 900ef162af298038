"""Property: no config file, however malformed, makes the config reader raise anything but ConfigError."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from provider.config import Config, ConfigError, build_config, load_config
from provider.devkit import notation
from tests.helpers import VECTORS

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                          max_size=4), max_leaves=10)
POLICY = {"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["*"],
                                               "signatureVerification": {"level": "strict"},
                                               "trustStores": ["ca:certs"], "trustedIdentities": ["*"]}]}


def either(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes any JSON in its place."""
    return st.one_of(valid, valid, valid, JSON)


def some(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={k: either(v) for k, v in fields.items()})


# Files next to the config: real ones of each kind, broken ones, a binary one, a directory and missing names.
FILES = st.sampled_from(["root.pem", "key.pub", "policy.json", "broken.json", "deep.json", "binary.bin", "empty",
                         "dir", "missing.pem", "include.yaml", "bad-include.yaml", "/dev/null", ""])
PATHS = st.lists(FILES | st.text(max_size=6), max_size=2)
DURATIONS = st.sampled_from(["5s", "2m", "1h", "0s", "-1s", "5", "x", "1e309s"]) | st.integers()
INTS = st.integers(min_value=-2, max_value=10**20)
IDENTITY = some(subject=st.text(max_size=6), subjectRegExp=st.sampled_from([".*", "(", "a+", "[z-a]"]),
                issuer=st.text(max_size=6), issuerRegExp=st.sampled_from([".*", ")", "x"]))
COSIGN = some(publicKeys=st.lists(FILES | some(file=FILES, pem=st.sampled_from(["", "-----BEGIN PUBLIC KEY-----"])),
                                  max_size=2),
              tlog=st.sampled_from(["required", "optional", "never", "x"]), rekorKeys=PATHS,
              dockerReference=st.text(max_size=8),
              keyless=some(trustedRoot=FILES, fulcioRoots=PATHS, fulcioIntermediates=PATHS, rekorKeys=PATHS,
                           identities=st.lists(IDENTITY, max_size=2)),
              pki=some(roots=PATHS, intermediates=PATHS, identities=st.lists(IDENTITY, max_size=2)))
NOTATION = some(trustStores=st.dictionaries(st.sampled_from(["ca:certs", "tsa:ts", "x:y", "ca:"]), PATHS, max_size=2),
                trustPolicy=some(file=FILES, inline=st.just(POLICY) | JSON))
ATTESTATION = some(publicKeyData=st.sampled_from(["", "!!", "aGVsbG8="]), publicKeyId=st.text(max_size=4),
                   lookaside=st.sampled_from(["file:///nonexistent", "https://127.0.0.1:1/x", "ftp://x", ""]),
                   dockerReference=st.text(max_size=6),
                   publicKeys=st.lists(some(keyType=st.sampled_from(["PGP", "PKIX", "X"]), keyId=st.text(max_size=4),
                                            asciiArmoredPgpPublicKey=st.text(max_size=8),
                                            pkixPublicKey=some(publicKeyPem=st.text(max_size=8),
                                                               signatureAlgorithm=st.text(max_size=8))),
                                       max_size=2))
AUTHORITY = some(name=st.sampled_from(["a", "b", ""]) | st.text(max_size=4), scopes=st.lists(st.text(max_size=8),
                                                                                            max_size=2),
                 cosign=COSIGN, notation=NOTATION, attestation=ATTESTATION)
STORE = some(type=st.sampled_from(["registry", "oci-layout", "lookaside", "x"]), match=st.lists(
    st.sampled_from(["*", "registry.example/*", "REG.example:443/a", "a**", "["]) | st.text(max_size=6), max_size=2),
    path=FILES, insecure=st.lists(st.text(max_size=6), max_size=2), ca=PATHS,
    auth=some(dockerConfig=FILES, static=st.dictionaries(st.text(max_size=8), some(
        username=st.text(max_size=4), password=st.text(max_size=4), identityToken=st.text(max_size=4)), max_size=2)))
CONFIG = some(
    server=some(listen=st.sampled_from(["127.0.0.1:8443", ":0", "x", "[::1]:1", "host:99999"]),
                metricsListen=st.sampled_from(["127.0.0.1:9090", ""]), requestDeadline=DURATIONS, maxKeys=INTS,
                maxBodyBytes=INTS, threads=INTS, reloadInterval=DURATIONS,
                tls=some(cert=FILES, key=FILES, clientCA=FILES, clientNames=st.lists(st.text(max_size=6), max_size=2))),
    verification=some(concurrency=INTS, maxSignatures=INTS, maxBlobBytes=INTS, maxPredicateBytes=INTS,
                      cache=some(ttl=DURATIONS, unverifiedTtl=DURATIONS, errorTtl=DURATIONS, maxEntries=INTS)),
    mutation=some(keepTag=st.booleans()),
    stores=st.lists(STORE, max_size=2),
    authorities=st.lists(AUTHORITY, max_size=2),
    include=st.lists(st.sampled_from(["include.yaml", "bad-include.yaml", "*.yaml", "*", "*.bin", "missing.yaml",
                                      "dir"]), max_size=2))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fuzzconfig")
    identity = notation.identity_with_intermediate("ec-256")
    (directory / "root.pem").write_bytes(identity.root_pem)
    (directory / "key.pub").write_bytes((VECTORS / "containers-image/cosign.pub").read_bytes())
    (directory / "policy.json").write_text(json.dumps(POLICY))
    (directory / "broken.json").write_text("{")
    (directory / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (directory / "binary.bin").write_bytes(bytes(range(256)))
    (directory / "empty").write_bytes(b"")
    (directory / "dir").mkdir()
    (directory / "include.yaml").write_text(yaml.safe_dump({"authorities": [{"name": "inc", "cosign": {
        "publicKeys": ["key.pub"]}}]}))
    (directory / "bad-include.yaml").write_text("kind: AttestationAuthority\nspec: [1, 2\n")
    return directory


def build(data: Any, source: Path) -> None:
    try:
        config = build_config(data, source)
    except ConfigError as exc:
        assert exc.problem
        return
    assert isinstance(config, Config)


DEEP_FILE_CASES = [
    {"authorities": [{"name": "n", "notation": {"trustStores": {"ca:certs": ["root.pem"]},
                                                "trustPolicy": {"file": "deep.json"}}}]},
    {"authorities": [{"name": "n", "cosign": {"keyless": {"trustedRoot": "deep.json"}}}]},
    {"stores": [{"type": "registry", "match": ["*"], "auth": {"dockerConfig": "deep.json"}}]},
    {"include": ["*.bin"]},
]


@SETTINGS
@given(CONFIG)
@example(data=DEEP_FILE_CASES[0])
@example(data=DEEP_FILE_CASES[1])
@example(data=DEEP_FILE_CASES[2])
@example(data=DEEP_FILE_CASES[3])
def test_structured_configs_load_or_raise_config_error(workdir: Path, data: dict[str, Any]) -> None:
    build(data, workdir / "config.yaml")


@SETTINGS
@given(JSON)
def test_any_yaml_value_loads_or_raises_config_error(workdir: Path, data: Any) -> None:
    build(data, workdir / "config.yaml")


@SETTINGS
@given(st.text(max_size=200).map(str.encode) | st.binary(max_size=200))
@example(content=b"[" * 100_000)
@example(content=b"- " * 20_000 + b"x")
@example(content=b"include: ['*.bin']")
@example(content=b"\xff\xfe not UTF-8")
def test_any_config_file_loads_or_raises_config_error(workdir: Path, content: bytes) -> None:
    path = workdir / "text.yml"  # not matched by the include globs of other examples
    path.write_bytes(content)
    try:
        load_config(path)
    except ConfigError as exc:
        assert exc.problem


def test_the_fixture_files_are_usable(workdir: Path) -> None:
    config = build_config({"authorities": [{"name": "n", "notation": {"trustStores": {"ca:certs": ["root.pem"]},
                                                                     "trustPolicy": {"file": "policy.json"}}}],
                           "include": ["include.yaml"]}, workdir / "config.yaml")
    assert [a.name for a in config.authorities] == ["n", "inc"]
