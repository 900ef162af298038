"""Certificate revocation for notation signatures: CRLs from the certificates' distribution points.

CRLs are fetched over HTTP(S) with a timeout and a size cap, checked against their issuer's key, and
cached until their nextUpdate. The cache is keyed by URL and issuer (subject and key), and a cached CRL's
signature is checked again against the issuer of each chain that uses it: a distribution point shared by
two CAs, or a CRL fetched for another chain, never vouches for the wrong issuer. A certificate without
distribution points has nothing to check.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from cachetools import TLRUCache
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from provider.errors import ItemError
from provider.facts import rfc3339
from provider.stores.fetch import Outbound

MAX_CRL_BYTES = 10 * 1024 * 1024
# Distinct (URL, issuer) pairs kept; certificates choose their URLs, so the cache must not grow without end.
MAX_CACHED_CRLS = 256


class RevocationChecker:
    def __init__(self, timeout: float = 5.0, outbound: Outbound | None = None) -> None:
        self.timeout = timeout
        # CRL URLs come from certificates: fetched under the wildcard egress policy unless told otherwise.
        self.outbound = outbound or Outbound()
        self._cache: TLRUCache[tuple[str, str], x509.CertificateRevocationList] = TLRUCache(
            maxsize=MAX_CACHED_CRLS, ttu=_expires_at, timer=lambda: datetime.now(UTC).timestamp())
        self._lock = threading.Lock()

    def problem(self, chain: Sequence[x509.Certificate]) -> str:
        """Empty when no certificate of `chain` is revoked; else why (revoked, or status unknown)."""
        for index, cert in enumerate(chain[:-1] if len(chain) > 1 else chain):
            issuer = chain[index + 1] if index + 1 < len(chain) else cert
            for url in _crl_urls(cert):
                try:
                    crl = self._crl(url, issuer)
                except ValueError as exc:
                    return f"revocation status of {cert.subject.rfc4514_string()} is unknown: {exc}"
                revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
                if revoked is not None:
                    return (f"certificate {cert.subject.rfc4514_string()} was revoked at "
                            f"{rfc3339(revoked.revocation_date_utc)}")
        return ""

    def _crl(self, url: str, issuer: x509.Certificate) -> x509.CertificateRevocationList:
        now = datetime.now(UTC)
        key = (url, _issuer_id(issuer))
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            _check_issuer(cached, issuer, url)  # per chain, even for a CRL this issuer's key already verified
            return cached
        try:
            response = self.outbound.fetch("GET", url, time.monotonic() + self.timeout, MAX_CRL_BYTES + 1,
                                           what=f"CRL {url}")
            data = response.body
        except ItemError as exc:
            raise ValueError(f"CRL {url} could not be fetched ({exc})") from None
        if response.status != 200:
            raise ValueError(f"CRL {url} answered HTTP {response.status}")
        if len(data) > MAX_CRL_BYTES:
            raise ValueError(f"CRL {url} is larger than {MAX_CRL_BYTES} bytes")
        try:
            crl = (x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----") else x509.load_der_x509_crl(data))
        except ValueError:
            raise ValueError(f"CRL {url} does not parse") from None
        _check_issuer(crl, issuer, url)
        if crl.next_update_utc is not None and crl.next_update_utc < now:
            raise ValueError(f"CRL {url} is stale (nextUpdate {rfc3339(crl.next_update_utc)})")
        if crl.next_update_utc is not None:  # without nextUpdate there is no safe time to keep it
            with self._lock:
                self._cache[key] = crl
        return crl


def _issuer_id(issuer: x509.Certificate) -> str:
    """The issuer's subject and key: two CAs with one name but different keys are different issuers."""
    spki = issuer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(issuer.subject.public_bytes() + b"\x00" + spki).hexdigest()


def _check_issuer(crl: x509.CertificateRevocationList, issuer: x509.Certificate, url: str) -> None:
    if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise ValueError(f"CRL {url} is not signed by {issuer.subject.rfc4514_string()}")


def _expires_at(_key: object, crl: x509.CertificateRevocationList, now: float) -> float:
    return crl.next_update_utc.timestamp() if crl.next_update_utc is not None else now


def _crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [name.value for point in points for name in (point.full_name or [])
            if isinstance(name, x509.UniformResourceIdentifier) and name.value.startswith(("http://", "https://"))]
