"""OCSP for notation chains, against a real responder on loopback whose answers cryptography's builder signs."""

from __future__ import annotations

import base64
import datetime
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from provider.devkit import notation
from provider.reference import parse_reference
from provider.stores.base import ResolvedImage
from provider.stores.egress import EgressPolicy
from provider.stores.fetch import Outbound
from provider.verifiers.notation import ocsp as ocsp_module
from provider.verifiers.notation.ocsp import OCSPFailure, read_response
from provider.verifiers.notation.revocation import RevocationChecker
from provider.verifiers.notation.verifier import NotationVerifier, SignatureBlob
from tests.helpers import drip_status_line, free_port, with_negative_serial
from tests.test_notation import IMAGE, CRLServer, authority, own_check, policy_with
from tests.test_revocation import check

SIGNER = "CN=Acme Release Signer,O=Acme,L=Seattle,ST=WA,C=US"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class Answer:
    """How the responder answers; every field is one way a real responder can go wrong."""

    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD
    key: PrivateKeyTypes | None = None  # signs the response; the issuer's key by default
    responder: x509.Certificate | None = None  # names the signer; the issuer by default
    certificates: list[x509.Certificate] = field(default_factory=list)
    this_update: datetime.timedelta = datetime.timedelta(minutes=-1)
    next_update: datetime.timedelta | None = datetime.timedelta(hours=1)
    serial_offset: int = 0
    by_key_hash: bool = False
    body: bytes | None = None  # sent as is instead of a response
    http_status: int = 200
    unsuccessful: ocsp.OCSPResponseStatus | None = None
    drip: bool = False  # the status line one byte every 0.2 s


class OCSPResponder:
    """A loopback OCSP responder for one signing identity: reads the request (GET or POST) and answers it."""

    def __init__(self) -> None:
        self.identity: notation.SigningIdentity | None = None
        self.answer = Answer()
        self.requests: list[tuple[str, ocsp.OCSPRequest]] = []
        self.port = free_port()
        responder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._answer("GET", base64.b64decode(unquote(self.path.rsplit("/", 1)[-1])))

            def do_POST(self) -> None:
                self._answer("POST", self.rfile.read(int(self.headers["Content-Length"])))

            def _answer(self, method: str, der: bytes) -> None:
                request = ocsp.load_der_ocsp_request(der)
                responder.requests.append((method, request))
                if responder.answer.drip:
                    drip_status_line(self.wfile)
                    return
                body = responder.respond(request)
                self.send_response(responder.answer.http_status)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ocsp"

    @property
    def hits(self) -> int:
        return len(self.requests)

    def signer(self, crl_url: str = "") -> notation.SigningIdentity:
        """A new identity whose leaf names this responder (and `crl_url`, when given)."""
        self.identity = notation.identity_with_intermediate("ec-256", crl_url=crl_url, ocsp_url=self.url)
        return self.identity

    def respond(self, request: ocsp.OCSPRequest) -> bytes:
        assert self.identity is not None
        answer, issuer = self.answer, self.identity.chain[1]
        if answer.body is not None:
            return answer.body
        if answer.unsuccessful is not None:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(answer.unsuccessful).public_bytes(Encoding.DER)
        now = _now()
        revoked = answer.status == ocsp.OCSPCertStatus.REVOKED
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            request.issuer_name_hash, request.issuer_key_hash, request.serial_number + answer.serial_offset,
            request.hash_algorithm, answer.status, now + answer.this_update,
            now + answer.next_update if answer.next_update is not None else None,
            now - datetime.timedelta(hours=2) if revoked else None, None)
        encoding = ocsp.OCSPResponderEncoding.HASH if answer.by_key_hash else ocsp.OCSPResponderEncoding.NAME
        builder = builder.responder_id(encoding, answer.responder or issuer)
        if answer.certificates:
            builder = builder.certificates(answer.certificates)
        key = answer.key or self.identity.intermediate_key
        return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)  # type: ignore[arg-type]



