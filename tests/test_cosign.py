"""cosign verification through the full path: layout store → engine → facts, with real vectors and own signers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from provider.devkit import cosign
from provider.devkit.layout import LayoutWriter
from provider.devkit.pki import make_ca
from tests import fulcio
from tests.helpers import VECTORS, facts_for, write_yaml
from tests.vectors import CONTAINERS_IMAGE, connaisseur_layout, containers_image_vector

REG = "vectors.example"


def verify(tmp_path: Path, image: str, authorities: list[dict[str, Any]]) -> dict[str, Any]:
    data = {"stores": [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["*"]}],
            "authorities": authorities}
    return facts_for(tmp_path, data, image)


def keyed(name: str, *keys: Path, **cosign_settings: Any) -> dict[str, Any]:
    return {"name": name, "cosign": {"publicKeys": [str(k) for k in keys], **cosign_settings}}


@pytest.mark.parametrize("vector", ["dir-img-cosign-valid", "dir-img-cosign-valid-with-tag"])
def test_containers_image_key_vectors_verify(tmp_path: Path, vector: str) -> None:
    digest = containers_image_vector(tmp_path / "layouts" / REG, vector, "signed")
    facts = verify(tmp_path, f"{REG}/signed:v1", [keyed("team-a", CONTAINERS_IMAGE / "cosign.pub")])
    assert facts["digest"] == digest
    assert facts["verified"] is True and facts["authorities"] == ["team-a"]
    (signature,) = facts["signatures"]
    assert signature["format"] == "cosign" and signature["reason"] == "" and signature["signer"]["keyId"]
    assert facts["verifierReports"][0]["isSuccess"] is True


def test_wrong_key_is_rejected_with_a_reason(tmp_path: Path) -> None:
    containers_image_vector(tmp_path / "layouts" / REG, "dir-img-cosign-valid", "signed")
    facts = verify(tmp_path, f"{REG}/signed:v1", [keyed("team-a", CONTAINERS_IMAGE / "cosign2.pub")])
    assert facts["verified"] is False and facts["authorities"] == []
    assert facts["signatures"][0]["reason"] == "signed by a key not trusted by authority team-a"
    assert facts["reason"] == "no signature verified: team-a: signed by a key not trusted by authority team-a"


def test_key_and_rekor_bundle_vector(tmp_path: Path) -> None:
    containers_image_vector(tmp_path / "layouts" / REG, "dir-img-cosign-key-rekor-valid", "rekor")
    rekor = str(CONTAINERS_IMAGE / "rekor.pub")
    facts = verify(tmp_path, f"{REG}/rekor:v1", [keyed("ci", CONTAINERS_IMAGE / "cosign2.pub", tlog="required",
                                                       rekorKeys=[rekor])])
    assert facts["verified"] is True
    tlog = facts["signatures"][0]["tlog"]
    assert tlog["logIndex"] > 0 and tlog["integratedTime"].startswith("20")
    # The same bundle checked against a key that is not Rekor's proves nothing.
    wrong = verify(tmp_path, f"{REG}/rekor:v1", [keyed("ci", CONTAINERS_IMAGE / "cosign2.pub", tlog="required",
                                                       rekorKeys=[str(CONTAINERS_IMAGE / "cosign.pub")])])
    assert wrong["verified"] is False
    assert "matches no configured Rekor key" in wrong["signatures"][0]["reason"]


def test_tlog_required_rejects_signatures_without_a_bundle(tmp_path: Path) -> None:
    containers_image_vector(tmp_path / "layouts" / REG, "dir-img-cosign-valid", "signed")
    facts = verify(tmp_path, f"{REG}/signed:v1", [keyed("a", CONTAINERS_IMAGE / "cosign.pub", tlog="required",
                                                        rekorKeys=[str(CONTAINERS_IMAGE / "rekor.pub")])])
    assert facts["verified"] is False and "requires one (tlog: required)" in facts["signatures"][0]["reason"]


@pytest.mark.parametrize(("image", "signers"), [
    ("multi-cosigned-alice", {"alice"}),
    ("multi-cosigned-alice-bob-charlie", {"alice", "bob", "charlie"}),
    ("co-unsigned", set()),
])
def test_connaisseur_multi_signature_images(tmp_path: Path, image: str, signers: set[str]) -> None:
    connaisseur_layout(tmp_path / "layouts" / REG, "testimage")
    keys = VECTORS / "cosign-connaisseur"
    authorities = [keyed(name, keys / f"{name}.pub") for name in ("alice", "bob", "charlie", "default")]
    facts = verify(tmp_path, f"{REG}/testimage:{image}", authorities)
    assert set(facts["authorities"]) == signers
    assert facts["verified"] is bool(signers)
    assert "default" not in facts["authorities"]
    if not signers:
        assert facts["reason"] == f"no signatures found for {facts['digest']}"


KEYS = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ecdsa-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ecdsa-p521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "rsa-2048": lambda: rsa.generate_private_key(65537, 2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


def own_image(tmp_path: Path, name: str = "own") -> tuple[LayoutWriter, str]:
    writer = LayoutWriter(tmp_path / "layouts" / REG, name)
    return writer, writer.add_image("v1", name.encode())["digest"]


def write_key(tmp_path: Path, key: Any, name: str = "signer") -> Path:
    path = tmp_path / f"{name}.pub"
    path.write_bytes(cosign.public_pem(key))
    return path


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_own_signer_every_key_type(tmp_path: Path, kind: str) -> None:
    key = KEYS[kind]()
    writer, digest = own_image(tmp_path)
    cosign.sign_image(writer, digest, f"{REG}/own", key)
    assert verify(tmp_path, f"{REG}/own:v1", [keyed("a", write_key(tmp_path, key))])["verified"] is True


def test_rsa_pss_signatures_verify(tmp_path: Path) -> None:
    key = rsa.generate_private_key(65537, 3072)
    writer, digest = own_image(tmp_path)
    body = cosign.payload(digest, f"{REG}/own")
    cosign.attach(writer, digest, [cosign.signature_layer(writer, body, cosign.sign(key, body, rsa_pss=True))])
    assert verify(tmp_path, f"{REG}/own:v1", [keyed("a", write_key(tmp_path, key))])["verified"] is True


def test_signature_for_another_digest_is_rejected_even_with_the_right_key(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    writer, digest = own_image(tmp_path)
    other = "sha256:" + "e" * 64
    body = cosign.payload(other, f"{REG}/own")
    cosign.attach(writer, digest, [cosign.signature_layer(writer, body, cosign.sign(key, body))])
    facts = verify(tmp_path, f"{REG}/own:v1", [keyed("a", write_key(tmp_path, key))])
    assert facts["verified"] is False
    assert facts["signatures"][0]["reason"] == f"signature is for {other}, not for {digest}"


def test_tampered_payload_and_swapped_signatures_are_rejected(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    writer, digest = own_image(tmp_path)
    _, other_digest = own_image(tmp_path, "other")
    good = cosign.payload(digest, f"{REG}/own")
    foreign = cosign.payload(other_digest, f"{REG}/other")
    good_layer = cosign.signature_layer(writer, good, cosign.sign(key, good))
    foreign_layer = cosign.signature_layer(writer, foreign, cosign.sign(key, foreign))
    # Swap: each payload carries the other payload's signature annotation.
    good_layer["annotations"], foreign_layer["annotations"] = foreign_layer["annotations"], good_layer["annotations"]
    # Tamper: a payload whose bytes were edited after signing (descriptor updated to match the new bytes).
    edited = good.replace(b'"optional":null', b'"optional":{"x":1}')
    edited_layer = cosign.signature_layer(writer, edited, cosign.sign(key, good))
    cosign.attach(writer, digest, [good_layer, foreign_layer, edited_layer])
    facts = verify(tmp_path, f"{REG}/own:v1", [keyed("a", write_key(tmp_path, key))])
    assert facts["verified"] is False
    reasons = [s["reason"] for s in facts["signatures"]]
    assert reasons == ["signed by a key not trusted by authority a"] * 3


def test_payload_blob_that_does_not_match_its_digest_is_rejected(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    writer, digest = own_image(tmp_path)
    cosign.sign_image(writer, digest, f"{REG}/own", key)
    manifest = json.loads(next(
        (writer.path / "blobs/sha256" / m["digest"].split(":")[1]).read_bytes()
        for m in json.loads((writer.path / "index.json").read_text())["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name", "").endswith(".sig")))
    payload_blob = writer.path / "blobs/sha256" / manifest["layers"][0]["digest"].split(":")[1]
    payload_blob.write_bytes(payload_blob.read_bytes().replace(b"null", b"true"))
    facts = verify(tmp_path, f"{REG}/own:v1", [keyed("a", write_key(tmp_path, key))])
    assert facts["verified"] is False
    assert "payload could not be fetched" in facts["signatures"][0]["reason"]
    assert "hashes to" in facts["signatures"][0]["reason"]


def test_repository_identity_checking(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    writer, digest = own_image(tmp_path)
    body = cosign.payload(digest, "elsewhere.example/own:v1")
    cosign.attach(writer, digest, [cosign.signature_layer(writer, body, cosign.sign(key, body))])
    public = write_key(tmp_path, key)
    assert verify(tmp_path, f"{REG}/own:v1", [keyed("a", public)])["verified"] is True  # ignore, like cosign
    strict = verify(tmp_path, f"{REG}/own:v1", [keyed("a", public, dockerReference="repository")])
    assert strict["verified"] is False
    assert strict["signatures"][0]["reason"] == (
        f"signature is for 'elsewhere.example/own:v1', which does not match {REG}/own:v1 "
        "(signedIdentity matchRepository)")


def test_scopes_limit_which_authorities_apply(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    writer, digest = own_image(tmp_path)
    cosign.sign_image(writer, digest, f"{REG}/own", key)
    authority = keyed("team-b", write_key(tmp_path, key))
    authority["scopes"] = [f"{REG}/team-b/*"]
    facts = verify(tmp_path, f"{REG}/own:v1", [authority])
    assert facts["verified"] is False and facts["reason"] == f"no configured authority covers {REG}/own"



def test_keyless_fulcio_rekor_vector(tmp_path: Path) -> None:
    containers_image_vector(tmp_path / "layouts" / REG, "dir-img-cosign-fulcio-rekor-valid", "keyless")
    keyless = {"fulcioRoots": [str(CONTAINERS_IMAGE / "fulcio_v1.crt.pem")],
               "rekorKeys": [str(CONTAINERS_IMAGE / "rekor.pub")],
               "identities": [{"subject": "mitr@redhat.com", "issuer": "https://github.com/login/oauth"}]}
    facts = verify(tmp_path, f"{REG}/keyless:v1", [{"name": "ci", "cosign": {"keyless": keyless}}])
    assert facts["verified"] is True, facts["signatures"]
    signer = facts["signatures"][0]["signer"]
    assert signer["subject"] == "mitr@redhat.com" and signer["issuer"] == "https://github.com/login/oauth"
    assert facts["signatures"][0]["tlog"]["logIndex"] > 0

    keyless["identities"] = [{"subject": "someone@example.com", "issuer": "https://github.com/login/oauth"}]
    wrong = verify(tmp_path, f"{REG}/keyless:v1", [{"name": "ci", "cosign": {"keyless": keyless}}])
    assert wrong["verified"] is False
    assert wrong["signatures"][0]["reason"] == (
        "certificate identity mitr@redhat.com (issuer https://github.com/login/oauth) does not match "
        "subject someone@example.com, issuer https://github.com/login/oauth")
    # cosign's MatchString searches: an unanchored pattern matches inside the identity, an anchored one must fit.
    keyless["identities"] = [{"subjectRegExp": "mitr@redhat", "issuer": "https://github.com/login/oauth"}]
    unanchored = verify(tmp_path, f"{REG}/keyless:v1", [{"name": "ci", "cosign": {"keyless": keyless}}])
    assert unanchored["verified"] is True, unanchored["signatures"]
    keyless["identities"] = [{"subjectRegExp": "^mitr@redhat$", "issuer": "https://github.com/login/oauth"}]
    anchored = verify(tmp_path, f"{REG}/keyless:v1", [{"name": "ci", "cosign": {"keyless": keyless}}])
    assert anchored["verified"] is False
    keyless["identities"] = [{"subjectRegExp": ".*@redhat\\.com", "issuerRegExp": "https://accounts\\.google.*"}]
    issuer = verify(tmp_path, f"{REG}/keyless:v1", [{"name": "ci", "cosign": {"keyless": keyless}}])
    assert issuer["verified"] is False and "does not match" in issuer["signatures"][0]["reason"]


def test_keyless_needs_the_tlog_and_the_right_root(tmp_path: Path) -> None:
    containers_image_vector(tmp_path / "layouts" / REG, "dir-img-cosign-fulcio-rekor-valid", "keyless")
    identity = [{"subject": "mitr@redhat.com"}]
    no_rekor = {"fulcioRoots": [str(CONTAINERS_IMAGE / "fulcio_v1.crt.pem")], "identities": identity}
    facts = verify(tmp_path, f"{REG}/keyless:v1", [{"name": "ci", "cosign": {"keyless": no_rekor}}])
    assert facts["verified"] is False and "no rekorKeys" in facts["signatures"][0]["reason"]
    stranger = tmp_path / "stranger-root.pem"
    stranger.write_bytes(make_ca("not fulcio").cert_pem)
    other_root = {"fulcioRoots": [str(stranger)],
                  "rekorKeys": [str(CONTAINERS_IMAGE / "rekor.pub")], "identities": identity}
    facts = verify(tmp_path, f"{REG}/keyless:v1", [{"name": "ci", "cosign": {"keyless": other_root}}])
    assert facts["verified"] is False
    assert "certificate chain does not verify to a trusted root" in facts["signatures"][0]["reason"]


def test_connaisseur_keyless_vector(tmp_path: Path) -> None:
    connaisseur_layout(tmp_path / "layouts" / REG, "testimage")
    keys = VECTORS / "cosign-connaisseur"
    keyless = {"fulcioRoots": [str(keys / "fulcio_root_v2_from_11_keyless.yaml.pem")],
               "rekorKeys": [str(keys / "rekor_pub_from_11_keyless.yaml.pem")],
               "identities": [{"subject": "philipp.belitz@securesystems.de",
                               "issuerRegExp": "https://github\\.com/login/oauth"}]}
    facts = verify(tmp_path, f"{REG}/testimage:keyless", [{"name": "ci", "cosign": {"keyless": keyless}}])
    assert facts["verified"] is True, facts["signatures"]
    assert facts["signatures"][0]["signer"]["issuer"] == "https://github.com/login/oauth"


def test_bring_your_own_pki_rsa_vector(tmp_path: Path) -> None:
    containers_image_vector(tmp_path / "layouts" / REG, "dir-img-cosign-pki-valid", "pki")
    pki = {"roots": [str(CONTAINERS_IMAGE / "pki_root_crts.pem")],
           "intermediates": [str(CONTAINERS_IMAGE / "pki_intermediate_crts.pem")]}
    facts = verify(tmp_path, f"{REG}/pki:v1", [{"name": "corp", "cosign": {"pki": pki}}])
    assert facts["verified"] is True, facts["signatures"]
    assert facts["signatures"][0]["signer"]["subject"] == "qiwan@redhat.com"
    untrusted = {"roots": [str(CONTAINERS_IMAGE / "fulcio_v1.crt.pem")]}
    facts = verify(tmp_path, f"{REG}/pki:v1", [{"name": "corp", "cosign": {"pki": untrusted}}])
    assert facts["verified"] is False
    assert "certificate chain does not verify" in facts["signatures"][0]["reason"]


def code_signing_cert(ca: Any, subject: str, not_before: Any, not_after: Any) -> tuple[Any, bytes]:
    """A leaf for your own PKI, with codeSigning EKU and an email SAN, valid in the given window."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(subject)]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
            .sign(ca.key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("with_tlog", [True, False])
def test_expired_certificate_verifies_only_with_a_log_entry_inside_its_validity(tmp_path: Path,
                                                                                with_tlog: bool) -> None:
    import datetime

    from provider.devkit.rekor import hashedrekord_bundle

    ca = make_ca("corp code signing CA", days=3650, backdate_days=30)
    (tmp_path / "corp-root.pem").write_bytes(ca.cert_pem)
    log_key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "rekor.pub").write_bytes(cosign.public_pem(log_key))
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)
    key, cert_pem = code_signing_cert(ca, "builder@corp.example", start, start + datetime.timedelta(minutes=10))
    writer, digest = own_image(tmp_path)
    body = cosign.payload(digest, f"{REG}/own")
    signature = cosign.sign(key, body)
    annotations = {"dev.sigstore.cosign/certificate": cert_pem.decode()}
    if with_tlog:
        annotations["dev.sigstore.cosign/bundle"] = hashedrekord_bundle(
            log_key, body, signature, cert_pem, int((start + datetime.timedelta(minutes=5)).timestamp()))
    cosign.attach(writer, digest, [cosign.signature_layer(writer, body, signature, annotations)])
    pki = {"roots": [str(tmp_path / "corp-root.pem")], "identities": [{"subjectRegExp": ".*@corp\\.example"}]}
    facts = verify(tmp_path, f"{REG}/own:v1", [{"name": "corp", "cosign": {
        "pki": pki, "rekorKeys": [str(tmp_path / "rekor.pub")]}}])
    assert facts["verified"] is with_tlog, facts["signatures"][0]["reason"]
    if not with_tlog:
        assert "certificate chain does not verify to a trusted root at" in facts["signatures"][0]["reason"]
        assert "expired" in facts["signatures"][0]["reason"].lower() or "valid" in facts["signatures"][0]["reason"]
    else:
        assert facts["signatures"][0]["signer"]["subject"] == "builder@corp.example"


