"""Notation trust stores read from Alibaba Cloud KMS Certificates Manager (`{alibabaKms: {certificateId,
region}}`): GetCertificate (API version 2016-01-20) through alibabacloud-kms20160120 with the pod's RRSA
identity, against STS and KMS stand-ins over TLS on their real host names inside a private network namespace;
the same load, refresh and last-good rules as every key store (provider.config.remote)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from prometheus_client import generate_latest

from provider.config import ConfigError, build_config
from provider.config.remote import REFRESH_INTERVAL, REMOTE_TRUST
from provider.devkit import notation
from provider.metrics import Metrics
from tests.clouds.standins import AlibabaStsStandIn, KmsCertificateStandIn
from tests.clouds.test_alibaba import OIDC_PROVIDER, OIDC_TOKEN, ROLE, alibaba_world, rrsa_pod, verify_seed
from tests.clouds.test_key_stores import notation_image
from tests.cloudworld import WorldCA, in_world, serve_wsgi
from tests.helpers import facts_for, metric_value, with_negative_serial, write_yaml
from tests.test_notation_isolation import policy

pytest.importorskip("alibabacloud_credentials")
pytest.importorskip("alibabacloud_kms20160120")

CERTIFICATE_ID = "9a28de48-8d8b-484d-a766-dec4a1b2c3d4"
REGION = "cn-hangzhou"


def kms_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, certificates: dict[str, tuple[bytes, bytes]],
              vpc: bool = False) -> tuple[AlibabaStsStandIn, KmsCertificateStandIn]:
    world = WorldCA.create(tmp_path / "ca")
    world.trust(monkeypatch)
    suffix = "-vpc" if vpc else ""
    sts = AlibabaStsStandIn(ROLE, OIDC_PROVIDER, OIDC_TOKEN)
    serve_wsgi(sts, f"sts{suffix}.{REGION}.aliyuncs.com", world)
    kms = KmsCertificateStandIn(sts, certificates)
    serve_wsgi(kms, f"kms{suffix}.{REGION}.aliyuncs.com", world)
    rrsa_pod(tmp_path, monkeypatch, vpc)
    return sts, kms


def kept(identity: notation.SigningIdentity) -> tuple[bytes, bytes]:
    """How Certificates Manager answers for `identity`'s signing certificate: the certificate, then its chain."""
    pems = [c.public_bytes(serialization.Encoding.PEM) for c in identity.chain]
    return pems[0], b"".join(pems[1:])


def kms_config(tmp_path: Path, entry: dict[str, Any]) -> dict[str, Any]:
    return {"stores": [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["*"]}],
            "authorities": [{"name": "ack-release", "notation": {
                "trustStores": {"ca:acme": [entry]}, "trustPolicy": {"inline": policy()}}}]}


def kms_facts(tmp_path: Path, image: str, certificate_id: str = CERTIFICATE_ID) -> dict[str, Any]:
    return facts_for(tmp_path, kms_config(tmp_path, {"alibabaKms": {"certificateId": certificate_id,
                                                                    "region": REGION}}), image)


@in_world
def test_a_kms_certificate_is_a_notation_trust_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signer, stranger = notation.identity_with_intermediate("rsa-2048"), notation.identity_with_intermediate("rsa-2048")
    # Alibaba Cloud KMS API reference, GetCertificate (2016-01-20): the certificate and its chain, both PEM. The
    # chain's root in the trust store is what notation's authenticity check asks (provider.verifiers.notation.chain).
    sts, kms = kms_world(tmp_path, monkeypatch, {CERTIFICATE_ID: kept(signer)})
    signed, other = notation_image(tmp_path, signer, "signed"), notation_image(tmp_path, stranger, "other")
    facts = kms_facts(tmp_path, signed)
    assert facts["verified"] is True and facts["authorities"] == ["ack-release"], facts
    assert kms_facts(tmp_path, other)["verified"] is False
    # The documented call (Action GetCertificate, version 2016-01-20, CertificateId) at the regional endpoint,
    # signed with the STS credentials RRSA brought.
    calls = kms.recorder.requests
    assert calls and {host for host, _ in calls} == {f"kms.{REGION}.aliyuncs.com"}
    assert all(c["CertificateId"] == CERTIFICATE_ID and "GetCertificate" in (c.get("Action"), c["action"])
               for _, c in calls)
    assert sts.issued