@pytest.fixture
def responder() -> Iterator[OCSPResponder]:
    server = OCSPResponder()
    yield server
    server.httpd.shutdown()


@pytest.fixture
def crl_server() -> Iterator[CRLServer]:
    server = CRLServer()
    yield server
    server.httpd.shutdown()


def reaching(*ports: int, ocsp_timeout: float = 2.0) -> RevocationChecker:
    """A checker whose fetches may reach the given loopback ports (named explicitly in the egress policy)."""
    policy = EgressPolicy(explicit=frozenset(f"127.0.0.1:{port}" for port in ports))
    return RevocationChecker(outbound=Outbound(policy), ocsp_timeout=ocsp_timeout)


def delegate(identity: notation.SigningIdentity, ekus: tuple[x509.ObjectIdentifier, ...],
             issued_by_issuer: bool = True) -> tuple[x509.Certificate, PrivateKeyTypes]:
    """A responder certificate for the signing CA: issued by it (or self-issued), with the given EKUs."""
    key = notation.new_key("ec-256")
    spec = notation.CertSpec("Acme OCSP Responder", ekus=ekus)
    assert identity.intermediate_key is not None
    if issued_by_issuer:
        return notation.certificate(spec, key, identity.intermediate_key, identity.chain[1]), key
    return notation.certificate(spec, key), key


def negative_delegate(identity: notation.SigningIdentity) -> tuple[x509.Certificate, PrivateKeyTypes]:
    """An OCSP-signing responder certificate the signing CA issued with a negative serial number, which Go's
    x509.ParseCertificate refuses (parser.go, since Go 1.23), so golang.org/x/crypto/ocsp ParseResponse fails."""
    cert, key = delegate(identity, (ExtendedKeyUsageOID.OCSP_SIGNING,))
    return with_negative_serial(cert, identity.intermediate_key), key


def impostor() -> tuple[x509.Certificate, PrivateKeyTypes]:
    """A CA with the signing CA's name but another key."""
    key = notation.new_key("ec-384")
    return notation.certificate(notation.CertSpec("Acme Signing CA", ca=True), key), key


def test_good_answer_passes_and_is_cached_until_next_update(responder: OCSPResponder) -> None:
    identity = responder.signer()
    checker = reaching(responder.port)
    assert checker.problem(identity.chain) == ""
    # Like notation: SHA-1 cert id, no nonce, a GET for a request this short.
    (method, request), = responder.requests
    assert method == "GET" and isinstance(request.hash_algorithm, hashes.SHA1)
    assert request.serial_number == identity.chain[0].serial_number
    assert list(request.extensions) == []
    assert checker.problem(identity.chain) == ""
    assert responder.hits == 1  # answered from the cache
    # Only the leaf names a responder; the intermediate has neither OCSP nor CRL and the root is never checked.
    assert all(not ocsp_module.responder_urls(cert) for cert in identity.chain[1:])


def test_revoked_answer_is_final_even_when_a_crl_would_say_good(responder: OCSPResponder,
                                                               crl_server: CRLServer) -> None:
    identity = responder.signer(crl_url=crl_server.url)
    crl_server.publish(identity, revoked_serials=[])
    responder.answer = Answer(status=ocsp.OCSPCertStatus.REVOKED)
    problem = reaching(responder.port, crl_server.port).problem(identity.chain)
    assert problem.startswith(f"certificate {SIGNER} was revoked at ")
    assert crl_server.hits == 0


def test_unknown_status_without_crl_is_unknown_and_not_cached(responder: OCSPResponder) -> None:
    identity = responder.signer()
    responder.answer = Answer(status=ocsp.OCSPCertStatus.UNKNOWN)
    checker = reaching(responder.port)
    assert checker.problem(identity.chain) == (f"revocation status of {SIGNER} is unknown: OCSP responder "
                                               f"{responder.url} does not know the certificate")
    responder.answer = Answer()
    assert checker.problem(identity.chain) == ""
    assert responder.hits == 2


