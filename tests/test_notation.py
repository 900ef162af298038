"""Notation verification: the real notation-CLI and notation-go vectors, trust policies, and own signers."""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from provider.config import build_config
from provider.devkit import notation
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.facts import facts_schema
from provider.reference import parse_reference
from provider.stores.base import ResolvedImage
from provider.stores.egress import EgressPolicy
from provider.stores.fetch import Outbound
from provider.verifiers.notation.revocation import RevocationChecker
from provider.verifiers.notation.trustpolicy import TrustPolicyError, parse_trust_policy
from provider.verifiers.notation.verifier import NotationVerifier, SignatureBlob
from tests.helpers import VECTORS, drip_status_line, write_yaml

NV = VECTORS / "notation"
STRICT_ALL = {"version": "1.0", "trustPolicies": [{"name": "all", "registryScopes": ["*"],
                                                   "signatureVerification": {"level": "strict"},
                                                   "trustStores": ["ca:certs"], "trustedIdentities": ["*"]}]}
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def authority(tmp_path: Path, stores: dict[str, list[Path]], policy: dict[str, Any] | None = None,
              name: str = "release-ca") -> Any:
    data = {"authorities": [{"name": name, "notation": {
        "trustStores": {k: [str(p) for p in v] for k, v in stores.items()},
        "trustPolicy": {"inline": policy or STRICT_ALL}}}]}
    return build_config(data, write_yaml(tmp_path / "authority.yaml", data)).authorities[0]


def policy_with(stores: list[str], level: str = "strict", identities: list[str] | None = None,
                **verification: Any) -> dict[str, Any]:
    return {"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["*"],
                                                 "signatureVerification": {"level": level, **verification},
                                                 "trustStores": stores, "trustedIdentities": identities or ["*"]}]}


def envelope_check(auth: Any, path: Path, digest: str, size: int, media_type: str = DOCKER_V2) -> Any:
    kind = "application/cose" if path.read_bytes()[:1] == b"\xd2" else "application/jose+json"
    image = ResolvedImage(parse_reference(f"registry.example/app@{digest}"), digest, media_type, size, b"")
    return NotationVerifier().check(image, SignatureBlob("sha256:" + "0" * 64, kind, path.read_bytes()), auth.name,
                                    auth.notation)


# --- the notation CLI's own JWS and COSE signatures, through the full layout-store path --------------------

def notation_layout(tmp_path: Path) -> LayoutWriter:
    shutil.copytree(NV / "oci-layout", tmp_path / "layouts/docker.io/library/alpine")
    writer = LayoutWriter(tmp_path / "layouts/docker.io", "library/alpine")
    image = json.loads((writer.path / "index.json").read_text())["manifests"][0]
    notation.attach(writer, image, (NV / "jws_signature.sig").read_bytes(), "jws")
    notation.attach(writer, image, (NV / "cose_signature.sig").read_bytes(), "cose")
    return writer


def engine_for(tmp_path: Path, identities: list[str]) -> Engine:
    data = {"stores": [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["*"]}],
            "authorities": [{"name": "alpine-signer", "notation": {
                "trustStores": {"ca:certs": [str(NV / "truststore/alpine-selfsigned-2000.crt")]},
                "trustPolicy": {"inline": policy_with(["ca:certs"], identities=identities)}}}]}
    return Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))


def test_notation_cli_jws_and_cose_verify_through_the_layout_store(tmp_path: Path) -> None:
    notation_layout(tmp_path)
    engine = engine_for(tmp_path, ["x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=alpine"])
    facts = engine.verify(["alpine:v2"], "t")[0].value
    engine.shutdown()
    jsonschema.validate(facts, facts_schema())
    assert facts["digest"] == "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0"
    assert facts["verified"] is True and facts["authorities"] == ["alpine-signer"]
    assert [s["format"] for s in facts["signatures"]] == ["notation", "notation"]
    assert all(s["verified"] and s["signedAt"].startswith("2023-03-14") for s in facts["signatures"])
    reports = facts["verifierReports"]
    assert {r["name"] for r in reports} == {"notation"} and all(r["isSuccess"] for r in reports)
    assert reports[0]["extensions"]["Issuer"] == "CN=alpine,O=Notary,L=Seattle,ST=WA,C=US"
    assert reports[0]["extensions"]["SN"] == "CN=alpine,O=Notary,L=Seattle,ST=WA,C=US"
    assert reports[0]["artifactType"] == "application/vnd.cncf.notary.signature"


