"""The serving certificate the pod issues for itself: a long-lived CA and a short-lived leaf, renewed early.

The CA signs the leaf and is what Gatekeeper's Provider objects trust (`caBundle`). During a CA rollover the
bundle holds the new and the old CA, so replicas still serving the old leaf stay trusted.
"""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key

from provider.devkit.pki import Issued, issue, make_ca

CA_DAYS = 3650
LEAF_DAYS = 90
# Renew a leaf with a third of its life left, a CA with a year left: both long before anything expires.
LEAF_RENEW_BEFORE = datetime.timedelta(days=30)
CA_RENEW_BEFORE = datetime.timedelta(days=365)
_PEM = Encoding.PEM


@dataclass(frozen=True)
class ServingMaterial:
    """What the TLS Secret holds: the signing CA, the leaf it issued and the CA bundle clients trust."""

    ca: Issued
    leaf: Issued
    ca_bundle: bytes

    def secret_data(self) -> dict[str, str]:
        data = {"ca.crt": self.ca_bundle, "ca.key": self.ca.key_pem, "tls.crt": self.leaf.cert_pem,
                "tls.key": self.leaf.key_pem}
        return {name: base64.b64encode(value).decode() for name, value in data.items()}

    @property
    def ca_bundle_b64(self) -> str:
        return base64.b64encode(self.ca_bundle).decode()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _issue_leaf(ca: Issued, hosts: tuple[str, ...]) -> Issued:
    return issue(ca, hosts[0], hosts, server=True, days=LEAF_DAYS)


def generate(hosts: tuple[str, ...]) -> ServingMaterial:
    """A new CA and a leaf for `hosts` (the first one is also the common name)."""
    ca = make_ca("sigwarden serving CA", days=CA_DAYS)
    return ServingMaterial(ca, _issue_leaf(ca, hosts), ca.cert_pem)


def _issued(cert_pem: bytes, key_pem: bytes) -> Issued:
    key = load_pem_private_key(key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the private key is not an ECDSA key")
    return Issued(x509.load_pem_x509_certificate(cert_pem), key)


def from_secret(data: dict[str, str]) -> ServingMaterial:
    """Parse a TLS Secret's data; raises ValueError naming the key that is missing or broken."""
    raw: dict[str, bytes] = {}
    for name in ("ca.crt", "ca.key", "tls.crt", "tls.key"):
        if not data.get(name):
            raise ValueError(f"the Secret has no {name}")
        raw[name] = base64.b64decode(data[name])
    bundle = x509.load_pem_x509_certificates(raw["ca.crt"])
    # The signing CA is the bundle's certificate whose public key matches ca.key.
    key = load_pem_private_key(raw["ca.key"], password=None)
    signing = [c for c in bundle if c.public_key() == key.public_key()]
    if not signing:
        raise ValueError("ca.key matches no certificate in ca.crt")
    ca = _issued(signing[0].public_bytes(_PEM), raw["ca.key"])
    return ServingMaterial(ca, _issued(raw["tls.crt"], raw["tls.key"]), raw["ca.crt"])


def renewal_reason(material: ServingMaterial, hosts: tuple[str, ...]) -> str:
    """Why the material must be renewed now, or "" when it is fine."""
    now = _now()
    leaf, ca = material.leaf.cert, material.ca.cert
    if ca.not_valid_after_utc - now < CA_RENEW_BEFORE:
        return f"the CA expires on {ca.not_valid_after_utc:%Y-%m-%d}"
    try:
        leaf.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError) as exc:
        return f"the certificate was not issued by the CA ({type(exc).__name__})"
    if leaf.not_valid_after_utc - now < LEAF_RENEW_BEFORE:
        return f"the certificate expires on {leaf.not_valid_after_utc:%Y-%m-%d}"
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        present = set(names.get_values_for_type(x509.DNSName))
        present |= {str(address) for address in names.get_values_for_type(x509.IPAddress)}
    except x509.ExtensionNotFound:
        present = set()
    missing = sorted(set(hosts) - present)
    if missing:
        return f"the certificate does not name {', '.join(missing)}"
    return ""


def renew(material: ServingMaterial, hosts: tuple[str, ...]) -> ServingMaterial:
    """A new leaf from the same CA, or a new CA (trusted next to the old one until that expires)."""
    now = _now()
    ca = material.ca
    if ca.cert.not_valid_after_utc - now >= CA_RENEW_BEFORE:
        return ServingMaterial(ca, _issue_leaf(ca, hosts), material.ca_bundle)
    new_ca = make_ca("sigwarden serving CA", days=CA_DAYS)
    still_valid = [c for c in x509.load_pem_x509_certificates(material.ca_bundle) if c.not_valid_after_utc > now]
    bundle = new_ca.cert_pem + b"".join(c.public_bytes(_PEM) for c in still_valid)
    return ServingMaterial(new_ca, _issue_leaf(new_ca, hosts), bundle)

