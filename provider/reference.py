"""Image reference grammar and normalisation, following the distribution reference implementation.

`alpine` becomes `docker.io/library/alpine:latest`; `localhost:5000/a/b:t@sha256:…` keeps its host, tag and
digest. Anything the grammar rejects raises InvalidReference with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPOSITORY_PREFIX = "library/"
NAME_TOTAL_LENGTH_MAX = 255

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_ANCHORED_DOMAIN = re.compile(rf"^{_DOMAIN}$")
_ANCHORED_REPOSITORY = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")

# Digest algorithms accepted, with the exact length of their lowercase hex encoding.
DIGEST_HEX_LENGTH = {"sha256": 64, "sha512": 128}


class InvalidReference(ValueError):
    """The string is not a valid image reference; the message says why."""


@dataclass(frozen=True)
class Reference:
    """A normalised image reference: registry host, repository path, optional tag and digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """`registry/repository`, the part scopes and store patterns match on."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_digest(self, digest: str, keep_tag: bool = True) -> Reference:
        return Reference(self.registry, self.repository, self.tag if keep_tag else None, digest)

    def pinned(self, digest: str) -> str:
        """`registry/repository@digest`, the canonical digest-pinned form."""
        return f"{self.name}@{digest}"


def validate_digest(digest: str) -> str:
    """Return `digest` if it is a supported, well-formed content digest, else raise InvalidReference."""
    algorithm, sep, encoded = digest.partition(":")
    if not sep:
        raise InvalidReference(f"digest {digest!r} has no algorithm prefix")
    if algorithm not in DIGEST_HEX_LENGTH:
        raise InvalidReference(f"unsupported digest algorithm {algorithm!r} (supported: sha256, sha512)")
    if len(encoded) != DIGEST_HEX_LENGTH[algorithm] or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise InvalidReference(
            f"{algorithm} digest must be {DIGEST_HEX_LENGTH[algorithm]} lowercase hex characters")
    return digest


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    # The distribution rule: the first component is a host only if it looks like one.
    if not sep or ("." not in first and ":" not in first and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPOSITORY_PREFIX + remainder
    return domain, remainder


@lru_cache(maxsize=8192)
def parse_reference(text: str, default_tag: str = "latest") -> Reference:
    """Parse and normalise an image reference; a reference with neither tag nor digest gets `default_tag`.

    Cached: admission traffic repeats the same few hundred references, and References are immutable.
    """
    if not isinstance(text, str) or not text:
        raise InvalidReference("reference is empty")
    if len(text) > 4096:
        raise InvalidReference("reference is longer than 4096 characters")
    if text != text.strip():
        raise InvalidReference("reference has leading or trailing white space")
    if _HEX64.match(text):
        raise InvalidReference("a 64-character hex string is an image ID, not a repository name")
    name_part = text.split("@", 1)[0]
    # Split off a tag: the last ':' that comes after the last '/'.
    colon = name_part.rfind(":")
    name_only = name_part[:colon] if colon > name_part.rfind("/") else name_part
    domain, remainder = _split_domain(name_only)
    if remainder.lower() != remainder:
        raise InvalidReference("repository name must be lowercase")
    match = _REFERENCE.match(text)
    if not match:
        raise InvalidReference(_explain(text, name_only, domain, remainder))
    if len(match.group("name")) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(f"repository name is longer than {NAME_TOTAL_LENGTH_MAX} characters")
    digest = match.group("digest")
    if digest:
        validate_digest(digest)
    tag = match.group("tag")
    if tag is None and digest is None:
        tag = default_tag
    return Reference(registry=domain, repository=remainder, tag=tag, digest=digest)


def _explain(text: str, name_only: str, domain: str, remainder: str) -> str:
    """A specific reason for a reference the grammar rejects."""
    if domain != DEFAULT_DOMAIN and not _ANCHORED_DOMAIN.match(domain):
        return f"invalid registry host {domain!r}"
    if not _ANCHORED_REPOSITORY.match(remainder):
        return (f"invalid repository name {remainder!r}: path components are lowercase letters and digits "
                "separated by '.', '_', '__' or '-'")
    after_name = text[len(name_only):]
    if after_name.startswith(":"):
        tag = after_name[1:].split("@", 1)[0]
        if not re.fullmatch(_TAG, tag):
            return f"invalid tag {tag!r}: up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'"
    if "@" in text:
        digest = text.split("@", 1)[1]
        try:
            validate_digest(digest)
        except InvalidReference as exc:
            return str(exc)
        return f"invalid digest {digest!r}"
    return "invalid reference format"