def test_untrusted_identity_is_rejected(tmp_path: Path) -> None:
    notation_layout(tmp_path)
    engine = engine_for(tmp_path, ["x509.subject: C=US, ST=WA, O=Notary, CN=someone-else"])
    facts = engine.verify(["alpine:v2"], "t")[0].value
    engine.shutdown()
    assert facts["verified"] is False
    assert facts["signatures"][0]["reason"] == ('signing certificate subject CN=alpine,O=Notary,L=Seattle,ST=WA,C=US '
                                                'is not a trusted identity of trust policy statement "p"')


# --- notation-go's mock envelopes, checked against their descriptors ---------------------------------------

MOCK_DIGEST, MOCK_SIZE = "sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e", 528


@pytest.mark.parametrize(("vector", "store", "verified", "reason"), [
    ("ca_valid_sig_env.json", "ca", True, ""),
    ("sa_valid_sig_env.json", "signingAuthority", True, ""),
    ("ca_invalid_sig_env.json", "ca", False, "signature is not valid"),
    ("sa_invalid_sig_env.json", "signingAuthority", False, "signature is not valid"),
    ("ca_expired_sig_env.json", "ca", False, "signature expired at 2022-07-29T23:59:00Z"),
    ("sa_valid_sig_env.json", "ca", False, "has no signingAuthority trust store"),
])
def test_mock_envelopes(tmp_path: Path, vector: str, store: str, verified: bool, reason: str) -> None:
    auth = authority(tmp_path, {f"{store}:test": [NV / "truststore/NotationTestRoot.pem"]},
                     policy_with([f"{store}:test"]))
    result = envelope_check(auth, NV / "mock" / vector, MOCK_DIGEST, MOCK_SIZE)
    assert result.verified is verified, result.reason
    assert reason in result.reason


@pytest.mark.parametrize("level", ["permissive", "audit"])
def test_expired_envelope_is_only_logged_below_strict(tmp_path: Path, level: str) -> None:
    auth = authority(tmp_path, {"ca:test": [NV / "truststore/NotationTestRoot.pem"]}, policy_with(["ca:test"], level))
    result = envelope_check(auth, NV / "mock/ca_expired_sig_env.json", MOCK_DIGEST, MOCK_SIZE)
    assert result.verified is True
    assert result.warnings == ("signature expired at 2022-07-29T23:59:00Z",)


@pytest.mark.parametrize("level", ["strict", "audit"])
def test_wabbit_networks_plugin_envelope_fails_closed(tmp_path: Path, level: str) -> None:
    """notation-go refuses a signature naming a verification plugin it cannot load, at any level."""
    auth = authority(tmp_path, {"ca:wabbit": [NV / "truststore/wabbit-networks.io.crt"]},
                     policy_with(["ca:wabbit"], level))
    digest = "sha256:fe7e9333395060c2f5e63cf36a38fba10176f183b4163a5794e081a480abba5f"
    result = envelope_check(auth, NV / "mock/ca_compatible_pluginver_sig_env_1.0.0.json", digest, 942)
    assert result.verified is False
    assert result.reason == ("signature requires verification plugin io.cncf.notary.plugin.unittest.mock, which is "
                             "not available (notation plugins are not supported)")


def test_envelope_with_metadata_is_intact_but_signed_by_another_wabbit_key(tmp_path: Path) -> None:
    """Its x5c certificate has the wabbit-networks.io subject but not the trust store certificate's key, so
    only integrity holds: strict rejects it, audit (authenticity logged) accepts it with the reason."""
    digest = "sha256:5a07385af4e6b6af81b0ebfd435aedccdfa3507f0609c658209e1aba57159b2b"
    strict = authority(tmp_path, {"ca:wabbit": [NV / "truststore/wabbit-networks.io.crt"]}, policy_with(["ca:wabbit"]))
    rejected = envelope_check(strict, NV / "mock/sig_env_with_metadata.json", digest, 942)
    assert rejected.verified is False and "is not in the trust store" in rejected.reason
    audit = authority(tmp_path, {"ca:wabbit": [NV / "truststore/wabbit-networks.io.crt"]},
                      policy_with(["ca:wabbit"], "audit"))
    logged = envelope_check(audit, NV / "mock/sig_env_with_metadata.json", digest, 942)
    assert logged.verified is True and "is not in the trust store" in logged.warnings[0]
    # The facts say which validation only held because it was logged (templates tell the two apart).
    assert rejected.checks == {"integrity": "passed", "authenticity": "failed"}
    # The chain does not verify to a trust anchor: its revocation URLs are not fetched (see test_egress.py).
    assert logged.checks == {"integrity": "passed", "authenticity": "logged", "expiry": "passed",
                             "authenticTimestamp": "logged", "revocation": "skipped"}


