"""OCSP for notation signatures: ask each certificate's responders (its AIA extension) whether it is revoked.

Like notation-core-go: the request names the certificate by SHA-1 hashes of its issuer (what most public
responders answer), carries no nonce, and goes as a GET when its base64 form is short (under 255 characters),
else as a POST. The responders are asked side by side (see sources.py); the first in the certificate's order
that gives a verified answer decides. An
answer counts only when the response is successful, names this certificate (issuer name and key hashes,
serial), is signed by the issuer or by a responder certificate the issuer signed for OCSP signing, and is
current (thisUpdate not in the future, nextUpdate present and not passed). Good and revoked answers are
cached until their nextUpdate; a responder that could not be reached is not asked again for a short while.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import quote

from cachetools import TLRUCache
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from provider.facts import rfc3339
from provider.stores.fetch import Outbound
from provider.verifiers.certparse import check_serial_numbers
from provider.verifiers.notation.sources import MAX_SOURCES, UNAVAILABLE, Sources, SourceUnavailable, wait_for

# notation-core-go reads at most 20 KiB of an answer; typical answers are a few KiB.
MAX_OCSP_BYTES = 20 * 1024
# notation waits 2 seconds for each responder.
OCSP_TIMEOUT = 2.0
# Clocks of responder and verifier differ a little; a response dated this far ahead still counts.
CLOCK_SKEW = timedelta(minutes=5)
# (responder URL, issuer, serial) answers kept; certificates choose their URLs, so the cache is bounded.
MAX_CACHED_ANSWERS = 1024
# Requests whose URL-encoded base64 is shorter than this go as GET (notation's and RFC 5019's limit).
MAX_GET_CHARS = 255


@dataclass(frozen=True)
class OCSPAnswer:
    """What the responders said about one certificate: good, revoked (at `revoked_at`) or unknown (`why`)."""

    status: Literal["good", "revoked", "unknown"]
    revoked_at: datetime | None = None
    why: str = ""
    next_update: datetime | None = None


class OCSPFailure(ValueError):
    """One responder gave no usable answer; the message says why."""


def responder_urls(cert: x509.Certificate) -> list[str]:
    """The certificate's OCSP responders (http or https), in the order the certificate lists them."""
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [item.access_location.value for item in access
            if item.access_method == AuthorityInformationAccessOID.OCSP
            and isinstance(item.access_location, x509.UniformResourceIdentifier)
            and item.access_location.value.startswith(("http://", "https://"))]


class OCSPChecker:
    def __init__(self, outbound: Outbound, timeout: float = OCSP_TIMEOUT, sources: Sources | None = None) -> None:
        self.outbound = outbound
        self.timeout = timeout
        self.sources = sources or Sources()
        self._cache: TLRUCache[tuple[str, str, int], OCSPAnswer] = TLRUCache(
            maxsize=MAX_CACHED_ANSWERS, ttu=_expires_at, timer=lambda: datetime.now(UTC).timestamp())
        self._lock = threading.Lock()

    def status(self, cert: x509.Certificate, issuer: x509.Certificate, urls: Sequence[str],
               deadline: float | None = None, outbound: Outbound | None = None) -> OCSPAnswer:
        """Ask every responder at once; the first verified answer (good, revoked or unknown) in the
        certificate's order decides. Nothing is waited for past `deadline`."""
        deadline = deadline if deadline is not None else time.monotonic() + self.timeout
        keys = [(url, issuer_id(issuer), cert.serial_number) for url in urls]
        with self._lock:
            cached = next((answer for key in keys if (answer := self._cache.get(key)) is not None), None)
        if cached is not None:
            return cached
        if len(urls) > MAX_SOURCES:
            return OCSPAnswer("unknown", why=f"{UNAVAILABLE} (the certificate names {len(urls)} OCSP responders, "
                                             f"over {MAX_SOURCES})")
        via = outbound or self.outbound
        asked = self.sources.start([lambda url=url: self._ask(url, cert, issuer, deadline, via) for url in urls])
        failures = []
        for key, future in zip(keys, asked, strict=True):
            try:
                answer = wait_for(future, deadline)
            except (OCSPFailure, SourceUnavailable) as exc:
                failures.append(str(exc) if str(exc) != UNAVAILABLE else f"OCSP responder {key[0]}: {UNAVAILABLE}")
                continue
            if answer.status != "unknown":
                with self._lock:
                    self._cache[key] = answer
            return answer
        return OCSPAnswer("unknown", why="; ".join(failures))

    def _ask(self, url: str, cert: x509.Certificate, issuer: x509.Certificate, deadline: float,
             outbound: Outbound) -> OCSPAnswer:
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
        der = request.public_bytes(Encoding.DER)
        encoded = quote(base64.b64encode(der).decode(), safe="")
        what = f"OCSP responder {url}"
        if len(encoded) < MAX_GET_CHARS:
            fetched = self.sources.fetch(outbound, "GET", url.rstrip("/") + "/" + encoded, self.timeout, deadline,
                                         MAX_OCSP_BYTES, what, source=url)
        else:
            fetched = self.sources.fetch(outbound, "POST", url, self.timeout, deadline, MAX_OCSP_BYTES, what,
                                         headers={"Content-Type": "application/ocsp-request"}, data=der)
        return read_response(fetched.body, cert, issuer, url, datetime.now(UTC))