def test_unknown_status_falls_back_to_the_crl(responder: OCSPResponder, crl_server: CRLServer) -> None:
    identity = responder.signer(crl_url=crl_server.url)
    responder.answer = Answer(status=ocsp.OCSPCertStatus.UNKNOWN)
    crl_server.publish(identity, revoked_serials=[identity.chain[0].serial_number])
    problem = reaching(responder.port, crl_server.port).problem(identity.chain)
    assert problem.startswith(f"certificate {SIGNER} was revoked at ")
    assert crl_server.hits == 1


def test_delegated_responder_with_ocsp_signing_is_accepted(responder: OCSPResponder) -> None:
    identity = responder.signer()
    cert, key = delegate(identity, (ExtendedKeyUsageOID.OCSP_SIGNING,))
    responder.answer = Answer(key=key, responder=cert, certificates=[cert], by_key_hash=True)
    assert reaching(responder.port).problem(identity.chain) == ""


@pytest.mark.parametrize(("answer", "why"), [
    pytest.param(lambda i: Answer(key=(d := impostor())[1], responder=d[0]),
                 "OCSP response from {url} is not signed by CN=Acme Signing CA,O=Acme,L=Seattle,ST=WA,C=US",
                 id="wrong-key"),
    pytest.param(lambda i: Answer(key=(d := delegate(i, (ExtendedKeyUsageOID.CODE_SIGNING,)))[1],
                                  responder=d[0], certificates=[d[0]]),
                 "OCSP responder certificate CN=Acme OCSP Responder,O=Acme,L=Seattle,ST=WA,C=US from {url} is not "
                 "authorised for OCSP signing (no id-kp-OCSPSigning extended key usage)", id="delegate-without-eku"),
    pytest.param(lambda i: Answer(key=(d := delegate(i, (ExtendedKeyUsageOID.OCSP_SIGNING,), False))[1],
                                  responder=d[0], certificates=[d[0]]),
                 "OCSP responder certificate CN=Acme OCSP Responder,O=Acme,L=Seattle,ST=WA,C=US from {url} is not "
                 "issued by CN=Acme Signing CA,O=Acme,L=Seattle,ST=WA,C=US", id="delegate-of-another-issuer"),
    pytest.param(lambda i: Answer(key=(d := negative_delegate(i))[1], responder=d[0], certificates=[d[0]]),
                 "OCSP response from {url} is malformed (serial number -", id="delegate-with-negative-serial"),
    pytest.param(lambda i: Answer(key=(d := delegate(i, (ExtendedKeyUsageOID.OCSP_SIGNING,)))[1], responder=d[0]),
                 "OCSP response from {url} is signed by neither CN=Acme Signing CA,O=Acme,L=Seattle,ST=WA,C=US nor a "
                 "responder certificate it includes", id="delegate-not-included"),
    pytest.param(lambda i: Answer(next_update=datetime.timedelta(minutes=-1), this_update=datetime.timedelta(hours=-1)),
                 "OCSP response from {url} is stale (nextUpdate ", id="stale"),
    pytest.param(lambda i: Answer(next_update=None), "OCSP response from {url} has no nextUpdate", id="no-next-update"),
    pytest.param(lambda i: Answer(this_update=datetime.timedelta(hours=1), next_update=datetime.timedelta(hours=2)),
                 "OCSP response from {url} is dated in the future (thisUpdate ", id="future"),
    pytest.param(lambda i: Answer(serial_offset=1),
                 "OCSP response from {url} is not about serial {serial:x} of CN=Acme Signing CA", id="other-serial"),
    pytest.param(lambda i: Answer(body=b"<html>hello</html>"),
                 "OCSP responder {url} sent a response that does not parse", id="garbage"),
    # Fetch failures are a category, never the remote's status or words (a port-scan oracle otherwise).
    pytest.param(lambda i: Answer(body=b"\x30" * (ocsp_module.MAX_OCSP_BYTES + 1)),
                 "OCSP responder {url}: revocation status unavailable", id="oversized"),
    pytest.param(lambda i: Answer(unsuccessful=ocsp.OCSPResponseStatus.TRY_LATER),
                 "OCSP responder {url} answered TRY_LATER", id="try-later"),
    pytest.param(lambda i: Answer(http_status=500), "OCSP responder {url}: revocation status unavailable",
                 id="http-500"),
])
def test_unusable_answers_leave_the_status_unknown(responder: OCSPResponder, answer: Any, why: str) -> None:
    identity = responder.signer()
    responder.answer = answer(identity)
    checker = reaching(responder.port)
    problem = checker.problem(identity.chain)
    expected = why.format(url=responder.url, serial=identity.chain[0].serial_number)
    assert problem.startswith(f"revocation status of {SIGNER} is unknown: {expected}"), problem
    assert "500" not in problem.replace(responder.url, "")
    # An unusable answer is not cached: the next verification asks again. A responder that could not be
    # fetched (an HTTP error, an oversized answer) is not asked again for UNREACHABLE_TTL seconds.
    assert checker.problem(identity.chain) == problem
    assert responder.hits == (1 if "unavailable" in why else 2)