def test_descriptor_mismatches_are_integrity_failures(tmp_path: Path) -> None:
    auth = authority(tmp_path, {"ca:test": [NV / "truststore/NotationTestRoot.pem"]}, policy_with(["ca:test"]))
    wrong_size = envelope_check(auth, NV / "mock/ca_valid_sig_env.json", MOCK_DIGEST, MOCK_SIZE + 1)
    assert wrong_size.verified is False and "528 bytes" in wrong_size.reason
    wrong_digest = envelope_check(auth, NV / "mock/ca_valid_sig_env.json", "sha256:" + "1" * 64, MOCK_SIZE)
    assert wrong_digest.reason == f"signature is for {MOCK_DIGEST}, not for sha256:{'1' * 64}"
    wrong_type = envelope_check(auth, NV / "mock/ca_valid_sig_env.json", MOCK_DIGEST, MOCK_SIZE,
                                "application/vnd.oci.image.manifest.v1+json")
    assert wrong_type.verified is False and "media type" in wrong_type.reason


# --- RFC 3161 timestamps (GlobalSign) ----------------------------------------------------------------------

TSA_DIGEST = "sha256:c0669ef34cdc14332c0f1ab0c2c01acb91d96014b172f1a76f3a39e63d1f0bda"
TSA_ROOT = NV / "truststore/tsa-globalsignRoot.cer"


OFFLINE_TSA_REVOCATION = "the timestamp authority's certificate chain failed the revocation check: revocation " \
                         "status of CN=Globalsign TSA for Advanced - G4 - 202311"


# notation-go verifier/timestamp_test.go TestAuthenticTimestamp, run on its own envelopes. Upstream reaches
# GlobalSign's OCSP responder for the TSA's revocation; offline that status is unknown, so the valid rows
# fail under strict with exactly that reason, and verify under permissive with it as the only warning.
@pytest.mark.parametrize(("vector", "ca", "problem"), [
    ("jwsWithTimestamp.sig", "TestTimestamp.crt", OFFLINE_TSA_REVOCATION),  # "... with jws format"
    ("coseWithTimestamp.sig", "TestTimestamp.crt", OFFLINE_TSA_REVOCATION),  # "... with cose format"
    ("jwsExpiredWithTimestamp.sig", "testTSA-2024-06-18.crt", OFFLINE_TSA_REVOCATION),  # "jws with expired cert"
    ("coseExpiredWithTimestamp.sig", "testTSA-2024-06-18.crt", OFFLINE_TSA_REVOCATION),  # "cose with expired cert"
    # "failed due to missing timestamp countersignature": a tsa store and verifyTimestamp always require one
    ("withoutTimestamp.sig", "TestTimestamp.crt", "no timestamp countersignature was found in the signature envelope"),
    # "failed due to timestamp before signing cert not before" / "after signing cert not after"
    ("timestampBeforeNotBefore.sig", "testTSA-2099.crt", "is not valid at the authentic timestamp"),
    ("timestampAfterNotAfter.sig", "testTSA-2000.crt", "is not valid at the authentic timestamp"),
])
def test_timestamp_vectors(tmp_path: Path, vector: str, ca: str, problem: str) -> None:
    stores = {"ca:signer": [NV / "truststore" / ca], "tsa:globalsign": [TSA_ROOT]}
    strict = envelope_check(authority(tmp_path, stores, policy_with(["ca:signer", "tsa:globalsign"])),
                            NV / "timestamp" / vector, TSA_DIGEST, 528)
    assert strict.verified is False and problem in strict.reason, strict.reason
    assert strict.checks["authenticTimestamp"] == "failed"
    if problem == OFFLINE_TSA_REVOCATION:
        assert strict.timestamp.startswith("2024-06-1")  # the token itself verified
        permissive = envelope_check(authority(tmp_path, stores, policy_with(["ca:signer", "tsa:globalsign"],
                                                                            "permissive")),
                                    NV / "timestamp" / vector, TSA_DIGEST, 528)
        assert permissive.verified is True
        assert len(permissive.warnings) == 1 and permissive.warnings[0].startswith(OFFLINE_TSA_REVOCATION)


