"""Certificate revocation for notation signatures: OCSP first, CRLs from the distribution points as fallback.

As notation does, each certificate of the chain but the root is checked: through its OCSP responders when it
names any (see ocsp.py), and through its CRL distribution points when it names no responder or the
responders leave its status unknown (unreachable, unverifiable answer, or "unknown"). A revoked answer from
a responder is final. A certificate with neither OCSP responders nor distribution points has nothing to check.

CRLs are fetched over HTTP(S) with a timeout and a size cap, checked against their issuer's key, and
cached until their nextUpdate. The cache is keyed by URL and issuer (subject and key), and a cached CRL's
signature is checked again against the issuer of each chain that uses it: a distribution point shared by
two CAs, or a CRL fetched for another chain, never vouches for the wrong issuer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from cachetools import TLRUCache
from cryptography import x509

from provider.errors import ItemError
from provider.facts import rfc3339
from provider.stores.fetch import Outbound
from provider.verifiers.notation.ocsp import OCSP_TIMEOUT, OCSPChecker, responder_urls
from provider.verifiers.notation.ocsp import issuer_id as _issuer_id

MAX_CRL_BYTES = 10 * 1024 * 1024
# Distinct (URL, issuer) pairs kept; certificates choose their URLs, so the cache must not grow without end.
MAX_CACHED_CRLS = 256


class RevocationChecker:
    def __init__(self, timeout: float = 5.0, outbound: Outbound | None = None,
                 ocsp_timeout: float = OCSP_TIMEOUT) -> None:
        self.timeout = timeout
        # CRL and OCSP URLs come from certificates: fetched under the wildcard egress policy unless told otherwise.
        self.outbound = outbound or Outbound()
        self.ocsp = OCSPChecker(self.outbound, ocsp_timeout)
        self._cache: TLRUCache[tuple[str, str], x509.CertificateRevocationList] = TLRUCache(
            maxsize=MAX_CACHED_CRLS, ttu=_expires_at, timer=lambda: datetime.now(UTC).timestamp())
        self._lock = threading.Lock()

    def problem(self, chain: Sequence[x509.Certificate]) -> str:
        """Empty when no certificate of `chain` is revoked; else why (revoked, or status unknown)."""
        for index, cert in enumerate(chain[:-1] if len(chain) > 1 else chain):
            issuer = chain[index + 1] if index + 1 < len(chain) else cert
            problem = self._certificate_problem(cert, issuer)
            if problem:
                return problem
        return ""

    def _certificate_problem(self, cert: x509.Certificate, issuer: x509.Certificate) -> str:
        name = cert.subject.rfc4514_string()
        ocsp_unknown = ""
        responders = responder_urls(cert)
        if responders:
            answer = self.ocsp.status(cert, issuer, responders)
            if answer.status == "good":
                return ""
            if answer.status == "revoked":  # final: a CRL is not asked to overrule the responder
                when = rfc3339(answer.revoked_at) if answer.revoked_at else "an unstated time"
                return f"certificate {name} was revoked at {when}"
            ocsp_unknown = answer.why or "no OCSP responder answered"
        crl_urls = _crl_urls(cert)
        if ocsp_unknown and not crl_urls:
            return f"revocation status of {name} is unknown: {ocsp_unknown}"
        for url in crl_urls:
            try:
                crl = self._crl(url, issuer)
            except ValueError as exc:
                why = f"{ocsp_unknown}; {exc}" if ocsp_unknown else str(exc)
                return f"revocation status of {name} is unknown: {why}"
            revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if revoked is not None:
                return f"certificate {name} was revoked at {rfc3339(revoked.revocation_date_utc)}"
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
