"""What a store is: something that resolves image digests and finds signature artifacts next to them.

Stores do all fetching; verifiers ask a store for bytes and never talk HTTP themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from provider.errors import ErrorCode
from provider.reference import Reference

# Media types a store understands when resolving an image.
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST, *INDEX_MEDIA_TYPES})

MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int
    artifact_type: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Platform:
    """One manifest of an index; `specified` is false for an entry without a `platform` field, which a
    runtime may pick on any platform."""

    digest: str
    os: str
    architecture: str
    variant: str = ""
    specified: bool = True


@dataclass(frozen=True)
class ResolvedImage:
    """An image pinned to a digest computed from manifest bytes the store received."""

    reference: Reference
    digest: str
    media_type: str
    size: int
    manifest: bytes = field(repr=False)
    platforms: tuple[Platform, ...] = ()

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES


@dataclass(frozen=True)
class SignatureArtifact:
    """A manifest that carries signatures for an image, and how it was found.

    `source` is `referrers` (OCI 1.1 API or referrers tag), `cosign-tag` (`sha256-<hex>.sig`) or
    `cosign-attestation-tag` (`sha256-<hex>.att`). `manifest` is filled when discovery already read it;
    otherwise a verifier that wants it asks the store (`fetch_manifest`).
    """

    descriptor: Descriptor
    source: str
    manifest: Mapping[str, Any] | None = field(default=None, repr=False)


class Store(Protocol):
    """The plug-in point for where images live (a registry, a directory)."""

    def resolve(self, reference: Reference, deadline: float) -> ResolvedImage:
        """Pin `reference` to a digest computed from the manifest bytes; raise ItemError when impossible."""
        ...

    def discover(self, image: ResolvedImage, deadline: float) -> Sequence[SignatureArtifact]:
        """Signature artifacts attached to the image (see provider.stores.selection for which and how many)."""
        ...

    def fetch_manifest(self, reference: Reference, descriptor: Descriptor, deadline: float) -> Mapping[str, Any]:
        """A manifest by descriptor, checked against its digest; raises ArtifactError."""
        ...

    def fetch_blob(self, reference: Reference, descriptor: Descriptor, deadline: float) -> bytes:
        """A blob's bytes, checked against the descriptor's digest and a size cap."""
        ...


class ArtifactError(Exception):
    """Content could not be fetched or failed its checks (digest, size); `code` is the item error code."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        self.code = code
        super().__init__(message)
