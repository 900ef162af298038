"""Pod-wide budgets divided among worker processes, so a pod with several workers stays within its limits.

The config speaks for the pod: `verification.cache.maxBytes` is what the pod's facts caches may hold together,
`server.maxConnections` what the pod accepts, `concurrencyPerAddress` how hard the pod may press one registry.
Each worker gets its share, never less than a floor that keeps it useful.
"""

from __future__ import annotations

from dataclasses import replace

from provider.config.model import Config

MIN_CACHE_BYTES = 1024 * 1024
MIN_CONNECTIONS = 16


def worker_share(config: Config, workers: int) -> Config:
    """`config` with every pod-wide budget divided by `workers` (unchanged for one worker)."""
    if workers <= 1:
        return config
    cache = config.verification.cache
    verification = replace(
        config.verification,
        concurrency=_part(config.verification.concurrency, workers, 1),
        cache=replace(cache, max_bytes=_part(cache.max_bytes, workers, MIN_CACHE_BYTES),
                      max_entries=_part(cache.max_entries, workers, 1)))
    stores = tuple(replace(store,
                           concurrency_per_address=_part(store.concurrency_per_address, workers, 1),
                           concurrency_wildcard=_part(store.concurrency_wildcard, workers, 1))
                   for store in config.stores)
    server = replace(config.server, max_connections=_part(config.server.max_connections, workers, MIN_CONNECTIONS))
    return replace(config, verification=verification, stores=stores, server=server)


def _part(total: int, workers: int, floor: int) -> int:
    return max(floor, total // workers)
