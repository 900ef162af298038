from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provider.cli import main
from provider.config import ConfigError, build_config, load_config, parse_duration
from provider.devkit.pki import make_ca
from tests.helpers import VECTORS, negative_serial, with_negative_serial, write_yaml
from tests.test_notation_isolation import policy


def public_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture
def cosign_pub(tmp_path: Path) -> Path:
    path = tmp_path / "cosign.pub"
    path.write_text(public_pem())
    return path


def test_durations() -> None:
    assert parse_duration("2.5s") == 2.5
    assert parse_duration("300ms") == pytest.approx(0.3)
    assert parse_duration("5m") == 300
    assert parse_duration("1h") == 3600
    for bad in ("5", "five seconds", "-1s", "1d", ""):
        with pytest.raises(ValueError, match="duration"):
            parse_duration(bad)


def test_full_config_loads_with_relative_files(tmp_path: Path, cosign_pub: Path) -> None:
    (tmp_path / "layouts").mkdir()
    (tmp_path / "authorities.d").mkdir()
    trust_policy = tmp_path / "trustpolicy.json"
    trust_policy.write_text((VECTORS / "notation/ratify-valid_trust_policy.json").read_text())
    write_yaml(tmp_path / "authorities.d/kritis.yaml", {
        "apiVersion": "kritis.grafeas.io/v1beta1", "kind": "AttestationAuthority",
        "metadata": {"name": "kms-key"},
        "spec": {"publicKeyData": base64.b64encode(public_pem().encode()).decode(), "publicKeyId": "k1"}})
    config_path = write_yaml(tmp_path / "config.yaml", {
        "server": {"listen": "127.0.0.1:8443", "requestDeadline": "1500ms", "maxKeys": 10},
        "verification": {"concurrency": 4, "cache": {"ttl": "1m", "unverifiedTtl": "5s"}},
        "mutation": {"keepTag": False},
        "stores": [{"type": "oci-layout", "path": "layouts", "match": ["airgap.example/*"]},
                   {"type": "registry", "match": ["*"], "insecure": ["127.0.0.1:5000"],
                    "auth": {"static": {"127.0.0.1:5000": {"username": "u", "password": "secret"}}}}],
        "authorities": [
            {"name": "team-a", "scopes": ["registry.example/team-a/*"],
             "cosign": {"publicKeys": [{"file": "cosign.pub"}, {"pem": public_pem()}],
                        "rekorKeys": [str(VECTORS / "containers-image/rekor.pub")], "tlog": "required"}},
            {"name": "release-ca", "notation": {
                "trustStores": {"ca:certs": [str(VECTORS / "notation/truststore/NotationTestRoot.pem")]},
                "trustPolicy": {"file": "trustpolicy.json"}}},
        ],
        "include": ["authorities.d/*.yaml"],
    })
    config = load_config(config_path)
    assert config.server.request_deadline == 1.5
    assert config.verification.cache.ttl == 60 and config.verification.cache.unverified_ttl == 5
    assert config.mutation.keep_tag is False
    assert [s.type for s in config.stores] == ["oci-layout", "registry"]
    assert config.stores[0].path == tmp_path / "layouts"
    assert "secret" not in repr(config.stores[1])  # credentials never appear in reprs or logs
    assert [a.name for a in config.authorities] == ["team-a", "release-ca", "kms-key"]
    team_a = config.authorities[0]
    assert team_a.cosign is not None and len(team_a.cosign.public_keys) == 2
    assert team_a.covers("registry.example/team-a/app") and not team_a.covers("registry.example/team-b/app")
    assert config.authorities[2].attestation.keys[0].kind == "pkix"
    assert cosign_pub in config.sources and trust_policy in config.sources
    assert tmp_path / "authorities.d/kritis.yaml" in config.sources