def test_verify_timestamp_after_cert_expiry_needs_no_timestamp_while_the_chain_is_valid(tmp_path: Path) -> None:
    """notation-go verifyTimestamp: "verify Authentic Timestamp with afterCertExpiry set" (TestAuthenticTimestamp)."""
    stores = {"ca:signer": [NV / "truststore/TestTimestamp.crt"], "tsa:globalsign": [TSA_ROOT]}
    after = authority(tmp_path, stores, policy_with(["ca:signer", "tsa:globalsign"],
                                                    verifyTimestamp="afterCertExpiry"))
    for vector in ("coseWithTimestamp.sig", "withoutTimestamp.sig"):
        result = envelope_check(after, NV / "timestamp" / vector, TSA_DIGEST, 528)
        assert result.verified is True and result.checks["authenticTimestamp"] == "passed", result.reason
        assert result.timestamp is None  # not looked at: the certificate has not expired


def test_without_a_tsa_store_the_chain_must_be_valid_now(tmp_path: Path) -> None:
    """notation-go verifyTimestamp: without a tsa store no timestamp is verified (TestAuthenticTimestamp "failed
    due to missing tsa in trust policy and expired codeSigning cert")."""
    auth = authority(tmp_path, {"ca:signer": [NV / "truststore/testTSA-2024-06-18.crt"]},
                     policy_with(["ca:signer"]))
    result = envelope_check(auth, NV / "timestamp/coseExpiredWithTimestamp.sig", TSA_DIGEST, 528)
    assert result.verified is False
    assert result.reason.startswith("certificate CN=testTSA,O=Notary,L=Seattle,ST=WA,C=US is not valid at "
                                    "verification time")
    valid = authority(tmp_path, {"ca:signer": [NV / "truststore/TestTimestamp.crt"]}, policy_with(["ca:signer"]))
    for vector in ("withoutTimestamp.sig", "jwsWithTimestamp.sig"):
        assert envelope_check(valid, NV / "timestamp" / vector, TSA_DIGEST, 528).verified is True


def test_timestamp_from_an_untrusted_tsa(tmp_path: Path) -> None:
    """TestAuthenticTimestamp "failed due to tsa not trust": the tsa store holds another root."""
    auth = authority(tmp_path, {"ca:signer": [NV / "truststore/TestTimestamp.crt"],
                                "tsa:other": [NV / "truststore/NotationTestRoot.pem"]},
                     policy_with(["ca:signer", "tsa:other"]))
    result = envelope_check(auth, NV / "timestamp/coseWithTimestamp.sig", TSA_DIGEST, 528)
    assert result.verified is False
    assert result.reason.startswith("timestamp countersignature rejected: the timestamp authority is not trusted")


# --- trust policy documents ---------------------------------------------------------------------------------

