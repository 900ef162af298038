"""Make Notary Project signatures (JWS and COSE) and their certificates, for tests and the demo."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cbor2
from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from provider.devkit.layout import EMPTY_CONFIG, LayoutWriter
from provider.verifiers.notation.envelope import ALGORITHMS, COSE_MEDIA_TYPE, JWS_MEDIA_TYPE, PAYLOAD_CONTENT_TYPE

NOTARY_ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
TIMESTAMP_HEADER = "io.cncf.notary.timestampSignature"
_COSE_ALG = {"PS256": -37, "PS384": -38, "PS512": -39, "ES256": -7, "ES384": -35, "ES512": -36}


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def subject(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                      x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
                      x509.NameAttribute(NameOID.LOCALITY_NAME, "Seattle"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def new_key(kind: str) -> PrivateKeyTypes:
    """`rsa-2048`, `rsa-3072`, `rsa-4096`, `ec-256`, `ec-384` or `ec-521`."""
    family, size = kind.split("-")
    if family == "rsa":
        return rsa.generate_private_key(65537, int(size))
    return ec.generate_private_key({"256": ec.SECP256R1(), "384": ec.SECP384R1(), "521": ec.SECP521R1()}[size])


def algorithm_for(key: PrivateKeyTypes) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return {2048: "PS256", 3072: "PS384", 4096: "PS512"}[key.key_size]
    return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}[key.curve.name]


@dataclass
class CertSpec:
    common_name: str
    ca: bool = False
    ekus: tuple[x509.ObjectIdentifier, ...] = (ExtendedKeyUsageOID.CODE_SIGNING,)
    hash_algorithm: hashes.HashAlgorithm = field(default_factory=hashes.SHA256)
    not_before: datetime.datetime | None = None
    not_after: datetime.datetime | None = None
    crl_url: str = ""  # several distribution points: separated by spaces
    ocsp_url: str = ""
    eku_critical: bool = False
    # KeyUsage bits (x509.KeyUsage argument names) to assert; None: digitalSignature for a leaf, keyCertSign and
    # cRLSign for a CA; an empty tuple leaves the extension out.
    key_usage: tuple[str, ...] | None = None
    key_usage_critical: bool = True
    extensions: tuple[tuple[x509.ExtensionType, bool], ...] = ()  # more (extension, critical) pairs


_KEY_USAGE_BITS = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                   "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")


def _key_usage(spec: CertSpec) -> x509.KeyUsage | None:
    bits = spec.key_usage if spec.key_usage is not None else (
        ("key_cert_sign", "crl_sign") if spec.ca else ("digital_signature",))
    if not bits:
        return None
    return x509.KeyUsage(**{name: name in bits for name in _KEY_USAGE_BITS})


def certificate(spec: CertSpec, key: PrivateKeyTypes, issuer_key: PrivateKeyTypes | None = None,
                issuer: x509.Certificate | None = None) -> x509.Certificate:
    """A certificate for `key`, self-signed unless an issuer is given."""
    builder = (x509.CertificateBuilder().subject_name(subject(spec.common_name))
               .issuer_name(issuer.subject if issuer else subject(spec.common_name))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(spec.not_before or _now() - datetime.timedelta(days=1))
               .not_valid_after(spec.not_after or _now() + datetime.timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=spec.ca, path_length=None), critical=True))
    usage = _key_usage(spec)
    if usage is not None:
        builder = builder.add_extension(usage, critical=spec.key_usage_critical)
    if spec.ekus and not spec.ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(spec.ekus)), critical=spec.eku_critical)
    for extension, critical in spec.extensions:
        builder = builder.add_extension(extension, critical=critical)
    if spec.crl_url:
        builder = builder.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(url)], None, None, None) for url in spec.crl_url.split()]),
            critical=False)
    if spec.ocsp_url:
        builder = builder.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(spec.ocsp_url))]), critical=False)
    return builder.sign(issuer_key or key, spec.hash_algorithm)


@dataclass
class SigningIdentity:
    """A signing key with its chain (leaf first) and the root to put in a trust store."""

    key: PrivateKeyTypes
    chain: list[x509.Certificate]
    root: x509.Certificate
    root_key: PrivateKeyTypes | None = None
    intermediate_key: PrivateKeyTypes | None = None

    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)


def identity_with_intermediate(kind: str = "rsa-3072", leaf: CertSpec | None = None,
                               crl_url: str = "", ocsp_url: str = "",
                               intermediate: CertSpec | None = None) -> SigningIdentity:
    root_key, intermediate_key, key = new_key("ec-384"), new_key("ec-384"), new_key(kind)
    root = certificate(CertSpec("Acme Root CA", ca=True), root_key)
    intermediate = certificate(intermediate or CertSpec("Acme Signing CA", ca=True), intermediate_key, root_key,
                               root)
    leaf_spec = leaf or CertSpec("Acme Release Signer")
    if crl_url:
        leaf_spec.crl_url = crl_url
    if ocsp_url:
        leaf_spec.ocsp_url = ocsp_url
    leaf_cert = certificate(leaf_spec, key, intermediate_key, intermediate)
    return SigningIdentity(key, [leaf_cert, intermediate, root], root, root_key, intermediate_key)


def tsa_identity(leaf: CertSpec | None = None, crl_url: str = "",
                 intermediate: CertSpec | None = None) -> SigningIdentity:
    """A timestamping authority: a leaf with the timeStamping EKU (critical, as RFC 3161 asks) under a CA."""
    spec = leaf or CertSpec("Acme Timestamping Authority", ekus=(ExtendedKeyUsageOID.TIME_STAMPING,),
                            eku_critical=True)
    return identity_with_intermediate("ec-256", spec, crl_url=crl_url,
                                      intermediate=intermediate or CertSpec("Acme Timestamping CA", ca=True))


def timestamp_token(signature: bytes, tsa: SigningIdentity, at: datetime.datetime | None = None,
                    ess: bool = True) -> bytes:
    """An RFC 3161 TimeStampToken over `signature` (the envelope's raw signature bytes), signed by `tsa`.

    `ess=False` leaves out the ESS signingCertificateV2 attribute that binds the TSA certificate.
    """
    tsa_cert = asn1_x509.Certificate.load(tsa.chain[0].public_bytes(serialization.Encoding.DER))
    info = tsp.TSTInfo({"version": "v1", "policy": "1.3.6.1.4.1.4146.2.3.1.2",
                        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"},
                                            "hashed_message": hashlib.sha256(signature).digest()},
                        "serial_number": x509.random_serial_number(), "gen_time": at or _now(),
                        "accuracy": {"seconds": 1}})
    content = info.dump()
    attributes = [{"type": "content_type", "values": ["tst_info"]},
                  {"type": "message_digest", "values": [hashlib.sha256(content).digest()]}]
    if ess:
        attributes.append({"type": "signing_certificate_v2", "values": [{"certs": [{
            "hash_algorithm": {"algorithm": "sha256"}, "cert_hash": hashlib.sha256(tsa_cert.dump()).digest(),
            "issuer_serial": {"issuer": [asn1_x509.GeneralName({"directory_name": tsa_cert.issuer})],
                              "serial_number": tsa_cert.serial_number}}]}]})
    signed_attributes = cms.CMSAttributes(attributes)
    assert isinstance(tsa.key, ec.EllipticCurvePrivateKey)
    signed = tsa.key.sign(signed_attributes.dump(), ec.ECDSA(hashes.SHA256()))
    signer = {"version": "v1", "sid": {"issuer_and_serial_number": {"issuer": tsa_cert.issuer,
                                                                    "serial_number": tsa_cert.serial_number}},
              "digest_algorithm": {"algorithm": "sha256"}, "signed_attrs": signed_attributes,
              "signature_algorithm": {"algorithm": "sha256_ecdsa"}, "signature": signed}
    certificates = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in tsa.chain]
    signed_data = cms.SignedData({"version": "v3", "digest_algorithms": [{"algorithm": "sha256"}],
                                  "encap_content_info": {"content_type": "tst_info",
                                                         "content": cms.ParsableOctetString(content)},
                                  "certificates": certificates, "signer_infos": [signer]})
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


def _raw_signature(key: PrivateKeyTypes, data: bytes, algorithm: str) -> bytes:
    family, hash_type = ALGORITHMS[algorithm]
    if family == "rsa-pss":
        assert isinstance(key, rsa.RSAPrivateKey)
        return key.sign(data, padding.PSS(padding.MGF1(hash_type()), hash_type.digest_size), hash_type())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hash_type())))
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def target_of(descriptor: dict[str, Any]) -> dict[str, Any]:
    return {"mediaType": descriptor["mediaType"], "digest": descriptor["digest"], "size": descriptor["size"]}


def _merge(headers: dict[Any, Any], changes: dict[Any, Any] | None) -> dict[Any, Any]:
    """`headers` with `changes` applied; a change to `DELETE` removes the header."""
    for key, value in (changes or {}).items():
        if value is DELETE:
            headers.pop(key, None)
        else:
            headers[key] = value
    return headers


DELETE = object()


def sign(target: dict[str, Any], identity: SigningIdentity, envelope: str = "jws", algorithm: str = "",
         signing_time: datetime.datetime | None = None, expiry: datetime.datetime | None = None,
         protected: dict[Any, Any] | None = None, unprotected: dict[Any, Any] | None = None,
         timestamper: Callable[[bytes], bytes] | None = None) -> bytes:
    """A notary.x509 signature over `target` (a descriptor dict) in a JWS or COSE envelope.

    `protected` and `unprotected` change headers (JWS names, COSE labels) before signing, to build the odd
    envelopes real registries can serve. `timestamper` turns the raw signature into an RFC 3161 token for the
    `io.cncf.notary.timestampSignature` header (see `timestamp_token`).
    """
    algorithm = algorithm or algorithm_for(identity.key)
    payload = json.dumps({"targetArtifact": target}, separators=(",", ":")).encode()
    moment = (signing_time or _now()).replace(microsecond=0)
    critical = ["io.cncf.notary.signingScheme"] + (["io.cncf.notary.expiry"] if expiry else [])
    ders = [c.public_bytes(serialization.Encoding.DER) for c in identity.chain]
    if envelope == "jws":
        jws_headers: dict[str, Any] = {"alg": algorithm, "crit": critical, "cty": PAYLOAD_CONTENT_TYPE,
                                       "io.cncf.notary.signingScheme": "notary.x509",
                                       "io.cncf.notary.signingTime": moment.isoformat().replace("+00:00", "Z")}
        if expiry:
            jws_headers["io.cncf.notary.expiry"] = expiry.replace(microsecond=0).isoformat().replace("+00:00", "Z")
        protected_b64 = _b64url(json.dumps(_merge(jws_headers, protected)).encode())
        payload_b64 = _b64url(payload)
        signature = _raw_signature(identity.key, f"{protected_b64}.{payload_b64}".encode(), algorithm)
        header: dict[str, Any] = {"x5c": [base64.b64encode(d).decode() for d in ders],
                                  "io.cncf.notary.signingAgent": "sigwarden-devkit"}
        if timestamper:
            header[TIMESTAMP_HEADER] = base64.b64encode(timestamper(signature)).decode()
        header = _merge(header, unprotected)
        return json.dumps({"payload": payload_b64, "protected": protected_b64, "signature": _b64url(signature),
                           "header": header}).encode()
    headers: dict[Any, Any] = {1: _COSE_ALG[algorithm], 2: critical, 3: PAYLOAD_CONTENT_TYPE,
                               "io.cncf.notary.signingScheme": "notary.x509",
                               "io.cncf.notary.signingTime": cbor2.CBORTag(1, int(moment.timestamp()))}
    if expiry:
        headers["io.cncf.notary.expiry"] = cbor2.CBORTag(1, int(expiry.timestamp()))
    protected_bytes = cbor2.dumps(_merge(headers, protected))
    signature = _raw_signature(identity.key, cbor2.dumps(["Signature1", protected_bytes, b"", payload]), algorithm)
    cose_unprotected: dict[Any, Any] = {33: ders, "io.cncf.notary.signingAgent": "sigwarden-devkit"}
    if timestamper:
        cose_unprotected[TIMESTAMP_HEADER] = timestamper(signature)
    cose_unprotected = _merge(cose_unprotected, unprotected)
    return cbor2.dumps(cbor2.CBORTag(18, [protected_bytes, cose_unprotected, payload, signature]))


def attach(writer: LayoutWriter, image: dict[str, Any], envelope: bytes, kind: str = "jws") -> dict[str, Any]:
    """Attach a signature envelope to an image in a layout as an OCI 1.1 referrer."""
    media_type = JWS_MEDIA_TYPE if kind == "jws" else COSE_MEDIA_TYPE
    layer = writer.add_blob(envelope, media_type)
    config = writer.add_blob(b"{}", EMPTY_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": NOTARY_ARTIFACT_TYPE, "config": config, "layers": [layer],
                "subject": target_of(image),
                "annotations": {"io.cncf.notary.x509chain.thumbprint#S256": "[]"}}
    return writer.add_manifest(manifest)