@pytest.mark.parametrize(("data", "field", "problem"), [
    ({"server": {"requestDeadline": "soon"}}, "server.requestDeadline", "duration"),
    ({"server": {"listen": "8443"}}, "server.listen", "host:port"),
    ({"server": {"maxKeys": 0}}, "server.maxKeys", "at least 1"),
    ({"server": {"tls": {"cert": "missing.pem", "key": "missing.key"}}}, "server.tls.cert", "file not found"),
    ({"servers": {}}, "servers", "unknown key"),
    ({"verification": {"cache": {"tll": "5m"}}}, "verification.cache.tll", "unknown key"),
    ({"stores": [{"type": "s3"}]}, "stores[0].type", "must be one of"),
    ({"stores": [{"type": "oci-layout"}]}, "stores[0].path", "needs a path"),
    ({"stores": [{"type": "registry", "auth": {"tokenRealms": ["https://auth.example/token"]}}]},
     "stores[0].auth.tokenRealms", "not a host name"),
    ({"authorities": [{"name": "a"}]}, "authorities[0]", "needs a cosign, notation or attestation"),
    ({"authorities": [{"name": "A B", "cosign": {}}]}, "authorities[0].name", "lowercase"),
    ({"authorities": [{"name": "a", "cosign": {}}]}, "authorities[0].cosign.publicKeys", "needs publicKeys"),
    ({"authorities": [{"name": "a", "cosign": {"publicKeys": [{"pem": "junk"}]}}]},
     "authorities[0].cosign.publicKeys[0].pem", "not a PEM public key"),
    ({"authorities": [{"name": "a", "cosign": {"publicKeys": ["nope.pub"]}}]},
     "authorities[0].cosign.publicKeys[0].file", "file not found"),
    ({"authorities": [{"name": "a", "cosign": {"keyless": {"fulcioRoots": []}}}]},
     "authorities[0].cosign.keyless.fulcioRoots", "needs trustedRoot or fulcioRoots"),
    ({"authorities": [{"name": "a", "notation": {"trustStores": {"bogus": []}}}]},
     "authorities[0].notation.trustStores.bogus", "ca|signingAuthority|tsa"),
    ({"authorities": [{"name": "a", "attestation": {"publicKeyData": "%%%"}}]},
     "authorities[0].attestation.publicKeyData", "base64"),
    ({"include": ["nothere.yaml"]}, "include[0]", "file not found"),
])
def test_errors_name_file_and_field(tmp_path: Path, data: dict, field: str, problem: str) -> None:
    path = write_yaml(tmp_path / "config.yaml", data)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert caught.value.field_path == field
    assert problem in caught.value.problem
    assert str(path) in str(caught.value) and field in str(caught.value)


def test_duplicate_authority_names(tmp_path: Path, cosign_pub: Path) -> None:
    authority = {"name": "dup", "cosign": {"publicKeys": ["cosign.pub"]}}
    path = write_yaml(tmp_path / "c.yaml", {"authorities": [authority, authority]})
    with pytest.raises(ConfigError, match="duplicate authority name 'dup'"):
        load_config(path)


def test_kritis_v1beta1_authority_with_base64_pgp_loads(tmp_path: Path) -> None:
    include = tmp_path / "attestor.yaml"
    include.write_text((VECTORS / "kritis/test-attestor-1.yaml").read_text().replace("{{ .Project }}", "p"))
    config = load_config(write_yaml(tmp_path / "c.yaml", {"include": [
        {"path": "attestor.yaml", "lookaside": "https://sigstore.example/"}]}))
    (authority,) = config.authorities
    assert authority.name == "test-attestor-1"
    assert authority.attestation.keys[0].kind == "pgp"
    assert authority.attestation.keys[0].key_id == "88D27A9C701BD8391D372E5CCD415CBF850E2029"
    assert authority.attestation.lookaside == "https://sigstore.example/"


def test_included_kritis_gpg_authority_needs_a_lookaside(tmp_path: Path) -> None:
    include = tmp_path / "attestor.yaml"
    include.write_text((VECTORS / "kritis/test-attestor-1.yaml").read_text().replace("{{ .Project }}", "p"))
    with pytest.raises(ConfigError, match=r"AttestationAuthority 'test-attestor-1' in attestor\.yaml has PGP keys") \
            as caught:
        load_config(write_yaml(tmp_path / "c.yaml", {"include": ["attestor.yaml"]}))
    assert caught.value.field_path == "include[0].lookaside"
    assert "include it as {path: …, lookaside: …}" in caught.value.problem


