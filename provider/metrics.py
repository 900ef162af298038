"""Prometheus metrics, kept in one registry per process so tests can build several apps side by side.

Under `serve` every worker process writes its counters, histograms and gauges to files in one directory
(prometheus_client's multiprocess mode) and the pod's side port adds them up. Each gauge says how: live
workers' values summed (connections in flight) or their minimum (config loaded). Expiry times are not
per-process state but a view of the config, which a reload may shrink; they are `ExpiryGauge`s that each
worker publishes whole with its status (provider.server.pod), never partial series left behind in a file.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from provider.config import Config

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


CERTIFICATE_EXPIRY = ("sigwarden_certificate_expiry_timestamp_seconds", "When the serving certificate or the "
                      "client CA expires (Unix time; the earliest certificate in the file).", ("kind",))
TRUST_EXPIRY = ("sigwarden_trust_certificate_expiry_timestamp_seconds", "When a CA, TSA or signing certificate, "
                "or an OpenPGP key, named by an authority expires (Unix time).", ("authority", "store", "subject"))


class ExpiryGauge(Collector):  # type: ignore[misc]
    """A labelled gauge kept in process memory whatever the metrics mode, replaced whole when the config is."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...]) -> None:
        self.name, self.documentation, self.label_names = name, documentation, labels
        self._series: dict[tuple[str, ...], float] = {}

    def set(self, labels: tuple[str, ...], value: float) -> None:
        self._series[labels] = value

    def clear(self) -> None:
        self._series = {}

    def series(self) -> list[tuple[list[str], float]]:
        """[labels, value] pairs, the form they take in a worker's status file."""
        return [(list(labels), value) for labels, value in self._series.items()]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield expiry_family(self.name, self.documentation, self.label_names, self.series())


