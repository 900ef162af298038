"""Why a TLS handshake on the provider port was refused, in words an operator can act on.

Gatekeeper with the wrong client certificate looks, from Gatekeeper's side, like a provider that does not
answer; the provider's log is the only place that says which side is wrong. Each refusal kind is a `warning` at
most once a minute (a misconfigured Gatekeeper retries constantly); peers that merely hang up (probes, port
scanners, load balancer checks) stay at `debug`. The chart's value (mtls.*) is named next to the config key.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

from provider.logs import RateLimited

log = logging.getLogger("sigwarden.tls")
refusals = RateLimited(log)


@dataclass(frozen=True)
class Refusal:
    reason: str  # a stable key: the rate limit's and a log pipeline's
    words: str


CLIENT_CERT_MISSING = Refusal(
    "client_certificate_missing",
    "the client presented no certificate, and server.tls.clientCA (chart: mtls.clientCA) requires one: Gatekeeper "
    "presents its webhook certificate when it calls a provider; any other caller needs a client certificate too")
CLIENT_CA_UNKNOWN = Refusal(
    "client_certificate_untrusted",
    "Gatekeeper's client certificate is signed by a CA this provider does not trust: check server.tls.clientCA "
    "(chart: mtls.clientCA) holds the CA that signs Gatekeeper's webhook certificate")
CLIENT_CERT_EXPIRED = Refusal(
    "client_certificate_expired",
    "Gatekeeper's client certificate has expired (or is not valid yet): renew it, and check the clocks")
SERVER_CA_UNKNOWN = Refusal(
    "server_certificate_untrusted",
    "the client does not trust this provider's certificate: the Provider object's spec.caBundle must hold the CA "
    "that signed server.tls.cert")
PLAIN_HTTP = Refusal(
    "plain_http",
    "the client spoke plain HTTP to the HTTPS port: use https:// (probes and /metrics are on server.metricsListen)")
TLS_VERSION = Refusal(
    "tls_version",
    "the client offered no TLS version or cipher this provider accepts (TLS 1.2 or later)")
CLIENT_NAME = Refusal(
    "client_name_not_allowed",
    "the client certificate is trusted but names none of server.tls.clientNames (chart: mtls.clientNames)")

_BY_OPENSSL_REASON = {
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": CLIENT_CERT_MISSING,
    "TLSV1_ALERT_UNKNOWN_CA": SERVER_CA_UNKNOWN,
    "SSLV3_ALERT_BAD_CERTIFICATE": SERVER_CA_UNKNOWN,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": SERVER_CA_UNKNOWN,
    "HTTP_REQUEST": PLAIN_HTTP,
    "HTTPS_PROXY_REQUEST": PLAIN_HTTP,
    "UNSUPPORTED_PROTOCOL": TLS_VERSION,
    "WRONG_VERSION_NUMBER": TLS_VERSION,
    "NO_SHARED_CIPHER": TLS_VERSION,
    "TLSV1_ALERT_PROTOCOL_VERSION": TLS_VERSION,
    "VERSION_TOO_LOW": TLS_VERSION,
}


def classify(exc: BaseException) -> Refusal | None:
    """The refusal an operator should hear about, or None for a peer that just went away."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = (exc.verify_message or "").lower()
        if "expired" in message or "not yet valid" in message:
            return CLIENT_CERT_EXPIRED
        return CLIENT_CA_UNKNOWN
    if isinstance(exc, ssl.SSLError):
        return _BY_OPENSSL_REASON.get(exc.reason or "")
    return None


def report_handshake_failure(peer: str, exc: BaseException) -> None:
    refusal = classify(exc)
    if refusal is None:
        log.debug("TLS handshake failed", extra={"peer": peer, "error": str(exc)})
        return
    extra = {"peer": peer, "error": str(exc)}
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        extra["verifyError"] = exc.verify_message
    refusals.warning(refusal.reason, f"TLS handshake refused: {refusal.words}", extra)


def report_client_name(peer: str, presented: list[str], allowed: tuple[str, ...]) -> None:
    refusals.warning(CLIENT_NAME.reason, f"request refused: {CLIENT_NAME.words}",
                     {"peer": peer, "presented": presented, "allowed": list(allowed)})