def test_placeholders_fail_with_the_instruction(tmp_path: Path) -> None:
    data = {"authorities": [{"name": "a", "cosign": {"publicKeys": ["TODO: path of the release key"]}}],
            "stores": [{"type": "registry", "match": ["TODO: your registry hosts"]}]}
    path = write_yaml(tmp_path / "c.yaml", data)
    assert main(["config", "check", str(path)]) == 2
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.field_path == "authorities[0].cosign.publicKeys[0]"
    assert caught.value.problem == ("placeholder left by `sigwarden import`: fill in path of the release key "
                                    "(1 more placeholder(s) after this one)")


def test_unparsable_yaml_and_empty_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="the config file is empty"):
        load_config(empty)
    empty.write_text("{}\n")  # every default, said on purpose
    config = load_config(empty)
    assert config.stores[0].type == "registry" and config.authorities == ()


def test_config_check_command(tmp_path: Path, cosign_pub: Path, capsys: pytest.CaptureFixture[str]) -> None:
    authority = {"name": "a", "cosign": {"publicKeys": ["cosign.pub"]}}
    good = write_yaml(tmp_path / "good.yaml", {"authorities": [authority]})
    assert main(["config", "check", "--for", "verify", str(good)]) == 0
    assert "ok for verify (1 authorities" in capsys.readouterr().out
    assert main(["config", "check", str(good)]) == 2  # serve (the default) needs TLS
    assert "server.tls: cert and key are required to serve" in capsys.readouterr().err
    bad = write_yaml(tmp_path / "bad.yaml", {"server": {"requestDeadline": 3}})
    assert main(["config", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: server.requestDeadline: expected a duration" in err
    assert main(["config", "check", str(tmp_path / "absent.yaml")]) == 2
    assert "cannot read config" in capsys.readouterr().err


def test_configuration_reference_documents_every_accepted_key() -> None:
    import re

    from provider.config import accepted_keys

    doc = (Path(__file__).resolve().parents[1] / "docs/configuration.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", doc, re.MULTILINE))
    assert documented == set(accepted_keys())


def test_empty_client_ca_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("")
    path = write_yaml(tmp_path / "c.yaml", {"server": {"tls": {"clientCA": "ca.crt"}}})
    with pytest.raises(ConfigError, match="holds no PEM certificate") as caught:
        load_config(path)
    assert caught.value.field_path == "server.tls.clientCA"


def test_cache_size_tag_ttl_mutation_deadline_and_store_limits(tmp_path: Path) -> None:
    data = {"verification": {"cache": {"maxBytes": "32MiB", "tagTtl": "2s"}}, "mutation": {"deadline": "500ms"},
            "stores": [{"type": "registry", "match": ["*"], "allowNetworks": ["10.0.0.0/8"],
                        "denyNetworks": ["10.96.0.0/12", "fd00::/8"], "concurrencyPerAddress": 4,
                        "concurrencyWildcard": 16}]}
    config = build_config(data, write_yaml(tmp_path / "c.yaml", data))
    assert config.verification.cache.max_bytes == 32 * 1024 * 1024 and config.verification.cache.tag_ttl == 2.0
    assert config.mutation.deadline == 0.5
    store = config.stores[0]
    assert (store.allow_networks, store.deny_networks) == (("10.0.0.0/8",), ("10.96.0.0/12", "fd00::/8"))
    assert (store.concurrency_per_address, store.concurrency_wildcard) == (4, 16)
    assert build_config({}, tmp_path / "c.yaml").verification.cache.max_bytes == 64 * 1024 * 1024
    for bad, problem in (("lots", "expected a size such as"), ("12KiB", "must be at least 1048576 bytes")):
        data = {"verification": {"cache": {"maxBytes": bad}}}
        with pytest.raises(ConfigError, match=problem) as caught:
            build_config(data, write_yaml(tmp_path / "c.yaml", data))
        assert caught.value.field_path == "verification.cache.maxBytes"


def test_shared_cache_settings_and_their_errors(tmp_path: Path) -> None:
    (tmp_path / "hmac.key").write_text("k" * 64)
    (tmp_path / "short.key").write_text("k" * 8)
    (tmp_path / "ca.pem").write_text("ca")
    good = {"url": "rediss://redis.cache:6380/0", "hmacKeyFile": "hmac.key", "ca": "ca.pem", "prefix": "team-a",
            "timeout": "150ms"}
    config = build_config({"verification": {"cache": {"redis": good}}}, write_yaml(tmp_path / "c.yaml", {}))
    redis = config.verification.cache.redis
    assert redis is not None and redis.url == good["url"] and redis.prefix == "team-a" and redis.timeout == 0.15
    assert redis.hmac_key_file == tmp_path / "hmac.key" and redis.ca == tmp_path / "ca.pem"
    assert build_config({}, tmp_path / "c.yaml").verification.cache.redis is None
    for change, field, problem in [({"url": "http://redis:6379"}, "url", "redis:// or rediss://"),
                                   ({"hmacKeyFile": None}, "hmacKeyFile", "needs an HMAC key file"),
                                   ({"hmacKeyFile": "short.key"}, "hmacKeyFile", "at least 32 bytes"),
                                   ({"url": "redis://redis:6379", "ca": "ca.pem"}, "ca", "only used with a rediss"),
                                   ({"prefix": "a b"}, "prefix", "letters, digits")]:
        data = {"verification": {"cache": {"redis": {k: v for k, v in {**good, **change}.items() if v is not None}}}}
        with pytest.raises(ConfigError) as caught:
            build_config(data, tmp_path / "c.yaml")
        assert caught.value.field_path == f"verification.cache.redis.{field}" and problem in caught.value.problem


def test_trust_digest_ignores_the_server_section(tmp_path: Path) -> None:
    source = tmp_path / "c.yaml"
    one = build_config({"server": {"listen": "127.0.0.1:1"}, "verification": {"concurrency": 4}}, source)
    two = build_config({"server": {"listen": "127.0.0.1:2"}, "verification": {"concurrency": 4}}, source)
    three = build_config({"verification": {"concurrency": 5}}, source)
    assert one.trust_digest == two.trust_digest != three.trust_digest


@pytest.mark.parametrize("encoding", [serialization.Encoding.PEM, serialization.Encoding.DER])
def test_a_trust_store_certificate_with_a_negative_serial_number_is_a_config_error(tmp_path: Path,
                                                                                  encoding: Any) -> None:
    """notation-go loads trust stores with Go's x509.ParseCertificates, which refuses a negative serial
    (crypto/x509 parser.go, since Go 1.23): such a store does not load there, so it does not here."""
    root = make_ca("Acme Root")
    (tmp_path / "root.crt").write_bytes(with_negative_serial(root.cert, root.key).public_bytes(encoding))
    path = write_yaml(tmp_path / "c.yaml", {"authorities": [{"name": "acme", "notation": {
        "trustStores": {"ca:acme": ["root.crt"]}, "trustPolicy": {"inline": policy()}}}]})
    with pytest.raises(ConfigError, match=r"root\.crt: a certificate's serial number -\d+ is negative \(RFC 5280 "
                                          r"4\.1\.2\.2\); Go's crypto/x509, which cosign and notation use, "
                                          r"refuses it") as caught:
        load_config(path)
    assert caught.value.field_path.startswith("authorities[0].notation.trustStores")


def test_a_trusted_root_certificate_with_a_negative_serial_number_is_a_config_error(tmp_path: Path) -> None:
    """sigstore-go reads trusted_root.json's CA chains with Go's x509.ParseCertificate (parser.go, Go 1.23+)."""
    root = json.loads((VECTORS / "cosign/trusted_root_pgi.json").read_text())
    chain = root["certificateAuthorities"][0]["certChain"]["certificates"]
    der = base64.b64decode(chain[0]["rawBytes"])
    old, new = negative_serial(x509.load_der_x509_certificate(der))
    chain[0]["rawBytes"] = base64.b64encode(der.replace(old, new, 1)).decode()
    (tmp_path / "trusted_root.json").write_text(json.dumps(root))
    path = write_yaml(tmp_path / "c.yaml", {"authorities": [{"name": "pgi", "cosign": {"keyless": {
        "trustedRoot": "trusted_root.json", "identities": [{"subject": "a@example.com",
                                                            "issuer": "https://issuer.example"}]}}}]})
    with pytest.raises(ConfigError, match=r"not a Sigstore trusted root: serial number -\d+ is negative"):
        load_config(path)
