"""Reading OCI/Docker manifests and indexes: shared by every store."""

from __future__ import annotations

import json
from typing import Any

from provider.errors import ErrorCode, ItemError
from provider.reference import InvalidReference, validate_digest
from provider.stores.base import Descriptor, Platform, SignatureArtifact


def parse_manifest(data: bytes, what: str, error: type[Exception] = ItemError) -> dict[str, Any]:
    """Parse manifest JSON; anything but a JSON object raises `error` (ItemError or ArtifactError)."""
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise error(ErrorCode.REGISTRY_UNAVAILABLE, f"{what} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise error(ErrorCode.REGISTRY_UNAVAILABLE, f"{what} is not a JSON object")
    return manifest


def descriptor_from_json(entry: Any) -> Descriptor | None:
    """A descriptor from its JSON form, or None when it is malformed (skipped, never trusted)."""
    if not isinstance(entry, dict):
        return None
    digest, size = entry.get("digest"), entry.get("size")
    if not isinstance(digest, str) or isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return None
    try:
        validate_digest(digest)
    except InvalidReference:
        return None
    annotations = entry.get("annotations") if isinstance(entry.get("annotations"), dict) else {}
    return Descriptor(media_type=str(entry.get("mediaType", "")), digest=digest, size=size,
                      artifact_type=str(entry.get("artifactType", "")),
                      annotations={str(k): str(v) for k, v in annotations.items()})


def platforms_of(manifest: dict[str, Any]) -> tuple[Platform, ...]:
    """The platform manifests of an index (empty for a single-platform manifest)."""
    platforms = []
    for entry in manifest.get("manifests") or []:
        descriptor = descriptor_from_json(entry)
        platform = entry.get("platform") if isinstance(entry, dict) else None
        if descriptor is None:
            continue
        if not isinstance(platform, dict):  # no platform: a candidate on every platform, so it is checked
            platforms.append(Platform(digest=descriptor.digest, os="", architecture="", specified=False))
            continue
        platforms.append(Platform(digest=descriptor.digest, os=str(platform.get("os", "")),
                                  architecture=str(platform.get("architecture", "")),
                                  variant=str(platform.get("variant", ""))))
    return tuple(platforms)


def cosign_tags(digest: str) -> dict[str, str]:
    """Tags under which signatures of `digest` may hang, and how each was found."""
    base = digest.replace(":", "-", 1)
    return {base: "referrers", f"{base}.sig": "cosign-tag", f"{base}.att": "cosign-attestation-tag"}


def referrers_from_index(index: dict[str, Any], seen: set[str]) -> list[SignatureArtifact]:
    """Descriptors of a referrers response (API or referrers tag) as artifacts, skipping ones already seen."""
    found = []
    for entry in index.get("manifests") or []:
        descriptor = descriptor_from_json(entry)
        if descriptor is not None and descriptor.digest not in seen:
            seen.add(descriptor.digest)
            found.append(SignatureArtifact(descriptor, "referrers"))
    return found
