"""The air-gapped store: OCI image layout directories, one per repository.

Image `registry.example/team/app:v1` is read from `<root>/registry.example/team/app/`, an OCI image layout
(`oci-layout`, `index.json` whose entries carry `org.opencontainers.image.ref.name` = tag, `blobs/<alg>/<hex>`).
With `singleLayout`, `<root>` is itself one
layout that serves every repository the store matches. Referrers are the manifests of the layout whose `subject`
is the image; cosign's `sha256-<hex>.sig` and `.att` tags are found by name like in a registry. Every blob read
is checked against its digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provider.config import VerificationConfig
from provider.digests import DigestMismatch, check_digest
from provider.errors import ErrorCode, ItemError
from provider.reference import InvalidReference, Reference, validate_digest
from provider.stores.base import (
    MANIFEST_MEDIA_TYPES,
    MAX_MANIFEST_BYTES,
    ArtifactError,
    Descriptor,
    ResolvedImage,
    SignatureArtifact,
)
from provider.stores.manifests import (
    cosign_tags,
    descriptor_from_json,
    parse_manifest,
    platforms_of,
    referrers_from_index,
)
from provider.stores.selection import discovered

if TYPE_CHECKING:
    from provider.stores.fetch import Outbound

REF_NAME = "org.opencontainers.image.ref.name"


class OCILayoutStore:
    """Reads images and their signatures from OCI image layout directories."""

    def __init__(self, root: Path, verification: VerificationConfig, single: bool = False) -> None:
        self.root = root
        # `root` is itself one layout (a release layout, `skopeo copy … oci:DIR:TAG`): every matched
        # repository is read from it, its tags are the ref names in its index.json.
        self.single = single
        self.max_signatures = verification.max_signatures
        self.max_blob_bytes = verification.max_blob_bytes
        # Set by the router: the egress for URLs the signed material names (see provider.stores.layout_egress).
        self.signer_outbound: Outbound | None = None

    # --- Store protocol ------------------------------------------------------------------------------

    def resolve(self, reference: Reference, deadline: float) -> ResolvedImage:
        layout = self._layout(reference)
        if reference.digest:
            descriptor = self._find(layout, lambda d, _tag: d.digest == reference.digest)
            if descriptor is None:
                descriptor = Descriptor(media_type="", digest=reference.digest, size=-1)
        else:
            descriptor = self._find(layout, lambda _d, tag: tag == reference.tag)
            if descriptor is None:
                raise ItemError(ErrorCode.NOT_FOUND, f"tag {reference.tag!r} not found in {layout}")
        try:
            data = self._read_blob(layout, descriptor, MAX_MANIFEST_BYTES)
        except ArtifactError as exc:
            raise ItemError(exc.code, f"manifest of {reference}: {exc}") from None
        manifest = parse_manifest(data, f"manifest of {reference}")
        media_type = manifest.get("mediaType") or descriptor.media_type
        if media_type not in MANIFEST_MEDIA_TYPES:
            raise ItemError(ErrorCode.NOT_FOUND, f"{descriptor.digest} is not an image manifest ({media_type!r})")
        return ResolvedImage(reference=reference, digest=descriptor.digest, media_type=media_type,
                             size=len(data), manifest=data, platforms=platforms_of(manifest))

    def discover(self, image: ResolvedImage, deadline: float) -> Sequence[SignatureArtifact]:
        layout = self._layout(image.reference)
        index = self._index(layout)
        found: list[SignatureArtifact] = []
        seen: set[str] = set()
        # Referrers: manifests in this layout whose subject is the image.
        for entry in index.get("manifests", []):
            descriptor = descriptor_from_json(entry)
            if descriptor is None or descriptor.digest in seen or descriptor.digest == image.digest:
                continue
            manifest = self._manifest_or_none(layout, descriptor)
            if manifest is not None and (manifest.get("subject") or {}).get("digest") == image.digest:
                seen.add(descriptor.digest)
                found.append(SignatureArtifact(descriptor, "referrers", manifest))
        # The referrers tag schema and cosign's tag scheme.
        tags = cosign_tags(image.digest)
        for entry in index.get("manifests", []):
            tag = (entry.get("annotations") or {}).get(REF_NAME)
            descriptor = descriptor_from_json(entry)
            if tag not in tags or descriptor is None or descriptor.digest in seen:
                continue
            manifest = self._manifest_or_none(layout, descriptor)
            if manifest is None:
                continue
            seen.add(descriptor.digest)
            if tags[tag] == "referrers":
                found.extend(referrers_from_index(manifest, seen))
            else:
                found.append(SignatureArtifact(descriptor, tags[tag], manifest))
        return discovered(found, self.max_signatures)

    def fetch_manifest(self, reference: Reference, descriptor: Descriptor, deadline: float) -> dict[str, Any]:
        data = self._read_blob(self._layout(reference), descriptor, MAX_MANIFEST_BYTES)
        return parse_manifest(data, descriptor.digest, error=ArtifactError)

    def fetch_blob(self, reference: Reference, descriptor: Descriptor, deadline: float) -> bytes:
        return self._read_blob(self._layout(reference), descriptor, self.max_blob_bytes)

    # --- helpers -------------------------------------------------------------------------------------

    def _layout(self, reference: Reference) -> Path:
        layout = self.root if self.single else self.root / reference.registry / reference.repository
        if not (layout / "index.json").exists():
            raise ItemError(ErrorCode.NOT_FOUND, f"no OCI layout for {reference.name} (looked in {layout})")
        return layout

    def _index(self, layout: Path) -> dict[str, Any]:
        path = layout / "index.json"
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_MANIFEST_BYTES + 1)
        except OSError as exc:
            raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, f"cannot read {path}: {exc.strerror}") from None
        if len(data) > MAX_MANIFEST_BYTES:
            raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, f"{path} is larger than {MAX_MANIFEST_BYTES} bytes")
        return parse_manifest(data, str(path))

    def _find(self, layout: Path, wanted: Any) -> Descriptor | None:
        for entry in self._index(layout).get("manifests", []):
            descriptor = descriptor_from_json(entry)
            if descriptor is not None and wanted(descriptor, (entry.get("annotations") or {}).get(REF_NAME)):
                return descriptor
        return None

    def _manifest_or_none(self, layout: Path, descriptor: Descriptor) -> dict[str, Any] | None:
        try:
            return parse_manifest(self._read_blob(layout, descriptor, MAX_MANIFEST_BYTES), descriptor.digest)
        except (ArtifactError, ItemError):
            return None

    def _read_blob(self, layout: Path, descriptor: Descriptor, limit: int) -> bytes:
        try:
            algorithm, encoded = validate_digest(descriptor.digest).split(":", 1)
        except InvalidReference as exc:
            raise ArtifactError(ErrorCode.REGISTRY_UNAVAILABLE, str(exc)) from None
        if descriptor.size > limit:
            raise ArtifactError(ErrorCode.REGISTRY_UNAVAILABLE,
                                f"{descriptor.digest} is {descriptor.size} bytes, over the {limit}-byte limit")
        path = layout / "blobs" / algorithm / encoded
        try:
            with path.open("rb") as handle:
                data = handle.read(limit + 1)
        except FileNotFoundError:
            raise ArtifactError(ErrorCode.NOT_FOUND, f"blob {descriptor.digest} not found in {layout}") from None
        except OSError as exc:
            raise ArtifactError(ErrorCode.REGISTRY_UNAVAILABLE, f"cannot read {path}: {exc.strerror}") from None
        if len(data) > limit:
            raise ArtifactError(ErrorCode.REGISTRY_UNAVAILABLE,
                                f"{descriptor.digest} is larger than the {limit}-byte limit")
        try:
            check_digest(data, descriptor.digest)
        except DigestMismatch as exc:
            raise ArtifactError(ErrorCode.REGISTRY_UNAVAILABLE, f"blob {descriptor.digest}: {exc}") from None
        if descriptor.size >= 0 and len(data) != descriptor.size:
            raise ArtifactError(ErrorCode.REGISTRY_UNAVAILABLE,
                                f"blob {descriptor.digest} is {len(data)} bytes, descriptor says {descriptor.size}")
        return data