def test_ratify_trust_policy_loads() -> None:
    document = parse_trust_policy(json.loads((NV / "ratify-valid_trust_policy.json").read_text()))
    assert document.policy_for("registry.example/anything").name == "default"


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["trustPolicies"].append(dict(d["trustPolicies"][0], name="second")),
     'registry scope "*" is present in multiple oci trust policy statements'),
    (lambda d: d["trustPolicies"][0].update(trustedIdentities=["x509.subject: C=US, ST=WA, O=A",
                                                               "x509.subject: O=A, ST=WA, C=US"]),
     "overlapping x509 trustedIdentities"),
    (lambda d: d["trustPolicies"][0].update(trustStores=["vault:keys"]), 'unsupported trust store type "vault"'),
    (lambda d: d.update(version="2.0"), 'unsupported version "2.0"'),
    (lambda d: d["trustPolicies"][0].update(trustedIdentities=["x509.subject: CN=only"]),
     'has no mandatory RDN attribute for "C"'),
    (lambda d: d["trustPolicies"][0]["signatureVerification"].update(override={"integrity": "log"}),
     '"integrity" verification can not be overridden in custom signature verification'),
    (lambda d: d["trustPolicies"][0].update(registryScopes=["*", "registry.example/app"]),
     "wildcard scope cannot be used in conjunction"),
    (lambda d: d["trustPolicies"][0]["signatureVerification"].update(level="lenient"),
     'has invalid signatureVerification: invalid signature verification level "lenient"'),
])
def test_malformed_trust_policies_are_rejected(change: Any, message: str) -> None:
    document = json.loads(json.dumps(STRICT_ALL))
    change(document)
    with pytest.raises(TrustPolicyError, match=message.replace("(", r"\(").replace("*", r"\*")):
        parse_trust_policy(document)


def test_exact_repository_scope_wins_over_the_wildcard(tmp_path: Path) -> None:
    document = parse_trust_policy({"version": "1.0", "trustPolicies": [
        {"name": "global", "registryScopes": ["*"], "signatureVerification": {"level": "skip"}},
        {"name": "prod", "registryScopes": ["registry.example/prod/app"],
         "signatureVerification": {"level": "strict"}, "trustStores": ["ca:x"], "trustedIdentities": ["*"]}]})
    assert document.policy_for("registry.example/prod/app").name == "prod"
    assert document.policy_for("registry.example/dev/app").name == "global"


def test_config_reports_trust_policy_errors_with_the_field(tmp_path: Path) -> None:
    from provider.config import ConfigError

    data = {"authorities": [{"name": "n", "notation": {
        "trustStores": {"ca:certs": [str(NV / "truststore/NotationTestRoot.pem")]},
        "trustPolicy": {"inline": policy_with(["ca:other"])}}}]}
    with pytest.raises(ConfigError) as caught:
        build_config(data, write_yaml(tmp_path / "c.yaml", data))
    assert caught.value.field_path == "authorities[0].notation.trustPolicy"
    assert 'uses trust store "ca:other", which the authority does not define' in caught.value.problem


# --- own signers: every algorithm, both envelopes, an intermediate CA; and the negatives --------------------

def own_check(tmp_path: Path, identity: notation.SigningIdentity, envelope: bytes, kind: str,
              level: str = "strict", root_pem: bytes | None = None, target: dict | None = None,
              verifier: NotationVerifier | None = None) -> Any:
    (tmp_path / "root.pem").write_bytes(root_pem or identity.root_pem)
    auth = authority(tmp_path, {"ca:acme": [tmp_path / "root.pem"]}, policy_with(
        ["ca:acme"], level, ["x509.subject: C=US, ST=WA, O=Acme, CN=Acme Release Signer"]))
    target = target or IMAGE
    image = ResolvedImage(parse_reference(f"registry.example/app@{target['digest']}"), target["digest"],
                          target["mediaType"], target["size"], b"")
    media = "application/jose+json" if kind == "jws" else "application/cose"
    return (verifier or NotationVerifier()).check(image, SignatureBlob("sha256:" + "0" * 64, media, envelope),
                                                  auth.name, auth.notation)


IMAGE = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "digest": "sha256:" + "ab" * 32, "size": 1234}


@pytest.mark.parametrize("kind", ["jws", "cose"])
@pytest.mark.parametrize("key", ["rsa-2048", "rsa-3072", "rsa-4096", "ec-256", "ec-384", "ec-521"])
def test_own_signer_every_algorithm(tmp_path: Path, key: str, kind: str) -> None:
    identity = notation.identity_with_intermediate(key)
    result = own_check(tmp_path, identity, notation.sign(IMAGE, identity, kind), kind)
    assert result.verified is True, result.reason
    assert result.signer.subject == "CN=Acme Release Signer,O=Acme,L=Seattle,ST=WA,C=US"


