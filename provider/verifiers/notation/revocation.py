"""Certificate revocation for notation signatures: OCSP first, CRLs from the distribution points as fallback.

As notation does, each certificate of the chain but the root is checked: through its OCSP responders when it
names any (see ocsp.py), and through its CRL distribution points when it names no responder or the
responders leave its status unknown (unreachable, unverifiable answer, or "unknown"). A revoked answer from
a responder is final. A certificate with neither OCSP responders nor distribution points has nothing to check.

CRLs are fetched over HTTP(S) with a timeout and a size cap, checked against their issuer's key, and
cached until their nextUpdate. The cache is keyed by URL and issuer (subject and key), and a cached CRL's
signature is checked again against the issuer of each chain that uses it: a distribution point shared by
two CAs, or a CRL fetched for another chain, never vouches for the wrong issuer. It is bounded in bytes.

A certificate's responders are asked side by side, then (when they leave the status unknown) its
distribution points side by side, all under the job's deadline (see sources.py). The public entry point is
`RevocationChecker.problem(chain, deadline=…, outbound=…)`: `chain` is leaf first, each certificate followed
by its issuer, ending at the trust anchor; `outbound` is the egress the URLs may be fetched through (the
caller's store policy for signer-chosen URLs). Callers check revocation only for chains that verified to a
configured trust anchor: otherwise whoever made the chain would choose what the provider fetches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cachetools import TLRUCache
from cryptography import x509

from provider.facts import rfc3339
from provider.stores.fetch import Outbound
from provider.verifiers.notation.ocsp import OCSP_TIMEOUT, OCSPChecker, responder_urls
from provider.verifiers.notation.ocsp import issuer_id as _issuer_id
from provider.verifiers.notation.sources import MAX_SOURCES, UNAVAILABLE, Sources, wait_for

MAX_CRL_BYTES = 10 * 1024 * 1024
# notation waits 5 seconds for each CRL.
CRL_TIMEOUT = 5.0
# Bytes of CRLs kept (their size as fetched, plus the URL and a fixed overhead per entry); certificates choose
# their URLs, so the cache must not grow without end. One CRL of MAX_CRL_BYTES fits.
CRL_CACHE_BYTES = 32 * 1024 * 1024
CRL_ENTRY_OVERHEAD = 512


@dataclass(frozen=True)
class _CachedCRL:
    crl: x509.CertificateRevocationList
    size: int


class RevocationChecker:
    def __init__(self, timeout: float = CRL_TIMEOUT, outbound: Outbound | None = None,
                 ocsp_timeout: float = OCSP_TIMEOUT, cache_bytes: int = CRL_CACHE_BYTES) -> None:
        self.timeout = timeout
        # CRL and OCSP URLs come from certificates: fetched under the wildcard egress policy unless the
        # caller passes its store's (see NotationVerifier).
        self.outbound = outbound or Outbound()
        self.sources = Sources()
        self.ocsp = OCSPChecker(self.outbound, ocsp_timeout, self.sources)
        self._cache: TLRUCache[tuple[str, str], _CachedCRL] = TLRUCache(
            maxsize=cache_bytes, ttu=_expires_at, timer=lambda: datetime.now(UTC).timestamp(),
            getsizeof=lambda entry: entry.size)
        self._lock = threading.Lock()

    def problem(self, chain: Sequence[x509.Certificate], deadline: float | None = None,
                outbound: Outbound | None = None) -> str:
        """Empty when no certificate of `chain` is revoked; else why (revoked, or status unknown).

        Nothing is waited for past `deadline` (time.monotonic(); default: one OCSP and one CRL timeout from
        now); a source not answered by then leaves the status unknown.
        """
        if deadline is None:
            deadline = time.monotonic() + self.ocsp.timeout + self.timeout
        via = outbound or self.outbound
        for index, cert in enumerate(chain[:-1] if len(chain) > 1 else chain):
            issuer = chain[index + 1] if index + 1 < len(chain) else cert
            problem = self._certificate_problem(cert, issuer, deadline, via)
            if problem:
                return problem
        return ""

    def _certificate_problem(self, cert: x509.Certificate, issuer: x509.Certificate, deadline: float,
                             outbound: Outbound) -> str:
        name = cert.subject.rfc4514_string()
        ocsp_unknown = ""
        responders = responder_urls(cert)
        if responders:
            answer = self.ocsp.status(cert, issuer, responders, deadline, outbound)
            if answer.status == "good":
                return ""
            if answer.status == "revoked":  # final: a CRL is not asked to overrule the responder
                when = rfc3339(answer.revoked_at) if answer.revoked_at else "an unstated time"
                return f"certificate {name} was revoked at {when}"
            ocsp_unknown = answer.why or "no OCSP responder answered"
        crl_urls = _crl_urls(cert)
        if ocsp_unknown and not crl_urls:
            return f"revocation status of {name} is unknown: {ocsp_unknown}"
        if len(crl_urls) > MAX_SOURCES:
            failures = [f"{UNAVAILABLE} (the certificate names {len(crl_urls)} CRL distribution points, "
                        f"over {MAX_SOURCES})"]
        else:
            fetched = self.sources.start([lambda url=url: self._crl(url, issuer, deadline, outbound)
                                          for url in crl_urls])
            failures = []
            for url, future in zip(crl_urls, fetched, strict=True):
                try:
                    crl = wait_for(future, deadline)
                except ValueError as exc:
                    failures.append(str(exc) if str(exc) != UNAVAILABLE else f"CRL {url}: {UNAVAILABLE}")
                    continue
                revoked = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
                if revoked is not None:  # whatever the other distribution points say
                    return f"certificate {name} was revoked at {rfc3339(revoked.revocation_date_utc)}"
        if failures:
            why = "; ".join([ocsp_unknown, *failures] if ocsp_unknown else failures)
            return f"revocation status of {name} is unknown: {why}"
        return ""

    def _crl(self, url: str, issuer: x509.Certificate, deadline: float,
             outbound: Outbound) -> x509.CertificateRevocationList:
        now = datetime.now(UTC)
        key = (url, _issuer_id(issuer))
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            _check_issuer(cached.crl, issuer, url)  # per chain, even for a CRL this issuer's key already verified
            return cached.crl
        response = self.sources.fetch(outbound, "GET", url, self.timeout, deadline, MAX_CRL_BYTES + 1, f"CRL {url}")
        data = response.body
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
            size = len(data) + len(url) + CRL_ENTRY_OVERHEAD
            with self._lock:
                if size <= self._cache.maxsize:
                    self._cache[key] = _CachedCRL(crl, size)
        return crl

    @property
    def cache_bytes(self) -> int:
        with self._lock:
            return int(self._cache.currsize)


def _check_issuer(crl: x509.CertificateRevocationList, issuer: x509.Certificate, url: str) -> None:
    try:
        named = crl.issuer == issuer.subject  # names are decoded when read: a malformed one raises here
    except (ValueError, TypeError) as exc:
        raise ValueError(f"CRL {url} is malformed ({exc})") from None
    if not named or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise ValueError(f"CRL {url} is not signed by {issuer.subject.rfc4514_string()}")


def _expires_at(_key: object, entry: _CachedCRL, now: float) -> float:
    return entry.crl.next_update_utc.timestamp() if entry.crl.next_update_utc is not None else now


def _crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [name.value for point in points for name in (point.full_name or [])
            if isinstance(name, x509.UniformResourceIdentifier) and name.value.startswith(("http://", "https://"))]