def test_wrong_cert_id_hash_is_refused(responder: OCSPResponder) -> None:
    identity = responder.signer()
    # The response is about the right serial, but under another issuer's name hash.
    other = notation.identity_with_intermediate("ec-256")
    request = ocsp.OCSPRequestBuilder().add_certificate(other.chain[0], other.chain[1], hashes.SHA1()).build()
    now = _now()
    assert identity.intermediate_key is not None
    response = (ocsp.OCSPResponseBuilder().add_response_by_hash(
        request.issuer_name_hash, request.issuer_key_hash, identity.chain[0].serial_number, hashes.SHA1(),
        ocsp.OCSPCertStatus.GOOD, now, now + datetime.timedelta(hours=1), None, None)
        .responder_id(ocsp.OCSPResponderEncoding.NAME, identity.chain[1])
        .sign(identity.intermediate_key, hashes.SHA256()))  # type: ignore[arg-type]
    with pytest.raises(OCSPFailure, match="is not about serial"):
        read_response(response.public_bytes(Encoding.DER), identity.chain[0], identity.chain[1], "u", now)


def test_slow_responder_is_cut_at_the_deadline(responder: OCSPResponder) -> None:
    identity = responder.signer()
    responder.answer = Answer(drip=True)
    problem = reaching(responder.port, ocsp_timeout=0.5).problem(identity.chain)
    assert problem == f"revocation status of {SIGNER} is unknown: OCSP responder {responder.url}: " \
                      "revocation status unavailable"


def test_unreachable_responder_falls_back_to_a_crl(crl_server: CRLServer) -> None:
    closed = free_port()  # nothing listens there
    identity = notation.identity_with_intermediate("ec-256", crl_url=crl_server.url,
                                                   ocsp_url=f"http://127.0.0.1:{closed}/ocsp")
    checker = reaching(closed, crl_server.port)
    crl_server.publish(identity, revoked_serials=[])
    assert checker.problem(identity.chain) == ""
    crl_server.publish(identity, revoked_serials=[identity.chain[0].serial_number])
    assert reaching(closed, crl_server.port).problem(identity.chain).startswith(f"certificate {SIGNER} was revoked")
    # Both unavailable: unknown, with both reasons.
    crl_server.crl = None
    problem = reaching(closed, crl_server.port).problem(identity.chain)
    assert problem == (f"revocation status of {SIGNER} is unknown: OCSP responder http://127.0.0.1:{closed}/ocsp: "
                       f"revocation status unavailable; CRL {crl_server.url}: revocation status unavailable")


def test_unreachable_responder_without_crl_is_unknown() -> None:
    closed = free_port()
    identity = notation.identity_with_intermediate("ec-256", ocsp_url=f"http://127.0.0.1:{closed}/ocsp")
    problem = reaching(closed).problem(identity.chain)
    assert problem == (f"revocation status of {SIGNER} is unknown: OCSP responder http://127.0.0.1:{closed}/ocsp: "
                       "revocation status unavailable")