@pytest.mark.parametrize("kind", ["jws", "cose"])
def test_own_signer_negatives(tmp_path: Path, kind: str) -> None:
    identity = notation.identity_with_intermediate("ec-256")
    good = notation.sign(IMAGE, identity, kind)
    other_root = notation.identity_with_intermediate("ec-256").root_pem
    assert "is not in the trust store" in own_check(tmp_path, identity, good, kind, root_pem=other_root).reason
    other = dict(IMAGE, digest="sha256:" + "cd" * 32)
    assert "signature is for sha256:abab" in own_check(tmp_path, identity, good, kind, target=other).reason
    tampered = tamper_payload(good, kind)
    assert "signature is not valid" in own_check(tmp_path, identity, tampered, kind).reason
    mismatched = notation.sign(IMAGE, identity, kind, algorithm="ES384")
    assert "does not match the signing certificate's EC secp256r1 key" in own_check(
        tmp_path, identity, mismatched, kind).reason


def tamper_payload(envelope: bytes, kind: str) -> bytes:
    """The same envelope and signature over a payload edited after signing."""
    import base64

    import cbor2

    edited = dict(IMAGE, annotations={"injected": "yes"})
    payload = json.dumps({"targetArtifact": edited}).encode()
    if kind == "jws":
        data = json.loads(envelope)
        data["payload"] = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
        return json.dumps(data).encode()
    message = cbor2.loads(envelope)
    protected, unprotected, _, signature = message.value
    return cbor2.dumps(cbor2.CBORTag(18, [protected, dict(unprotected), payload, signature]))


def sha1_signed(identity: notation.SigningIdentity) -> notation.SigningIdentity:
    """The same identity with its leaf re-signed using SHA-1 (cryptography refuses to build such certificates)."""
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    leaf = asn1_x509.Certificate.load(identity.chain[0].public_bytes(serialization.Encoding.DER))
    tbs = leaf["tbs_certificate"]
    tbs["signature"] = asn1_x509.SignedDigestAlgorithm({"algorithm": "sha1_ecdsa"})
    signature = identity.intermediate_key.sign(tbs.dump(force=True), ec.ECDSA(hashes.SHA1()))
    rebuilt = asn1_x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": {"algorithm": "sha1_ecdsa"},
                                     "signature_value": signature})
    chain = [x509.load_der_x509_certificate(rebuilt.dump()), *identity.chain[1:]]
    return notation.SigningIdentity(identity.key, chain, identity.root, identity.root_key, identity.intermediate_key)


def test_leaf_with_server_auth_and_sha1_certificates_are_rejected(tmp_path: Path) -> None:
    server = notation.identity_with_intermediate("ec-256", notation.CertSpec(
        "Acme Release Signer", ekus=(ExtendedKeyUsageOID.SERVER_AUTH,)))
    result = own_check(tmp_path, server, notation.sign(IMAGE, server), "jws")
    assert "the extended key usage must not contain ServerAuth" in result.reason
    sha1 = sha1_signed(notation.identity_with_intermediate("rsa-2048"))
    assert "is signed with sha1, which is not allowed" in own_check(tmp_path, sha1, notation.sign(IMAGE, sha1),
                                                                     "jws").reason


def test_untrusted_identity_and_expired_certificate(tmp_path: Path) -> None:
    stranger = notation.identity_with_intermediate("ec-256", notation.CertSpec("Someone Else"))
    result = own_check(tmp_path, stranger, notation.sign(IMAGE, stranger), "jws")
    assert "is not a trusted identity" in result.reason
    now = datetime.datetime.now(datetime.UTC)
    window = {"not_before": now - datetime.timedelta(days=10), "not_after": now - datetime.timedelta(days=1)}
    expired = notation.identity_with_intermediate("ec-256", notation.CertSpec("Acme Release Signer", **window))
    envelope = notation.sign(IMAGE, expired, signing_time=now - datetime.timedelta(days=5))
    strict = own_check(tmp_path, expired, envelope, "jws")
    assert strict.verified is False and "is not valid at verification time" in strict.reason
    assert own_check(tmp_path, expired, envelope, "jws", level="permissive").verified is True


