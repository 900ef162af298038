"""The registry store: images and signatures from OCI distribution registries.

Digests are always computed from the manifest bytes received. A cached tag → digest mapping may be
revalidated with a HEAD (cheap), but only because the bytes behind it were hashed when first fetched.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache, TTLCache

from provider.config import StoreConfig, VerificationConfig
from provider.digests import DigestMismatch, check_digest, compute_digest
from provider.errors import ErrorCode, ItemError
from provider.metrics import Metrics
from provider.reference import Reference
from provider.stores.auth import CredentialStore, TokenCache
from provider.stores.base import (
    MANIFEST_MEDIA_TYPES,
    MAX_MANIFEST_BYTES,
    OCI_INDEX,
    ArtifactError,
    Descriptor,
    ResolvedImage,
    SignatureArtifact,
)
from provider.stores.cloud.providers import cloud_credentials
from provider.stores.egress import EgressPolicy, explicit_hosts, parse_networks, split_host
from provider.stores.fetch import ConcurrencyLimits, Outbound
from provider.stores.kubesecrets import KubernetesSecrets
from provider.stores.manifests import cosign_tags, parse_manifest, platforms_of, referrers_from_index
from provider.stores.registry_client import API_HOSTS, RegistryClient
from provider.stores.selection import DISCOVERY_FACTOR, discovered, is_signature

ACCEPT_MANIFESTS = ", ".join(sorted(MANIFEST_MEDIA_TYPES))
MAX_REFERRER_PAGES = 10
MIN_STORE_CACHE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class StoreCacheBytes:
    """A registry store's caches, carved out of `verification.cache.maxBytes` (already this worker's share) and
    split among the registry stores, so no count of stores or workers takes the pod past its budget."""

    tags: int
    verified: int
    tokens: int

    @classmethod
    def of(cls, verification: VerificationConfig, registry_stores: int) -> StoreCacheBytes:
        budget = verification.cache.max_bytes // max(1, registry_stores)
        return cls(tags=max(MIN_STORE_CACHE_BYTES, budget // 4), verified=max(MIN_STORE_CACHE_BYTES, budget // 2),
                   tokens=max(MIN_STORE_CACHE_BYTES, budget // 8))


class RegistryStore:
    """Resolves and discovers over the OCI distribution API (with the referrers-tag and cosign-tag fallbacks)."""

    def __init__(self, store: StoreConfig, verification: VerificationConfig, metrics: Metrics,
                 cache_bytes: StoreCacheBytes | None = None) -> None:
        self.cache_bytes = cache_bytes = cache_bytes or StoreCacheBytes.of(verification, 1)
        outbound = outbound_for(store, metrics, verification)
        cloud = cloud_credentials(store, outbound, metrics)
        self.cloud_transport = cloud[1] if cloud else None
        self.secrets = (KubernetesSecrets(store.auth.kube_docker_configs, outbound, metrics)
                        if store.auth.kube_docker_configs else None)
        credentials = CredentialStore(store.auth, cloud[0] if cloud else None, cloud[2] if cloud else frozenset(),
                                      self.secrets)
        self.client = RegistryClient(credentials, store.insecure, outbound, TokenCache(cache_bytes.tokens))
        # URLs that signed material names (CRLs, OCSP responders) go through this store's networks, its
        # concurrency limits and no host trusted by name.
        self.signer_outbound = outbound.with_policy(outbound.policy.for_signer_urls())
        self.max_signatures = verification.max_signatures
        self.max_blob_bytes = verification.max_blob_bytes
        # tag reference → (digest, manifest bytes that hashed to it), revalidated with a HEAD before reuse;
        # bounded in bytes (manifests can be MiBs) and never outliving the facts TTL.
        self._tags: TTLCache[str, tuple[str, bytes]] = TTLCache(cache_bytes.tags, verification.cache.ttl,
                                                                getsizeof=_tag_entry_size)
        # Content that passed its digest check, by (repository, digest): immutable, so safe to reuse. Several
        # verifiers may read the same referrer manifest or payload blob for one image; it is fetched once.
        self._verified: LRUCache[tuple[str, str], bytes] = LRUCache(cache_bytes.verified, getsizeof=len)
        # Whether a host's registry has the referrers API, as it last answered; asked again after the TTL.
        self._referrers_api: TTLCache[str, bool] = TTLCache(1024, verification.cache.ttl)
        self._lock = threading.Lock()
        # Discovery asks several tags per image at once; its own pool, so it never waits on the engine's.
        self._pool = ThreadPoolExecutor(max_workers=2 * verification.concurrency, thread_name_prefix="sigwarden-fetch")

    def close(self) -> None:
        """Release the fetch threads and pooled connections (the engine is being replaced)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
        self.signer_outbound.close()
        if self.cloud_transport is not None:
            self.cloud_transport.close()
        if self.secrets is not None:
            self.secrets.close()

    def credential_problems(self) -> list[str]:
        """Why this store's cloud or Secret credentials last failed to refresh (empty when they did not)."""
        problems = []
        cloud = self.client.credentials.cloud
        last = getattr(cloud, "last_error", "")
        if last:
            problems.append(last)
        if self.secrets is not None and self.secrets.last_error:
            problems.append(self.secrets.last_error)
        return problems

    def names(self, registry: str) -> bool:
        """Does this store name `registry` (host or host:port) itself, rather than reach it through `*`?"""
        host, port = split_host(registry)
        return self.client.outbound.policy.is_explicit(host, port or 443)

    # --- Store protocol ------------------------------------------------------------------------------

    def resolve(self, reference: Reference, deadline: float) -> ResolvedImage:
        if reference.digest:
            data = self._manifest_bytes(reference, reference.digest, deadline, error=ItemError)
            return self._resolved(reference, reference.digest, data)
        cached = self._cached_tag(reference, deadline)
        if cached is not None:
            return self._resolved(reference, *cached)
        response = self.client.get(reference.registry, reference.repository,
                                   f"{reference.repository}/manifests/{reference.tag}", deadline,
                                   MAX_MANIFEST_BYTES, accept=ACCEPT_MANIFESTS)
        digest = compute_digest(response.body)
        claimed = response.headers.get("Docker-Content-Digest", "")
        if claimed and claimed.startswith("sha256:") and claimed != digest:
            raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE,
                            f"registry {reference.registry} claims {claimed} for {reference} but the manifest "
                            f"bytes hash to {digest}")
        with self._lock:
            if _tag_entry_size((digest, response.body)) <= self._tags.maxsize // 8:
                self._tags[str(reference)] = (digest, response.body)
        return self._resolved(reference, digest, response.body)

    def discover(self, image: ResolvedImage, deadline: float) -> Sequence[SignatureArtifact]:
        """Referrers (API, else the referrers tag) and cosign's tags, asked in parallel."""
        reference = image.reference
        tags = cosign_tags(image.digest)
        with self._lock:
            has_api = self._referrers_api.get(reference.registry)  # None: not known yet
        # While it is not known whether the registry has the API, the referrers tag is asked beside it, so the
        # first images of a registry without one wait no extra round trip; its answer counts only then.
        pending = {tag: self._pool.submit(self._manifest_by_tag, reference, tag, deadline)
                   for tag, source in tags.items() if source != "referrers" or has_api is not True}
        seen: set[str] = set()
        from_api = None if has_api is False else self._referrers_from_api(image, deadline, seen)
        fallback = next(tag for tag, source in tags.items() if source == "referrers")
        if from_api is None and fallback not in pending:
            pending[fallback] = self._pool.submit(self._manifest_by_tag, reference, fallback, deadline)
        found = list(from_api or [])
        for tag, source in tags.items():
            if tag not in pending or (source == "referrers" and from_api is not None):
                continue
            manifest, digest, descriptor = pending[tag].result()
            if manifest is None or digest in seen:
                continue
            seen.add(digest)
            if source == "referrers":
                found.extend(referrers_from_index(manifest, seen))
            else:
                found.append(SignatureArtifact(descriptor, source, manifest))
        return discovered(found, self.max_signatures)

    def fetch_manifest(self, reference: Reference, descriptor: Descriptor, deadline: float) -> dict[str, Any]:
        data = self._manifest_bytes(reference, descriptor.digest, deadline, error=ArtifactError)
        return parse_manifest(data, descriptor.digest, error=ArtifactError)

    def fetch_blob(self, reference: Reference, descriptor: Descriptor, deadline: float) -> bytes:
        if descriptor.size > self.max_blob_bytes:
            raise ArtifactError(ErrorCode.REGISTRY_UNAVAILABLE, f"blob {descriptor.digest} is {descriptor.size} "
                                                                f"bytes, over the {self.max_blob_bytes}-byte limit")
        cached = self._cached(reference, descriptor.digest)
        if cached is not None:
            return cached
        try:
            response = self.client.get(reference.registry, reference.repository,
                                       f"{reference.repository}/blobs/{descriptor.digest}", deadline,
                                       self.max_blob_bytes)
            check_digest(response.body, descriptor.digest)
        except ItemError as exc:
            raise ArtifactError(exc.code, exc.message) from None
        except DigestMismatch as exc:
            raise ArtifactError(ErrorCode.REGISTRY_UNAVAILABLE, f"blob {descriptor.digest}: {exc}") from None
        return self._remember(reference, descriptor.digest, response.body)

    # --- helpers -------------------------------------------------------------------------------------

    def _resolved(self, reference: Reference, digest: str, data: bytes) -> ResolvedImage:
        manifest = parse_manifest(data, f"manifest of {reference}")
        media_type = str(manifest.get("mediaType", ""))
        if media_type not in MANIFEST_MEDIA_TYPES:
            # Old OCI manifests may omit mediaType; an index is recognisable by its manifests list.
            media_type = OCI_INDEX if "manifests" in manifest else "application/vnd.oci.image.manifest.v1+json"
        return ResolvedImage(reference=reference, digest=digest, media_type=media_type, size=len(data),
                             manifest=data, platforms=platforms_of(manifest))

    def _cached_tag(self, reference: Reference, deadline: float) -> tuple[str, bytes] | None:
        """Revalidate a cached tag with HEAD: same digest → reuse the bytes we hashed ourselves."""
        with self._lock:
            cached = self._tags.get(str(reference))
        if cached is None:
            return None
        try:
            head = self.client.get(reference.registry, reference.repository,
                                   f"{reference.repository}/manifests/{reference.tag}", deadline, 0,
                                   accept=ACCEPT_MANIFESTS, method="HEAD")
        except ItemError:
            return None  # fall back to a full GET, which reports errors properly
        return cached if head.headers.get("Docker-Content-Digest", "") == cached[0] else None

    def _cached(self, reference: Reference, digest: str) -> bytes | None:
        with self._lock:
            return self._verified.get((reference.name, digest))

    def _remember(self, reference: Reference, digest: str, data: bytes) -> bytes:
        if len(data) <= self._verified.maxsize // 8:
            with self._lock:
                self._verified[(reference.name, digest)] = data
        return data

    def _manifest_bytes(self, reference: Reference, digest: str, deadline: float,
                        error: type[Exception]) -> bytes:
        cached = self._cached(reference, digest)
        if cached is not None:
            return cached
        try:
            response = self.client.get(reference.registry, reference.repository,
                                       f"{reference.repository}/manifests/{digest}", deadline, MAX_MANIFEST_BYTES,
                                       accept=ACCEPT_MANIFESTS)
        except ItemError as exc:
            if error is ItemError:
                raise
            raise ArtifactError(exc.code, exc.message) from None
        try:
            check_digest(response.body, digest)
        except DigestMismatch as exc:
            raise error(ErrorCode.REGISTRY_UNAVAILABLE,
                        f"registry {reference.registry} served a manifest for {digest} that {exc}") from None
        return self._remember(reference, digest, response.body)

    def _referrers_from_api(self, image: ResolvedImage, deadline: float,
                            seen: set[str]) -> list[SignatureArtifact] | None:
        """Artifacts from the OCI 1.1 referrers API, or None when the registry has no such API."""
        reference = image.reference
        path = f"{reference.repository}/referrers/{image.digest}"
        found: list[SignatureArtifact] = []
        for _ in range(MAX_REFERRER_PAGES):
            response = self.client.get(reference.registry, reference.repository, path, deadline,
                                       MAX_MANIFEST_BYTES, accept=OCI_INDEX, ok=(200, 400, 404, 405))
            if response.status != 200:
                if not found:
                    with self._lock:
                        self._referrers_api[reference.registry] = False
                return found or None
            with self._lock:
                self._referrers_api[reference.registry] = True
            index = parse_manifest(response.body, f"referrers of {image.digest}")
            found.extend(referrers_from_index(index, seen))
            next_path = _next_link(response.headers.get("Link", ""))
            # Only signature artifacts count towards how far to page (SBOMs and scan reports do not).
            if not next_path or sum(map(is_signature, found)) >= self.max_signatures * DISCOVERY_FACTOR:
                break
            path = next_path
        return found

    def _manifest_by_tag(self, reference: Reference, tag: str,
                         deadline: float) -> tuple[dict[str, Any] | None, str, Descriptor]:
        response = self.client.get(reference.registry, reference.repository,
                                   f"{reference.repository}/manifests/{tag}", deadline, MAX_MANIFEST_BYTES,
                                   accept=ACCEPT_MANIFESTS, ok=(200, 404))
        digest = compute_digest(response.body)
        descriptor = Descriptor(media_type="", digest=digest, size=len(response.body))
        if response.status == 404:
            return None, digest, descriptor
        manifest = parse_manifest(response.body, f"{reference.name}:{tag}")
        return manifest, digest, Descriptor(str(manifest.get("mediaType", "")), digest, len(response.body),
                                            str(manifest.get("artifactType", "")))


def outbound_for(store: StoreConfig, metrics: Metrics, verification: VerificationConfig) -> Outbound:
    """The egress policy and concurrency limits a registry store's config asks for."""
    policy = EgressPolicy(explicit=explicit_hosts(store.match, store.insecure, API_HOSTS),
                          allow_networks=parse_networks(store.allow_networks),
                          deny_networks=parse_networks(store.deny_networks),
                          wildcard_deny_networks=parse_networks(store.wildcard_deny_networks))
    limits = ConcurrencyLimits(store.concurrency_per_address, store.concurrency_wildcard)
    return Outbound(policy, limits, str(store.ca) if store.ca else None, metrics, verification.concurrency)


def _tag_entry_size(entry: tuple[str, bytes]) -> int:
    return len(entry[1]) + 200  # the digest string, tuple and key, rounded up


def _next_link(link: str) -> str:
    """The `/v2/…` path of a `Link: </v2/…>; rel="next"` header, without the `/v2/` prefix."""
    if 'rel="next"' not in link or "<" not in link:
        return ""
    target = link.split("<", 1)[1].split(">", 1)[0]
    marker = "/v2/"
    return target.split(marker, 1)[1] if marker in target else ""