@in_world
def test_inside_a_vpc_kms_is_reached_at_its_vpc_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    signer = notation.identity_with_intermediate("rsa-2048")
    sts, kms = kms_world(tmp_path, monkeypatch, {CERTIFICATE_ID: kept(signer)}, vpc=True)
    assert kms_facts(tmp_path, notation_image(tmp_path, signer, "signed"))["verified"] is True
    assert {host for host, _ in kms.recorder.requests} == {f"kms-vpc.{REGION}.aliyuncs.com"}
    assert {host for host, _ in sts.recorder.requests} == {f"sts-vpc.{REGION}.aliyuncs.com"}


@in_world
def test_a_replaced_certificate_is_followed_and_a_failed_refresh_keeps_the_last(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before, after = notation.identity_with_intermediate("rsa-2048"), notation.identity_with_intermediate("rsa-2048")
    _, kms = kms_world(tmp_path, monkeypatch, {CERTIFICATE_ID: kept(before)})
    old_image, new_image = notation_image(tmp_path, before, "before"), notation_image(tmp_path, after, "after")
    assert kms_facts(tmp_path, old_image)["verified"] is True
    assert kms_facts(tmp_path, new_image)["verified"] is False
    # The certificate under the id is replaced in KMS. Until a refresh is due the loaded material stands; the
    # refresh swaps it whole and moves the generation on (the config watcher reloads on that).
    kms.certificates[CERTIFICATE_ID] = kept(after)
    metrics, generation = Metrics(), REMOTE_TRUST.generation
    assert REMOTE_TRUST.refresh_if_due(metrics, now=time.monotonic()) is False
    assert kms_facts(tmp_path, new_image)["verified"] is False
    assert REMOTE_TRUST.refresh_if_due(metrics, now=time.monotonic() + REFRESH_INTERVAL) is True
    assert REMOTE_TRUST.generation == generation + 1
    assert kms_facts(tmp_path, new_image)["verified"] is True
    # One id names one certificate: what it replaced is no longer trusted (docs/clouds.md, Alibaba section).
    assert kms_facts(tmp_path, old_image)["verified"] is False
    # KMS refuses the next refresh: the last good material keeps serving, the failure is counted and named.
    kms.refusing = True
    assert REMOTE_TRUST.refresh_if_due(metrics, now=time.monotonic() + 3 * REFRESH_INTERVAL) is False
    text = generate_latest(metrics.registry).decode()
    assert metric_value(text, "sigwarden_trust_refreshes_total", {"result": "failure"}) == 1
    assert metric_value(text, "sigwarden_trust_refreshes_total", {"result": "success"}) == 1
    assert REMOTE_TRUST.last_error.startswith(f"Alibaba Cloud KMS {REGION} certificate {CERTIFICATE_ID}: ")
    assert "Forbidden.RAM" in REMOTE_TRUST.last_error and "\n" not in REMOTE_TRUST.last_error
    assert REMOTE_TRUST.generation == generation + 1
    assert kms_facts(tmp_path, new_image)["verified"] is True


@in_world
def test_a_certificate_kms_does_not_give_or_go_refuses_is_a_config_error_naming_the_field(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    identity = notation.identity_with_intermediate("ec-256")
    _, chain = kept(identity)
    # Go's crypto/x509 (parser.go, since Go 1.23), which notation uses, refuses a negative serial number.
    negative = with_negative_serial(identity.chain[0], identity.intermediate_key)
    kms_world(tmp_path, monkeypatch, {"chain-only": (b"", chain),
                                      "negative": (negative.public_bytes(serialization.Encoding.PEM), chain)})
    for certificate_id, reason in (("missing", "Forbidden.ResourceNotFound"),
                                   ("chain-only", "GetCertificate sent no certificate"),
                                   ("negative", "a certificate's serial number -")):
        data = kms_config(tmp_path, {"alibabaKms": {"certificateId": certificate_id, "region": REGION}})
        with pytest.raises(ConfigError) as raised:
            build_config(data, write_yaml(tmp_path / "config.yaml", data))
        assert raised.value.field_path == "authorities[0].notation.trustStores.ca:acme[0].alibabaKms"
        assert reason in raised.value.problem and "\n" not in raised.value.problem, raised.value.problem


@in_world
def test_without_rrsa_the_reason_names_what_to_set_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, kms = kms_world(tmp_path, monkeypatch, {CERTIFICATE_ID: kept(notation.identity_with_intermediate("ec-256"))})
    monkeypatch.delenv("ALIBABA_CLOUD_ROLE_ARN")
    data = kms_config(tmp_path, {"alibabaKms": {"certificateId": CERTIFICATE_ID, "region": REGION}})
    with pytest.raises(ConfigError) as raised:
        build_config(data, write_yaml(tmp_path / "config.yaml", data))
    assert raised.value.field_path == "authorities[0].notation.trustStores.ca:acme[0].alibabaKms"
    assert "no RRSA identity in this pod" in raised.value.problem and kms.recorder.requests == []


def test_the_entry_is_checked_before_any_call(tmp_path: Path) -> None:
    for entry, field, problem in (
            ({"alibabaKms": {"certificateId": CERTIFICATE_ID}}, "alibabaKms.region", "is required"),
            ({"alibabaKms": {"region": REGION}}, "alibabaKms.certificateId", "is required"),
            ({"alibabaKms": {"certificateId": CERTIFICATE_ID, "region": "evil.example/x"}}, "alibabaKms",
             "is not an Alibaba Cloud region id"),
            ({"alibabaKms": {"certificateId": CERTIFICATE_ID, "region": REGION, "version": "1"}},
             "alibabaKms.version", "unknown key"),
            ({"alibabaKms": {"certificateId": CERTIFICATE_ID, "region": REGION},
              "keyVault": {"vaultURI": "https://v.vault.azure.net", "certificateName": "c"}}, "",
             "give exactly one of keyVault or alibabaKms")):
        data = kms_config(tmp_path, entry)
        with pytest.raises(ConfigError) as raised:
            build_config(data, write_yaml(tmp_path / "config.yaml", data))
        where = "authorities[0].notation.trustStores.ca:acme[0]"
        assert raised.value.field_path == (f"{where}.{field}" if field else where), entry
        assert problem in raised.value.problem, (entry, raised.value.problem)


@in_world
def test_the_ack_seed_with_its_trust_store_in_kms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The ACK seed end to end, with the certificate kept in KMS rather than installed as a file: the image in
    # ACR EE pulled with RRSA (GetAuthorizationToken), its notation JWS signed with RSASSA-PSS as the
    # notation-alibabacloud-secret-manager plugin signs (AliyunContainerService/notation-alibabacloud-secret-manager,
    # GenerateSignature), verified against the certificate GetCertificate returns.
    from tests.clouds.test_alibaba import push_notation_signed

    alibaba = alibaba_world(tmp_path, monkeypatch)
    signer, stranger = notation.identity_with_intermediate("rsa-2048"), notation.identity_with_intermediate("rsa-2048")
    kms = KmsCertificateStandIn(alibaba.sts, {CERTIFICATE_ID: kept(signer), "other": kept(stranger)})
    serve_wsgi(kms, f"kms.{REGION}.aliyuncs.com", alibaba.world)
    try:
        digest = push_notation_signed(alibaba, tmp_path, signer)
        item = verify_seed(alibaba, tmp_path, [{"alibabaKms": {"certificateId": CERTIFICATE_ID, "region": REGION}}])
        assert not item.error, item.error
        assert item.value["verified"] is True and item.value["authorities"] == ["ack-release"]
        assert item.value["digest"] == digest
        assert alibaba.openapi.issued, "the pull did not go through RRSA and GetAuthorizationToken"
        assert kms.recorder.requests, "the trust store was not read from KMS"
        refused = verify_seed(alibaba, tmp_path, [{"alibabaKms": {"certificateId": "other", "region": REGION}}])
        assert not refused.error and refused.value["verified"] is False, refused
    finally:
        alibaba.registry.stop()


def test_without_the_kms_sdk_config_check_names_the_pip_install(tmp_path: Path) -> None:
    import subprocess
    import sys

    data = kms_config(tmp_path, {"alibabaKms": {"certificateId": CERTIFICATE_ID, "region": REGION}})
    config = write_yaml(tmp_path / "config.yaml", data)
    # The KMS SDK made unimportable in a child process, as on an install of the alibaba extra before it had it.
    probe = ("import sys; sys.modules['alibabacloud_kms20160120'] = None\n"
             "from provider.cli import main\n"
             f"sys.exit(main(['config', 'check', {str(config)!r}]))")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=root, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "authorities[0].notation.trustStores.ca:acme[0].alibabaKms" in done.stderr
    assert "pip install 'sigwarden[alibaba]'" in done.stderr and "Traceback" not in done.stderr