class CRLServer:
    """A loopback HTTP server that serves one CRL (or refuses, when `crl` is None)."""

    def __init__(self, address: str = "127.0.0.1") -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from tests.helpers import free_port

        self.crl: bytes | None = None
        self.hits = 0
        self.drip = False  # send the status line one byte every 0.2 s, for a long time
        # Each request waits here first: a barrier for N parties answers only once N requests are in flight.
        self.gate: Any = None
        self.address = address
        self.port = free_port(address)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.hits += 1
                if server.gate is not None:
                    try:
                        server.gate.wait()
                    except threading.BrokenBarrierError:
                        return
                if server.drip:
                    drip_status_line(self.wfile)
                    return
                body = server.crl
                self.send_response(200 if body is not None else 503)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

        self.httpd = ThreadingHTTPServer((address, self.port), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}/signing-ca.crl"

    def publish(self, identity: notation.SigningIdentity, revoked_serials: list[int]) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        now = datetime.datetime.now(datetime.UTC)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(identity.chain[1].subject)
                   .last_update(now - datetime.timedelta(minutes=1)).next_update(now + datetime.timedelta(days=1)))
        for serial in revoked_serials:
            builder = builder.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                                      .revocation_date(now - datetime.timedelta(minutes=1)).build())
        self.crl = builder.sign(identity.intermediate_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.fixture
def crl_server() -> Any:
    server = CRLServer()
    yield server
    server.httpd.shutdown()


def reaching(server: CRLServer, timeout: float = 5.0) -> NotationVerifier:
    """A verifier whose CRL fetches may reach the loopback test server (named explicitly)."""
    policy = EgressPolicy(explicit=frozenset({f"127.0.0.1:{server.port}"}))
    return NotationVerifier(RevocationChecker(timeout, Outbound(policy)))


def test_revocation_through_a_crl_distribution_point(tmp_path: Path, crl_server: CRLServer) -> None:
    identity = notation.identity_with_intermediate("ec-256", crl_url=crl_server.url)
    envelope = notation.sign(IMAGE, identity)
    crl_server.publish(identity, revoked_serials=[12345])
    assert own_check(tmp_path, identity, envelope, "jws", verifier=reaching(crl_server)).verified is True
    crl_server.publish(identity, revoked_serials=[identity.chain[0].serial_number])
    revoked = own_check(tmp_path, identity, envelope, "jws", verifier=reaching(crl_server))  # no cached CRL
    assert revoked.verified is False
    assert revoked.reason.startswith("certificate CN=Acme Release Signer,O=Acme,L=Seattle,ST=WA,C=US was revoked at")
    assert own_check(tmp_path, identity, envelope, "jws", level="permissive",
                     verifier=reaching(crl_server)).warnings[0].startswith("certificate CN=Acme Release Signer")


def test_crl_on_loopback_is_refused_by_the_default_egress_policy(tmp_path: Path, crl_server: CRLServer) -> None:
    identity = notation.identity_with_intermediate("ec-256", crl_url=crl_server.url)
    envelope = notation.sign(IMAGE, identity)
    crl_server.publish(identity, revoked_serials=[])
    refused = own_check(tmp_path, identity, envelope, "jws")
    assert refused.verified is False
    assert refused.reason.endswith(f"CRL {crl_server.url}: revocation status unavailable")
    assert crl_server.hits == 0  # refused before any connection


def test_crl_that_times_out_is_a_warning_under_log_level_and_a_failure_under_enforce(
        tmp_path: Path, crl_server: CRLServer) -> None:
    identity = notation.identity_with_intermediate("ec-256", crl_url=crl_server.url)
    envelope = notation.sign(IMAGE, identity)
    crl_server.drip = True  # headers never finish
    logged = own_check(tmp_path, identity, envelope, "jws", level="permissive",
                       verifier=reaching(crl_server, timeout=0.5))
    assert logged.verified is True
    assert any("revocation status unavailable" in w for w in logged.warnings), logged.warnings
    enforced = own_check(tmp_path, identity, envelope, "jws", verifier=reaching(crl_server, timeout=0.5))
    assert enforced.verified is False and "revocation status unavailable" in enforced.reason


def test_unreachable_crl_fails_closed_under_strict(tmp_path: Path, crl_server: CRLServer) -> None:
    identity = notation.identity_with_intermediate("ec-256", crl_url=crl_server.url)
    envelope = notation.sign(IMAGE, identity)
    crl_server.crl = None  # the CRL endpoint answers 503
    strict = own_check(tmp_path, identity, envelope, "jws", verifier=reaching(crl_server))
    assert strict.verified is False and "revocation status unavailable" in strict.reason
    assert "503" not in strict.reason  # the remote's status never reaches the facts
    (tmp_path / "root.pem").write_bytes(identity.root_pem)
    airgapped = authority(tmp_path, {"ca:acme": [tmp_path / "root.pem"]}, policy_with(
        ["ca:acme"], "strict", override={"revocation": "skip"}))
    image = ResolvedImage(parse_reference(f"registry.example/app@{IMAGE['digest']}"), IMAGE["digest"],
                          IMAGE["mediaType"], IMAGE["size"], b"")
    skipped = NotationVerifier().check(image, SignatureBlob("sha256:" + "0" * 64, "application/jose+json", envelope),
                                       airgapped.name, airgapped.notation)
    assert skipped.verified is True and skipped.warnings == ()


# --- envelope rules of notation-core-go signature/ ------------------------------------------------------------

@pytest.mark.parametrize("kind", ["jws", "cose"])
@pytest.mark.parametrize("level", ["strict", "audit"])
def test_validate_signing_and_expiry_time(tmp_path: Path, kind: str, level: str) -> None:
    """signature/internal/base/envelope.go validateSigningAndExpiryTime: an expiry at or before the signing time
    is an invalid signature (integrity), even when both lie in the future and the expiry check passes."""
    identity = notation.identity_with_intermediate("ec-256")
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    signed_at = now + datetime.timedelta(hours=1)
    for expiry in (signed_at, signed_at - datetime.timedelta(seconds=1)):
        envelope = notation.sign(IMAGE, identity, kind, signing_time=signed_at, expiry=expiry)
        result = own_check(tmp_path, identity, envelope, kind, level)
        assert result.verified is False
        assert result.reason.startswith("malformed signature envelope: expiry ") and "is not after the signing " \
            "time" in result.reason, result.reason
    later = notation.sign(IMAGE, identity, kind, signing_time=signed_at, expiry=signed_at + datetime.timedelta(days=1))
    assert own_check(tmp_path, identity, later, kind, level).verified is True


def test_jws_time_headers_belong_to_their_signing_scheme(tmp_path: Path) -> None:
    """signature/jws/jws.go validateProtectedHeaders: authenticSigningTime must not be present under notary.x509,
    signingTime must not be present under notary.x509.signingAuthority."""
    identity = notation.identity_with_intermediate("ec-256")
    moment = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    extra = notation.sign(IMAGE, identity, protected={"io.cncf.notary.authenticSigningTime": moment})
    result = own_check(tmp_path, identity, extra, "jws")
    assert result.verified is False
    assert result.reason == ("malformed signature envelope: header io.cncf.notary.authenticSigningTime must not be "
                             "present for the notary.x509 signing scheme")
    authority_scheme = {"io.cncf.notary.signingScheme": "notary.x509.signingAuthority",
                        "io.cncf.notary.authenticSigningTime": moment,
                        "crit": ["io.cncf.notary.signingScheme", "io.cncf.notary.authenticSigningTime"]}
    both = notation.sign(IMAGE, identity, protected=authority_scheme)  # keeps the devkit's signingTime
    (tmp_path / "root.pem").write_bytes(identity.root_pem)
    signing_authority = authority(tmp_path, {"signingAuthority:acme": [tmp_path / "root.pem"]},
                                  policy_with(["signingAuthority:acme"]))
    image = ResolvedImage(parse_reference(f"registry.example/app@{IMAGE['digest']}"), IMAGE["digest"],
                          IMAGE["mediaType"], IMAGE["size"], b"")

    def check(envelope: bytes) -> Any:
        return NotationVerifier().check(image, SignatureBlob("sha256:" + "0" * 64, "application/jose+json", envelope),
                                        signing_authority.name, signing_authority.notation)

    refused = check(both)
    assert refused.verified is False
    assert refused.reason == ("malformed signature envelope: header io.cncf.notary.signingTime must not be present "
                              "for the notary.x509.signingAuthority signing scheme")
    only_authentic = notation.sign(IMAGE, identity, protected={**authority_scheme,
                                                               "io.cncf.notary.signingTime": notation.DELETE})
    assert check(only_authentic).verified is True