def test_responder_is_refused_by_the_default_egress_policy(responder: OCSPResponder) -> None:
    identity = responder.signer()
    problem = RevocationChecker().problem(identity.chain)
    assert problem.endswith(f"OCSP responder {responder.url}: revocation status unavailable")
    assert responder.hits == 0
    assert responder.hits == 0


def test_long_requests_go_as_post(responder: OCSPResponder, monkeypatch: pytest.MonkeyPatch) -> None:
    identity = responder.signer()
    monkeypatch.setattr(ocsp_module, "MAX_GET_CHARS", 0)
    assert reaching(responder.port).problem(identity.chain) == ""
    assert [method for method, _ in responder.requests] == ["POST"]


def test_revocation_level_still_decides(tmp_path: Path, responder: OCSPResponder) -> None:
    identity = responder.signer()
    envelope = notation.sign(IMAGE, identity)
    responder.answer = Answer(status=ocsp.OCSPCertStatus.REVOKED)
    verifier = NotationVerifier(reaching(responder.port))
    enforced = own_check(tmp_path, identity, envelope, "jws", verifier=verifier)
    assert enforced.verified is False and enforced.reason.startswith(f"certificate {SIGNER} was revoked at ")
    assert enforced.checks["revocation"] == "failed"
    logged = own_check(tmp_path, identity, envelope, "jws", level="permissive", verifier=verifier)
    assert logged.verified is True and logged.warnings[0].startswith(f"certificate {SIGNER} was revoked at ")
    assert logged.checks["revocation"] == "logged"
    hits = responder.hits
    (tmp_path / "root.pem").write_bytes(identity.root_pem)
    skipping = authority(tmp_path, {"ca:acme": [tmp_path / "root.pem"]},
                         policy_with(["ca:acme"], "strict", override={"revocation": "skip"}))
    image = ResolvedImage(parse_reference(f"registry.example/app@{IMAGE['digest']}"), IMAGE["digest"],
                          IMAGE["mediaType"], IMAGE["size"], b"")
    skipped = verifier.check(image, SignatureBlob("sha256:" + "0" * 64, "application/jose+json", envelope),
                             skipping.name, skipping.notation)
    assert skipped.verified is True and skipped.checks["revocation"] == "skipped"
    assert responder.hits == hits  # a skipped check asks nobody


def test_an_unknown_status_through_the_verifier(tmp_path: Path, responder: OCSPResponder) -> None:
    identity = responder.signer()
    responder.answer = Answer(status=ocsp.OCSPCertStatus.UNKNOWN)
    result = check(tmp_path, NotationVerifier(reaching(responder.port)), identity, "unknown")
    assert result.verified is False
    assert result.reason == (f"revocation status of {SIGNER} is unknown: OCSP responder {responder.url} "
                             "does not know the certificate")


# --- property: whatever bytes come back, the answer is a clear "unknown" reason ------------------------------

_IDENTITY = notation.identity_with_intermediate("ec-256", ocsp_url="http://ocsp.invalid/")


def _valid_response() -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate(_IDENTITY.chain[0], _IDENTITY.chain[1], hashes.SHA1()).build()
    now = _now()
    assert _IDENTITY.intermediate_key is not None
    return (ocsp.OCSPResponseBuilder().add_response_by_hash(
        request.issuer_name_hash, request.issuer_key_hash, request.serial_number, hashes.SHA1(),
        ocsp.OCSPCertStatus.GOOD, now - datetime.timedelta(minutes=1), now + datetime.timedelta(days=1), None, None)
        .responder_id(ocsp.OCSPResponderEncoding.NAME, _IDENTITY.chain[1])
        .sign(_IDENTITY.intermediate_key, hashes.SHA256()).public_bytes(Encoding.DER))  # type: ignore[arg-type]


_VALID = _valid_response()
PROPERTY = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])


