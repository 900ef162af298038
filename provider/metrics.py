"""Prometheus metrics, kept in one registry per process so tests can build several apps side by side."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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
        self.registry_requests = Counter(
            "sigwarden_registry_requests_total", "HTTP requests to registries, by status code.",
            ["status"], registry=r)
        self.config_reloads = Counter(
            "sigwarden_config_reloads_total", "Config reload attempts, by result (success, failure).",
            ["result"], registry=r)
        self.config_loaded = Gauge(
            "sigwarden_config_last_reload_success", "1 when the last config load succeeded.", registry=r)
        self.connections = Gauge(
            "sigwarden_connections", "Open connections on the provider port, by phase (handshake, waiting, "
            "reading, busy).", ["phase"], registry=r)
        self.connections_closed = Counter(
            "sigwarden_connections_closed_total", "Connections closed, by reason (done, handshake_failed, "
            "handshake_timeout, idle_timeout, header_timeout, body_timeout, bad_request, evicted, refused).",
            ["reason"], registry=r)
        self.tls_reloads = Counter(
            "sigwarden_tls_reloads_total", "TLS context rebuilds after certificate files changed, by result.",
            ["result"], registry=r)
