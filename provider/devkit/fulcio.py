"""A stand-in Fulcio, CT log and Rekor for keyless signatures: certificates with real embedded SCTs, and trusted roots.

An SCT is the CT log's signature over the precertificate (RFC 6962 §3.2): the certificate's TBS without the
SCT list, with the issuer's key hash. cryptography cannot build the SCT list extension, so it is written here as
the TLS structure RFC 6962 §3.3 defines, wrapped in a DER OCTET STRING, and added as an unrecognised extension.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provider.devkit import cosign
from provider.devkit.layout import LayoutWriter
from provider.devkit.pki import Issued
from provider.devkit.rekor import hashedrekord_bundle
from provider.verifiers.keys import key_id

SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
FULCIO_ISSUER = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
ISSUER = "https://token.example"


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _octet_string(data: bytes) -> bytes:
    return b"\x04" + _der_length(len(data)) + data


def _utf8(text: str) -> bytes:
    return b"\x0c" + _der_length(len(text.encode())) + text.encode()


def spki(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def sct_list(log: ec.EllipticCurvePrivateKey, precert_tbs: bytes, issuer_key: Any, when: datetime.datetime) -> bytes:
    """The DER value of the SCT list extension: one v1 SCT by `log` over this precertificate."""
    millis = int(when.timestamp() * 1000).to_bytes(8, "big")
    signed = (b"\x00\x00" + millis + b"\x00\x01" + hashlib.sha256(spki(issuer_key)).digest()
              + len(precert_tbs).to_bytes(3, "big") + precert_tbs + b"\x00\x00")
    signature = log.sign(signed, ec.ECDSA(hashes.SHA256()))
    sct = (b"\x00" + bytes.fromhex(key_id(log.public_key())) + millis + b"\x00\x00"
           + b"\x04\x03" + len(signature).to_bytes(2, "big") + signature)
    serialized = len(sct).to_bytes(2, "big") + sct
    return _octet_string(len(serialized).to_bytes(2, "big") + serialized)


def ca(name: str, issuer: Issued | None = None, eku: list[x509.ObjectIdentifier] | None = None,
       not_before: datetime.datetime = NOW - datetime.timedelta(days=400)) -> Issued:
    """A root (no issuer) or an intermediate CA, optionally with an EKU extension."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(NOW + datetime.timedelta(days=3650))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer is not None:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                                        critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


def leaf(issuer: Issued, email: str, ct_log: ec.EllipticCurvePrivateKey | None,
         not_before: datetime.datetime = NOW - datetime.timedelta(minutes=5)) -> Issued:
    """A Fulcio-style 10-minute code-signing certificate; with `ct_log`, an embedded SCT from that log."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(x509.Name([]))
               .issuer_name(issuer.cert.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_before + datetime.timedelta(minutes=10))
               .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                              critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
               .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
                              critical=False)
               .add_extension(x509.UnrecognizedExtension(FULCIO_ISSUER, _utf8(ISSUER)), critical=False))
    if ct_log is not None:
        precert = builder.sign(issuer.key, hashes.SHA256())
        value = sct_list(ct_log, precert.tbs_certificate_bytes, issuer.key.public_key(), not_before)
        builder = builder.add_extension(x509.UnrecognizedExtension(SCT_LIST_OID, value), critical=False)
    return Issued(builder.sign(issuer.key, hashes.SHA256()), key)


def _window(start: datetime.datetime | None, end: datetime.datetime | None) -> dict[str, str]:
    window = {"start": f"{start or NOW - datetime.timedelta(days=400):%Y-%m-%dT%H:%M:%SZ}"}
    if end is not None:
        window["end"] = f"{end:%Y-%m-%dT%H:%M:%SZ}"
    return window


def _log(key: ec.EllipticCurvePrivateKey, window: dict[str, str]) -> dict[str, Any]:
    return {"baseUrl": "https://log.example", "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": base64.b64encode(spki(key.public_key())).decode(),
                          "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": window},
            "logId": {"keyId": base64.b64encode(bytes.fromhex(key_id(key.public_key()))).decode()}}


@dataclass
class Sigstore:
    """A root CA with one intermediate, a CT log and a Rekor log, as a trusted root lists them."""

    root: Issued = field(default_factory=lambda: ca("test fulcio root"))
    ct_log: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    rekor: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    intermediate: Issued | None = None

    def __post_init__(self) -> None:
        if self.intermediate is None:
            self.intermediate = ca("test fulcio intermediate", self.root)

    def trusted_root(self, path: Path, ca_window: tuple[Any, Any] = (None, None),
                     rekor_window: tuple[Any, Any] = (None, None), ct_logs: bool = True) -> Path:
        assert self.intermediate is not None
        chain = [self.intermediate.cert, self.root.cert]
        data = {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [_log(self.rekor, _window(*rekor_window))],
                "certificateAuthorities": [{
                    "subject": {"organization": "test", "commonName": "test fulcio"}, "uri": "https://fulcio.example",
                    "certChain": {"certificates": [{"rawBytes": base64.b64encode(
                        c.public_bytes(serialization.Encoding.DER)).decode()} for c in chain]},
                    "validFor": _window(*ca_window)}],
                "ctlogs": [_log(self.ct_log, _window(None, None))] if ct_logs else [],
                "timestampAuthorities": []}
        path.write_text(json.dumps(data))
        return path

    def sign_image(self, writer: LayoutWriter, digest: str, reference: str, signer: Issued,
                   chain: list[x509.Certificate] | None = None,
                   integrated: datetime.datetime = NOW - datetime.timedelta(minutes=2)) -> None:
        """A cosign keyless signature layer: certificate, optional chain annotation and a Rekor bundle."""
        body = cosign.payload(digest, reference)
        signature = cosign.sign(signer.key, body)
        annotations = {"dev.sigstore.cosign/certificate": signer.cert_pem.decode(),
                       "dev.sigstore.cosign/bundle": hashedrekord_bundle(self.rekor, body, signature, signer.cert_pem,
                                                                        int(integrated.timestamp()))}
        if chain:
            annotations["dev.sigstore.cosign/chain"] = b"".join(
                c.public_bytes(serialization.Encoding.PEM) for c in chain).decode()
        cosign.attach(writer, digest, [cosign.signature_layer(writer, body, signature, annotations)])