def _refused(data: bytes) -> str:
    with pytest.raises(OCSPFailure) as caught:
        read_response(data, _IDENTITY.chain[0], _IDENTITY.chain[1], "http://ocsp.invalid/", _now())
    return str(caught.value)


def test_the_valid_response_is_good() -> None:
    answer = read_response(_VALID, _IDENTITY.chain[0], _IDENTITY.chain[1], "http://ocsp.invalid/", _now())
    assert answer.status == "good"


@PROPERTY
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_are_refused_with_a_reason(data: bytes) -> None:
    assert _refused(data).startswith(("OCSP responder http://ocsp.invalid/ ", "OCSP response from http://ocsp.invalid/"))


@PROPERTY
@given(st.integers(min_value=0, max_value=len(_VALID) - 1))
def test_truncated_responses_are_refused(length: int) -> None:
    assert "http://ocsp.invalid/" in _refused(_VALID[:length])


@PROPERTY
@given(st.integers(min_value=0, max_value=len(_VALID) - 1), st.integers(min_value=1, max_value=255))
@example(index=76, flip=15)  # the responder name's locality typed as a BIT STRING: cryptography raises TypeError
def test_altered_responses_never_raise_anything_else(index: int, flip: int) -> None:
    data = bytearray(_VALID)
    data[index] ^= flip
    try:
        answer = read_response(bytes(data), _IDENTITY.chain[0], _IDENTITY.chain[1], "http://ocsp.invalid/", _now())
    except OCSPFailure as exc:
        assert "http://ocsp.invalid/" in str(exc)
        return
    # A change the signature does not cover (the outer encoding) may still verify: then it says what was signed.
    assert answer.status == "good"


def with_responders(identity: notation.SigningIdentity, urls: list[str]) -> list[x509.Certificate]:
    """The identity's chain with its leaf re-issued to name several OCSP responders, in this order."""
    leaf, issuer = identity.chain[0], identity.chain[1]
    assert identity.intermediate_key is not None
    builder = (x509.CertificateBuilder().subject_name(leaf.subject).issuer_name(issuer.subject)
               .public_key(identity.key.public_key()).serial_number(x509.random_serial_number())  # type: ignore[arg-type]
               .not_valid_before(leaf.not_valid_before_utc).not_valid_after(leaf.not_valid_after_utc)
               .add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                   x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url))
                   for url in urls]), critical=False))
    return [builder.sign(identity.intermediate_key, hashes.SHA256()), *identity.chain[1:]]  # type: ignore[arg-type]


def test_the_first_responder_in_order_that_answers_decides(responder: OCSPResponder) -> None:
    """notation-core-go revocation/ocsp/ocsp.go certCheckStatus: the first responder in the certificate's
    order with a verified answer decides. Unlike it, the responders are asked side by side."""
    identity = responder.signer()
    closed = free_port()
    down = f"http://127.0.0.1:{closed}/ocsp"
    chain = with_responders(identity, [down, responder.url])
    checker = reaching(closed, responder.port)
    assert checker.problem(chain) == ""
    assert responder.hits == 1
    assert checker.problem(chain) == ""  # the second responder's answer is cached; the first is not asked again
    assert responder.hits == 1
    # A verified "unknown" from the first responder decides, whatever the next one says.
    other = OCSPResponder()
    try:
        other.identity, other.answer = identity, Answer(status=ocsp.OCSPCertStatus.UNKNOWN)
        chain = with_responders(identity, [other.url, responder.url])
        problem = reaching(other.port, responder.port).problem(chain)
        assert problem == f"revocation status of {SIGNER} is unknown: OCSP responder {other.url} does not know the " \
                          "certificate"
        assert other.hits == 1
    finally:
        other.httpd.shutdown()
    # All fail: every reason is given, in order.
    responder.answer = Answer(http_status=503)
    problem = reaching(closed, responder.port).problem(with_responders(identity, [down, responder.url]))
    assert problem == (f"revocation status of {SIGNER} is unknown: OCSP responder {down}: revocation status "
                       f"unavailable; OCSP responder {responder.url}: revocation status unavailable")