def expiry_family(name: str, documentation: str, labels: tuple[str, ...],
                  series: Iterable[tuple[list[str], float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for label_values, value in series:
        family.add_metric(label_values, value)
    return family


def enable_multiprocess(directory: Path) -> None:
    """Make every metric created from now on in this process and its children write to `directory`.

    prometheus_client picks its value store from PROMETHEUS_MULTIPROC_DIR when first imported, which the CLI
    has done long before `serve` knows it will fork workers; setting both keeps the two in step.
    """
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.MultiProcessValue()


class Metrics:
    """Every metric sigwarden exports, named `sigwarden_*`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.request_seconds = Histogram(
            "sigwarden_request_duration_seconds", "Time to answer a provider request.",
            ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r)
        self.verifier_seconds = Histogram(
            "sigwarden_verifier_duration_seconds", "Time one verifier spent on one image.",
            ["verifier"], buckets=_LATENCY_BUCKETS, registry=r)
        self.items = Counter(
            "sigwarden_items_total", "Items answered, by endpoint and outcome (verified, unverified, "
            "resolved or an error code).", ["endpoint", "outcome"], registry=r)
        self.item_errors = Counter(
            "sigwarden_item_errors_total", "Item errors by code.", ["code"], registry=r)
        self.bad_requests = Counter(
            "sigwarden_bad_requests_total", "Requests refused with HTTP 400 or 403.", ["reason"], registry=r)
        self.cache_hits = Counter("sigwarden_cache_hits_total", "Answers served from the cache.",
                                  ["cache"], registry=r)
        self.cache_misses = Counter("sigwarden_cache_misses_total", "Answers that needed fresh work.",
                                    ["cache"], registry=r)
        self.shared_cache = Counter(
            "sigwarden_shared_cache_events_total", "Shared (Redis) cache events: hit, miss, rejected (bad MAC, "
            "expired or malformed: counted as a miss), stored, oversize, error (Redis failed: verified locally), "
            "skipped (Redis left alone after a failure), led (this process verified a cold image for all), "
            "waited (another replica's result arrived), wait_expired (verified locally after waiting).",
            ["event"], registry=r)
        self.registry_requests = Counter(
            "sigwarden_registry_requests_total", "HTTP requests to registries, by status code (or "
            "connection_error, tls_error, timeout, egress_refused, saturated).",
            ["status"], registry=r)
        self.cloud_credentials = Counter(
            "sigwarden_cloud_credentials_total", "Registry credentials asked of a cloud identity, by provider and "
            "result (issued, failed, refresh_failed).", ["provider", "result"], registry=r)
        self.trust_refreshes = Counter(
            "sigwarden_trust_refreshes_total", "Refreshes of trust material kept in cloud key stores (KMS keys, Key "
            "Vault certificates), by result (success, failure: the last good material is kept).", ["result"],
            registry=r)
        self.outbound_in_flight = Gauge(
            "sigwarden_outbound_requests_in_flight", "Outbound fetches (registries, token services, CRLs, "
            "lookaside) holding a thread right now.", registry=r, multiprocess_mode="livesum")
        self.config_reloads = Counter(
            "sigwarden_config_reloads_total", "Config reload attempts, by result (success, failure).",
            ["result"], registry=r)
        self.config_loaded = Gauge(
            "sigwarden_config_last_reload_success", "1 when the last config load succeeded (in every worker).",
            registry=r, multiprocess_mode="livemin")
        self.connections = Gauge(
            "sigwarden_connections", "Open connections on the provider port, by phase (handshake, waiting, "
            "reading, busy).", ["phase"], registry=r, multiprocess_mode="livesum")
        self.connections_closed = Counter(
            "sigwarden_connections_closed_total", "Connections closed, by reason (done, handshake_failed, "
            "handshake_timeout, idle_timeout, header_timeout, body_timeout, bad_request, evicted, refused).",
            ["reason"], registry=r)
        self.tls_reloads = Counter(
            "sigwarden_tls_reloads_total", "TLS context rebuilds after certificate files changed, by result.",
            ["result"], registry=r)
        self.verified_by_authority = Counter(
            "sigwarden_verified_items_total", "Verified items by the authority that vouched for them (an item "
            "vouched for by two authorities counts for both).", ["authority"], registry=r)
        self.workers = Gauge(
            "sigwarden_workers", "Worker processes serving the provider port.", registry=r,
            multiprocess_mode="livesum")
        self.cache_budget = Gauge(
            "sigwarden_cache_max_bytes", "Bytes the facts cache may hold (summed over workers: the pod's "
            "verification.cache.maxBytes).", registry=r, multiprocess_mode="livesum")
        self.certificate_expiry = ExpiryGauge(*CERTIFICATE_EXPIRY)
        self.trust_expiry = ExpiryGauge(*TRUST_EXPIRY)
        r.register(self.certificate_expiry)
        r.register(self.trust_expiry)

    def count_verified(self, vouched: Iterable[Iterable[str]]) -> None:
        """Count verified items by each authority that vouched for them (one iterable of names per item)."""
        # One labelled increment per authority and request, not per item.
        tally = collections.Counter(authority for authorities in vouched for authority in authorities)
        for authority, count in tally.items():
            self.verified_by_authority.labels(authority).inc(count)

    def observe_tls_files(self, cert: Path | None, client_ca: Path | None) -> None:
        """Record the expiry of the serving certificate and of the client CA (unreadable files are skipped)."""
        for kind, path in (("serving", cert), ("client-ca", client_ca)):
            if path is None:
                continue
            try:
                certificates = x509.load_pem_x509_certificates(path.read_bytes())
            except (OSError, ValueError):
                continue
            self.certificate_expiry.set((kind,), min(c.not_valid_after_utc for c in certificates).timestamp())

    def observe_trust_material(self, config: Config) -> None:
        """Replace the trust-material expiry series with those of `config`'s authorities."""
        self.trust_expiry.clear()
        for authority, store, subject, expires in _trust_expiries(config):
            self.trust_expiry.set((authority, store, subject), expires)


def _trust_expiries(config: Config) -> Iterator[tuple[str, str, str, float]]:
    """(authority, store, subject, expiry as Unix time) for every expiring item of trust material."""
    for authority in config.authorities:
        certificates: list[tuple[str, x509.Certificate]] = []
        cosign = authority.cosign
        if cosign is not None and cosign.keyless is not None:
            certificates += [("cosign.keyless", c) for c in cosign.keyless.roots + cosign.keyless.intermediates]
            certificates += [("cosign.keyless.trustedRoot", c) for ca in cosign.keyless.authorities
                             for c in (ca.root, *ca.intermediates)]
        if cosign is not None and cosign.pki is not None:
            certificates += [("cosign.pki", c) for c in cosign.pki.roots + cosign.pki.intermediates]
        if authority.notation is not None:
            certificates += [(f"notation.{store}", c) for store, certs in authority.notation.trust_stores.items()
                             for c in certs]
        for store, certificate in certificates:
            yield authority.name, store, certificate.subject.rfc4514_string(), \
                certificate.not_valid_after_utc.timestamp()
        # OpenPGP keys may carry an expiry too; PKIX public keys have none.
        for key in authority.attestation.keys if authority.attestation is not None else ():
            expiration = getattr(key.pgp, "expiration", None) if key.kind == "pgp" else None
            if expiration is not None:
                yield authority.name, "attestation.pgp", key.key_id, expiration.timestamp()