def read_response(data: bytes, cert: x509.Certificate, issuer: x509.Certificate, url: str,
                  now: datetime) -> OCSPAnswer:
    """The verified answer of one OCSP response about `cert`; OCSPFailure when it cannot be trusted."""
    try:
        response = ocsp.load_der_ocsp_response(data)
    except ValueError:
        raise OCSPFailure(f"OCSP responder {url} sent a response that does not parse") from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OCSPFailure(f"OCSP responder {url} answered {response.response_status.name}")
    try:
        check_serial_numbers(*response.certificates)  # Go's ocsp.ParseResponse parses each one
        single = _single_for(response, cert, issuer)
        if single is None:
            raise OCSPFailure(f"OCSP response from {url} is not about serial {cert.serial_number:x} "
                              f"of {issuer.subject.rfc4514_string()}")
        _check_signer(response, issuer, url, now)
        this_update, next_update = single.this_update_utc, single.next_update_utc
        status = single.certificate_status
        revoked_at = single.revocation_time_utc if status == ocsp.OCSPCertStatus.REVOKED else None
    except OCSPFailure:
        raise
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # cryptography refuses malformed fields when read
        raise OCSPFailure(f"OCSP response from {url} is malformed ({exc})") from None
    if this_update > now + CLOCK_SKEW:
        raise OCSPFailure(f"OCSP response from {url} is dated in the future (thisUpdate {rfc3339(this_update)})")
    # Like notation: a response without nextUpdate has no time until which it holds, so it is not used.
    if next_update is None:
        raise OCSPFailure(f"OCSP response from {url} has no nextUpdate")
    if next_update < now:
        raise OCSPFailure(f"OCSP response from {url} is stale (nextUpdate {rfc3339(next_update)})")
    if status == ocsp.OCSPCertStatus.GOOD:
        return OCSPAnswer("good", next_update=next_update)
    if status == ocsp.OCSPCertStatus.REVOKED:
        return OCSPAnswer("revoked", revoked_at=revoked_at, next_update=next_update)
    return OCSPAnswer("unknown", why=f"OCSP responder {url} does not know the certificate")


def _single_for(response: ocsp.OCSPResponse, cert: x509.Certificate,
                issuer: x509.Certificate) -> ocsp.OCSPSingleResponse | None:
    """The single response whose cert id names `cert` (hashes recomputed with the response's algorithm)."""
    for single in response.responses:
        try:
            expected = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, single.hash_algorithm).build()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue  # a hash algorithm a cert id may not use
        if (single.serial_number == cert.serial_number and single.issuer_name_hash == expected.issuer_name_hash
                and single.issuer_key_hash == expected.issuer_key_hash):
            return single
    return None


def _check_signer(response: ocsp.OCSPResponse, issuer: x509.Certificate, url: str, now: datetime) -> None:
    """Signed by the issuer, or by a certificate the issuer signed with id-kp-OCSPSigning (RFC 6960 4.2.2.2)."""
    if _names(response, issuer):
        if not _signature_valid(response, issuer):
            raise OCSPFailure(f"OCSP response from {url} is not signed by {issuer.subject.rfc4514_string()}")
        return
    delegated = next((c for c in response.certificates if _names(response, c)), None)
    if delegated is None:
        raise OCSPFailure(f"OCSP response from {url} is signed by neither {issuer.subject.rfc4514_string()} "
                          "nor a responder certificate it includes")
    subject = delegated.subject.rfc4514_string()
    try:
        delegated.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        raise OCSPFailure(f"OCSP responder certificate {subject} from {url} is not issued by "
                          f"{issuer.subject.rfc4514_string()}") from None
    try:
        ekus = delegated.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        ekus = x509.ExtendedKeyUsage([])
    if ExtendedKeyUsageOID.OCSP_SIGNING not in ekus:
        raise OCSPFailure(f"OCSP responder certificate {subject} from {url} is not authorised for OCSP signing "
                          "(no id-kp-OCSPSigning extended key usage)")
    if not delegated.not_valid_before_utc <= now <= delegated.not_valid_after_utc:
        raise OCSPFailure(f"OCSP responder certificate {subject} from {url} is not valid at {rfc3339(now)}")
    if not _signature_valid(response, delegated):
        raise OCSPFailure(f"OCSP response from {url} is not signed by its responder certificate {subject}")


def _names(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    """The response's responder id (name, or SHA-1 of the public key) is this certificate's."""
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    key_hash = x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest  # type: ignore[arg-type]
    return response.responder_key_hash == key_hash


def _signature_valid(response: ocsp.OCSPResponse, signer: x509.Certificate) -> bool:
    key, signature, data = signer.public_key(), response.signature, response.tbs_response_bytes
    algorithm = response.signature_hash_algorithm
    try:
        if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            key.verify(signature, data)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def issuer_id(issuer: x509.Certificate) -> str:
    """The issuer's subject and key: two CAs with one name but different keys are different issuers."""
    spki = issuer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(issuer.subject.public_bytes() + b"\x00" + spki).hexdigest()


def _expires_at(_key: object, answer: OCSPAnswer, now: float) -> float:
    return answer.next_update.timestamp() if answer.next_update is not None else now
