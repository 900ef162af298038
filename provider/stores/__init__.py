"""Stores and the router that picks one per image by the `match` patterns of the config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from provider.capacity import Lane
from provider.config import Config, StoreConfig, pattern_matches
from provider.errors import ErrorCode, ItemError
from provider.metrics import Metrics
from provider.reference import Reference
from provider.stores.base import Store
from provider.stores.egress import split_host
from provider.stores.ocilayout import OCILayoutStore

if TYPE_CHECKING:
    from provider.stores.fetch import Outbound


def build_store(store: StoreConfig, config: Config, metrics: Metrics) -> Store:
    if store.type == "oci-layout":
        assert store.path is not None
        layout = OCILayoutStore(store.path, config.verification, single=store.single_layout)
        layout.signer_outbound = layout_egress(config)
        return layout
    from provider.stores.registry import RegistryStore, StoreCacheBytes  # imports requests only when needed

    registry_stores = sum(1 for s in config.stores if s.type == "registry")
    return RegistryStore(store, config.verification, metrics, StoreCacheBytes.of(config.verification, registry_stores))


def layout_egress(config: Config) -> Outbound:
    """For URLs an image from a directory names (CRLs, OCSP): no host trusted by name, and every network
    some registry store denies is denied."""
    from provider.stores.egress import EgressPolicy, parse_networks
    from provider.stores.fetch import Outbound

    denied = tuple(n for s in config.stores for n in parse_networks((*s.deny_networks, *s.wildcard_deny_networks)))
    return Outbound(EgressPolicy(deny_networks=denied))


@dataclass(frozen=True)
class StoreRouter:
    """The first store whose `match` pattern fits the normalised repository name wins (config order)."""

    routes: tuple[tuple[tuple[str, ...], Store], ...]

    @classmethod
    def from_config(cls, config: Config, metrics: Metrics) -> StoreRouter:
        return cls(tuple((s.match, build_store(s, config, metrics)) for s in config.stores))

    def close(self) -> None:
        for _, store in self.routes:
            close = getattr(store, "close", None)
            if close is not None:
                close()

    def credential_problems(self) -> list[str]:
        """`stores[i]: why its credentials last failed to refresh`, for the readiness detail."""
        problems = []
        for index, (_, store) in enumerate(self.routes):
            found = getattr(store, "credential_problems", None)
            problems.extend(f"stores[{index}]: {problem}" for problem in (found() if found else []))
        return problems

    def lane(self, reference: Reference) -> Lane:
        """Where a job for `reference` spends its time: its store, its registry host (no port), and whether
        the store reaches that host only through a wildcard."""
        host = split_host(reference.registry)[0]
        for index, (patterns, store) in enumerate(self.routes):
            if any(pattern_matches(p, reference.name) for p in patterns):
                names = getattr(store, "names", None)
                if names is None:  # a directory: no host to share
                    return Lane(index, "", wildcard=False)
                return Lane(index, host, wildcard=not names(reference.registry))
        return Lane(-1, "", wildcard=False)  # answered NOT_FOUND at once

    def select(self, reference: Reference) -> Store:
        for patterns, store in self.routes:
            if any(pattern_matches(p, reference.name) for p in patterns):
                return store
        raise ItemError(ErrorCode.NOT_FOUND, f"no store is configured for {reference.name}")