@pytest.mark.parametrize("name", ["pemcosignkey", "pemsigstorekey"])
def test_encrypted_cosign_private_keys_load_and_sign(tmp_path: Path, name: str) -> None:
    from provider.devkit.cosignkeys import load_cosign_private_key

    key = load_cosign_private_key((VECTORS / f"cosign/keys_test.go-{name}.key").read_bytes(), b"hello")
    writer, digest = own_image(tmp_path)
    cosign.sign_image(writer, digest, f"{REG}/own", key)
    assert verify(tmp_path, f"{REG}/own:v1", [keyed("a", write_key(tmp_path, key))])["verified"] is True


def test_encrypted_key_with_sec1_inside_or_wrong_password_is_rejected() -> None:
    from provider.devkit.cosignkeys import KeyFileError, load_cosign_private_key

    with pytest.raises(KeyFileError, match="not PKCS#8"):
        load_cosign_private_key((VECTORS / "cosign/keys_test.go-pemcosigneckey.key").read_bytes(), b"hello")
    with pytest.raises(KeyFileError, match="wrong password"):
        load_cosign_private_key((VECTORS / "cosign/keys_test.go-pemcosignkey.key").read_bytes(), b"hullo")


# Keyless and PKI chains built with a stand-in Fulcio (tests/fulcio.py): SCTs, trusted-root windows, EKU nesting
# and where intermediates may come from.

def fulcio_image(tmp_path: Path, sigstore: Any, signer: Any, **sign: Any) -> None:
    writer = LayoutWriter(tmp_path / "layouts" / REG, "keyless")
    digest = writer.add_image("v1", b"keyless build")["digest"]
    sigstore.sign_image(writer, digest, f"{REG}/keyless", signer, **sign)


def keyless_facts(tmp_path: Path, **keyless: Any) -> dict[str, Any]:
    keyless.setdefault("identities", [{"subject": "dev@team.example", "issuer": fulcio.ISSUER}])
    facts = verify(tmp_path, f"{REG}/keyless:v1", [{"name": "ci", "cosign": {"keyless": keyless}}])
    return facts


def pem_file(path: Path, *certs: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return str(path)


# cosign pkg/cosign/verify.go ValidateAndUnpackCertWithIntermediates ("does not include required embedded SCT") and
# sigstore-go pkg/verify/sct.go VerifySignedCertificateTimestamp: with CT log keys known, an SCT must verify.
@pytest.mark.parametrize(("case", "verified"), [("valid SCT", True), ("no SCT", False), ("SCT by another log", False)])
def test_ValidateAndUnpackCertWithIntermediates_requires_an_embedded_sct(tmp_path: Path, case: str,
                                                                         verified: bool) -> None:
    sigstore = fulcio.Sigstore()
    ct_log = {"valid SCT": sigstore.ct_log, "no SCT": None,
              "SCT by another log": ec.generate_private_key(ec.SECP256R1())}[case]
    fulcio_image(tmp_path, sigstore, fulcio.leaf(sigstore.intermediate, "dev@team.example", ct_log))
    facts = keyless_facts(tmp_path, trustedRoot=str(sigstore.trusted_root(tmp_path / "trusted_root.json")))
    (signature,) = facts["signatures"]
    assert signature["verified"] is verified, signature["reason"]
    if verified:
        assert signature["checks"] == {"sct": "passed"}
    else:
        assert signature["reason"] == {
            "no SCT": "certificate does not include the required embedded SCT",
            "SCT by another log": "none of the certificate's 1 embedded SCTs verifies with a configured CT log key",
        }[case]
    # The same with roots and CT log keys as files (cosign: --certificate-chain, SIGSTORE_CT_LOG_PUBLIC_KEY_FILE).
    (tmp_path / "ct.pub").write_bytes(cosign.public_pem(sigstore.ct_log))
    (tmp_path / "rekor.pub").write_bytes(cosign.public_pem(sigstore.rekor))
    files = keyless_facts(tmp_path, fulcioRoots=[pem_file(tmp_path / "root.pem", sigstore.root.cert)],
                          fulcioIntermediates=[pem_file(tmp_path / "int.pem", sigstore.intermediate.cert)],
                          ctLogKeys=[str(tmp_path / "ct.pub")], rekorKeys=[str(tmp_path / "rekor.pub")])
    assert files["verified"] is verified


def test_without_ct_log_keys_no_sct_is_checked_and_config_check_says_so(tmp_path: Path) -> None:
    from provider.config import ConfigError, build_config
    from provider.config.checks import config_warnings

    sigstore = fulcio.Sigstore()
    fulcio_image(tmp_path, sigstore, fulcio.leaf(sigstore.intermediate, "dev@team.example", None))
    root = sigstore.trusted_root(tmp_path / "trusted_root.json", ct_logs=False)
    facts = keyless_facts(tmp_path, trustedRoot=str(root))
    assert facts["verified"] is True and facts["signatures"][0]["checks"] == {"sct": "skipped"}
    data = {"authorities": [{"name": "ci", "cosign": {"keyless": {
        "trustedRoot": str(root), "identities": [{"subject": "dev@team.example"}]}}}]}
    warnings = config_warnings(build_config(data, write_yaml(tmp_path / "c.yaml", data)))
    assert any(w.startswith("authority ci: keyless has no CT log keys") for w in warnings)
    data["authorities"][0]["cosign"]["keyless"]["sct"] = "required"
    with pytest.raises(ConfigError, match="sct: required needs CT log keys") as caught:
        build_config(data, write_yaml(tmp_path / "c.yaml", data))
    assert caught.value.field_path == "authorities[0].cosign.keyless.sct"


# sigstore-go pkg/root/certificate_authority.go FulcioCertificateAuthority.Verify: a CA counts only for signatures
# whose time lies inside its validFor window.
def test_FulcioCertificateAuthority_Verify_honours_the_validity_window(tmp_path: Path) -> None:
    import datetime

    sigstore = fulcio.Sigstore()
    fulcio_image(tmp_path, sigstore, fulcio.leaf(sigstore.intermediate, "dev@team.example", sigstore.ct_log))
    ended = fulcio.NOW - datetime.timedelta(days=30)
    root = sigstore.trusted_root(tmp_path / "ended.json", ca_window=(None, ended))
    facts = keyless_facts(tmp_path, trustedRoot=str(root))
    assert facts["verified"] is False
    assert facts["signatures"][0]["reason"].startswith("trusted root CA CN=test fulcio root is valid from ")
    assert f"until {ended:%Y-%m-%dT%H:%M:%SZ}, not at" in facts["signatures"][0]["reason"]
    current = sigstore.trusted_root(tmp_path / "current.json", ca_window=(ended, None))
    assert keyless_facts(tmp_path, trustedRoot=str(current))["verified"] is True


# sigstore-go pkg/tlog/entry.go VerifySET: "rekor log public key not valid at payload integrated time".
def test_VerifySET_honours_the_log_key_window(tmp_path: Path) -> None:
    import datetime

    sigstore = fulcio.Sigstore()
    fulcio_image(tmp_path, sigstore, fulcio.leaf(sigstore.intermediate, "dev@team.example", sigstore.ct_log))
    ended = fulcio.NOW - datetime.timedelta(days=30)
    root = sigstore.trusted_root(tmp_path / "ended.json", rekor_window=(None, ended))
    facts = keyless_facts(tmp_path, trustedRoot=str(root))
    assert facts["verified"] is False
    assert "Rekor key trustedRoot.tlogs[0] is not valid at the entry's integrated time" in \
        facts["signatures"][0]["reason"]


# The public-good trusted root vendored from cosign: Fulcio v1 CA valid until 2022-12-31 only. The connaisseur vector
# (2024) verifies through the v2 CA, with its SCT from the public-good CT log.
def test_vendored_trusted_root_vouches_for_the_2024_keyless_vector_with_its_sct(tmp_path: Path) -> None:
    connaisseur_layout(tmp_path / "layouts" / REG, "testimage")
    keyless = {"trustedRoot": str(VECTORS / "cosign/trusted_root_pgi.json"),
               "identities": [{"subject": "philipp.belitz@securesystems.de"}]}
    facts = verify(tmp_path, f"{REG}/testimage:keyless", [{"name": "ci", "cosign": {"keyless": keyless}}])
    assert facts["verified"] is True, facts["signatures"]
    assert facts["signatures"][0]["checks"] == {"sct": "passed"}


def test_vendored_keyless_vector_sct_must_come_from_a_configured_log(tmp_path: Path) -> None:
    import base64

    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

    containers_image_vector(tmp_path / "layouts" / REG, "dir-img-cosign-fulcio-rekor-valid", "keyless")
    ctlogs = json.loads((VECTORS / "cosign/trusted_root_pgi.json").read_text())["ctlogs"]
    for index, log in enumerate(ctlogs):
        key = load_der_public_key(base64.b64decode(log["publicKey"]["rawBytes"]))
        (tmp_path / f"ct{index}.pub").write_bytes(key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    keyless = {"fulcioRoots": [str(CONTAINERS_IMAGE / "fulcio_v1.crt.pem")],
               "rekorKeys": [str(CONTAINERS_IMAGE / "rekor.pub")], "identities": [{"subject": "mitr@redhat.com"}]}
    right = verify(tmp_path, f"{REG}/keyless:v1", [{"name": "ci", "cosign": {
        "keyless": {**keyless, "ctLogKeys": [str(tmp_path / "ct1.pub")]}}}])
    assert right["verified"] is True and right["signatures"][0]["checks"] == {"sct": "passed"}
    wrong = verify(tmp_path, f"{REG}/keyless:v1", [{"name": "ci", "cosign": {
        "keyless": {**keyless, "ctLogKeys": [str(tmp_path / "ct0.pub")]}}}])
    assert wrong["verified"] is False and "embedded SCTs verifies" in wrong["signatures"][0]["reason"]


# Go crypto/x509 Verify with KeyUsages [CodeSigning] (checkChainForKeyUsage), used by cosign TrustedCert and
# sigstore-go: an intermediate limited to TLS cannot issue a code-signing leaf.
@pytest.mark.parametrize("kind", ["keyless", "pki"])
def test_checkChainForKeyUsage_tls_only_intermediate_cannot_issue_code_signing(tmp_path: Path, kind: str) -> None:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    root = fulcio.ca("corp root")
    tls_only = fulcio.ca("corp TLS CA", root, eku=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    code_ok = fulcio.ca("corp code CA", root, eku=[ExtendedKeyUsageOID.CODE_SIGNING])
    for name, intermediate, verified in (("tls", tls_only, False), ("code", code_ok, True)):
        sigstore = fulcio.Sigstore(root=root, intermediate=intermediate)
        fulcio_image(tmp_path / name, sigstore, fulcio.leaf(intermediate, "dev@team.example", sigstore.ct_log))
        if kind == "keyless":
            facts = keyless_facts(tmp_path / name, trustedRoot=str(sigstore.trusted_root(tmp_path / f"{name}.json")))
        else:
            (tmp_path / f"{name}-rekor.pub").write_bytes(cosign.public_pem(sigstore.rekor))
            facts = verify(tmp_path / name, f"{REG}/keyless:v1", [{"name": "corp", "cosign": {
                "rekorKeys": [str(tmp_path / f"{name}-rekor.pub")],
                "pki": {"roots": [pem_file(tmp_path / "root.pem", root.cert)],
                        "intermediates": [pem_file(tmp_path / f"{name}.pem", intermediate.cert)]}}}])
        assert facts["verified"] is verified, facts["signatures"][0]["reason"]
        if not verified:
            assert "CN=corp TLS CA has an extended key usage without codeSigning" in facts["signatures"][0]["reason"]


# cosign pkg/cosign/verify.go: the signature's chain annotation supplies intermediates only when none are
# configured; sigstore-go: with a trusted root, only the CA's own intermediates count.
def test_annotation_intermediates_only_when_none_are_configured(tmp_path: Path) -> None:
    sigstore = fulcio.Sigstore()
    withdrawn = fulcio.ca("withdrawn intermediate", sigstore.root)
    fulcio_image(tmp_path, sigstore, fulcio.leaf(withdrawn, "dev@team.example", sigstore.ct_log),
                 chain=[withdrawn.cert, sigstore.root.cert])
    trusted = keyless_facts(tmp_path, trustedRoot=str(sigstore.trusted_root(tmp_path / "trusted_root.json")))
    assert trusted["verified"] is False
    (tmp_path / "rekor.pub").write_bytes(cosign.public_pem(sigstore.rekor))
    (tmp_path / "ct.pub").write_bytes(cosign.public_pem(sigstore.ct_log))
    files = {"fulcioRoots": [pem_file(tmp_path / "root.pem", sigstore.root.cert)],
             "rekorKeys": [str(tmp_path / "rekor.pub")], "ctLogKeys": [str(tmp_path / "ct.pub")]}
    configured = keyless_facts(tmp_path, **files,
                               fulcioIntermediates=[pem_file(tmp_path / "int.pem", sigstore.intermediate.cert)])
    assert configured["verified"] is False
    assert "certificate chain does not verify to a trusted root" in configured["signatures"][0]["reason"]
    assert keyless_facts(tmp_path, **files)["verified"] is True  # none configured: the annotation's chain is used


# sigstore-go FulcioCertificateAuthority.Verify with real material: the containers/image keyless vector (logged
# 2023-01-20) chains through the public-good v2 CA of the vendored trusted root; ending that CA's window at
# 2022-12-31, as the v1 CA's already is, must refuse it.
def test_FulcioCertificateAuthority_Verify_window_with_the_public_good_trusted_root(tmp_path: Path) -> None:
    containers_image_vector(tmp_path / "layouts" / REG, "dir-img-cosign-fulcio-rekor-valid", "keyless")
    root = json.loads((VECTORS / "cosign/trusted_root_pgi.json").read_text())
    (tmp_path / "as-is.json").write_text(json.dumps(root))
    root["certificateAuthorities"][1]["validFor"]["end"] = "2022-12-31T23:59:59.999Z"
    (tmp_path / "ended.json").write_text(json.dumps(root))
    keyless = {"rekorKeys": [str(CONTAINERS_IMAGE / "rekor.pub")], "identities": [{"subject": "mitr@redhat.com"}]}
    as_is = verify(tmp_path, f"{REG}/keyless:v1", [{"name": "ci", "cosign": {
        "keyless": {**keyless, "trustedRoot": str(tmp_path / "as-is.json")}}}])
    assert as_is["verified"] is True, as_is["signatures"]
    ended = verify(tmp_path, f"{REG}/keyless:v1", [{"name": "ci", "cosign": {
        "keyless": {**keyless, "trustedRoot": str(tmp_path / "ended.json")}}}])
    assert ended["verified"] is False
    reason = ended["signatures"][0]["reason"]
    assert "trusted root CA CN=sigstore,O=sigstore.dev is valid from 2021-03-07T03:20:29Z until " \
           "2022-12-31T23:59:59Z, not at 2023-01-20" in reason
    assert "is valid from 2022-04-13T20:06:15Z until 2022-12-31T23:59:59Z" in reason
