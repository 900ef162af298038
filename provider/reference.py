"""Image reference grammar and normalisation, following the distribution reference implementation.

`alpine` becomes `docker.io/library/alpine:latest`; `localhost:5000/a/b:t@sha256:…` keeps its host, tag and
digest. Beyond the grammar, every spelling of one registry becomes one value: the host is lowercased (DNS is
case-insensitive), the HTTPS default port 443 (on a name that still reads as a host) and leading zeros of a
port are dropped, and `index.docker.io` is `docker.io`. Scopes, store patterns and trust policy scopes are
matched only on this form, so an alias cannot reach another statement. Anything the grammar rejects raises
InvalidReference with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPOSITORY_PREFIX = "library/"
NAME_TOTAL_LENGTH_MAX = 255
REFERENCE_MAX_LENGTH = 4096  # a whole reference as sent, before parsing

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"  # ASCII only, as the distribution spec says
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_ANCHORED_DOMAIN = re.compile(rf"^{_DOMAIN}$")
_ANCHORED_REPOSITORY = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")

HTTPS_DEFAULT_PORT = 443

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

    # Computed once: parse_reference hands out the same Reference for a repeated key, and the warm request
    # path reads both for every key.
    @cached_property
    def name(self) -> str:
        """`registry/repository`, the part scopes and store patterns match on."""
        return f"{self.registry}/{self.repository}"

    @cached_property
    def _text(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def __str__(self) -> str:
        return self._text

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


def looks_like_host(component: str) -> bool:
    """The distribution rule: a first path component is a registry host only if it looks like one."""
    return "." in component or ":" in component or component == "localhost" or component.lower() != component


def normalise_host(host: str) -> str:
    """`REGISTRY.example:0443` → `registry.example`; `index.docker.io` → `docker.io`. Raises on a bad port.

    The default port is dropped only when the name alone still passes `looks_like_host` (distribution's
    splitDockerDomain rule): `myhost:443` stays `myhost:443` so the registry survives a re-parse.
    """
    host = host.lower()
    name, port = host, ""
    if host.startswith("["):
        end = host.find("]")
        name, port = host[:end + 1], host[end + 2:] if host[end + 1:end + 2] == ":" else ""
    elif ":" in host:
        name, port = host.split(":", 1)
    if port:
        if not port.isdigit() or not 0 < int(port) <= 65535:
            raise InvalidReference(f"invalid registry host {host!r}: port must be 1 to 65535")
        port = str(int(port))
        if int(port) == HTTPS_DEFAULT_PORT and looks_like_host(name):
            # Dropped only while the bare name still reads as a host: `host:443/x` without the port would
            # re-parse as the Docker Hub repository `host/x`.
            port = ""
    host = f"{name}:{port}" if port else name
    return DEFAULT_DOMAIN if host == LEGACY_DEFAULT_DOMAIN else host


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or not looks_like_host(first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if _is_docker_hub(domain) and "/" not in remainder:
        remainder = OFFICIAL_REPOSITORY_PREFIX + remainder
    return domain, remainder


def _is_docker_hub(host: str) -> bool:
    try:
        return normalise_host(host) == DEFAULT_DOMAIN
    except InvalidReference:
        return False


def normalise_pattern(pattern: str) -> str:
    """An image pattern (`scopes`, store `match`, `exemptImages`) in the normalised reference form.

    `*` alone stays. A pattern whose first component looks like a host gets that host normalised; without a
    host the pattern is on Docker Hub (`nginx` → `docker.io/library/nginx`, `acme/*` → `docker.io/acme/*`).
    A one-component prefix that names a host (`registry.example*`) stays a host prefix. `library/` is added
    to a one-component Docker Hub repository unless it starts with `*`: `docker.io/*` is all of Docker Hub.
    """
    if pattern == "*":
        return pattern
    first, sep, rest = pattern.partition("/")
    if not sep and pattern.endswith("*") and _names_a_host(first):
        return _host_part(first)
    if sep and looks_like_host(first):
        host = _host_part(first)
    else:
        host, rest = DEFAULT_DOMAIN, pattern
    if host == DEFAULT_DOMAIN and "/" not in rest and not rest.startswith("*"):
        rest = OFFICIAL_REPOSITORY_PREFIX + rest
    return f"{host}/{rest}"


def pattern_defect(pattern: str) -> str:
    """Why `pattern` can never match a normalised reference; empty when some reference can match it.

    References are normalised before any pattern is tried (lowercase host, no scheme, lowercase repository path,
    no white space, no `*`), so a pattern that breaks one of those rules is dead: an authority scoped by it never
    applies and a store never serves. Such a pattern is a mistake to report, never a pattern to keep.
    """
    if pattern == "*":
        return ""
    if any(ch.isspace() for ch in pattern):
        return "contains white space, which no image reference has"
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", pattern)
    if scheme:
        return (f"starts with {scheme[1]}://, which no image reference has: write it without the scheme "
                f"({pattern[len(scheme[0]):]})")
    normalised = normalise_pattern(pattern)
    if "*" in normalised[:-1]:
        head = normalised.split("*", 1)[0]
        below = head.rsplit("/", 1)[0] + "/" if "/" in head else ""
        advice = f", or the prefix {below}* if everything below {below} is meant" if below.count("/") > 1 else ""
        return ("has a '*' before its end: only a trailing '*' is a wildcard (a prefix), there is no mid-path "
                f"wildcard, and no reference contains '*', so it matches nothing; list the repositories{advice}")
    host, _, rest = normalised.partition("/")
    repository = rest.split("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:  # a tag (or tag prefix) of the last component
        repository = repository[:repository.rfind(":")]
    if repository != repository.lower():
        return (f"has upper case in the repository path {repository.rstrip('*/')!r}, and repository names are "
                f"lowercase: write {host}/{repository.lower()}{rest[len(repository):]}")
    if not normalised.endswith("*"):
        try:
            parse_reference(normalised)
        except InvalidReference as exc:
            return f"is not an image reference and so matches none: {exc}"
    return ""


def _names_a_host(component: str) -> bool:
    """`registry.example*`, `localhost:50*` or `[::1]*` name a host; `nginx:1.*` is a repository and tag."""
    name = component.rstrip("*")
    return name.startswith("[") or "." in name.split(":", 1)[0] or name.split(":", 1)[0] == "localhost"


def _host_part(text: str) -> str:
    """Normalise the host of a pattern; one with `*` inside is left to the pattern check to warn about."""
    if "*" in text:
        return text.lower()
    try:
        return normalise_host(text)
    except InvalidReference:
        return text.lower()


@lru_cache(maxsize=8192)
def parse_reference(text: str, default_tag: str = "latest") -> Reference:
    """Parse and normalise an image reference; a reference with neither tag nor digest gets `default_tag`.

    Cached: admission traffic repeats the same few hundred references, and References are immutable.
    """
    if not isinstance(text, str) or not text:
        raise InvalidReference("reference is empty")
    if len(text) > REFERENCE_MAX_LENGTH:
        raise InvalidReference(f"reference is longer than {REFERENCE_MAX_LENGTH} characters")
    if text != text.strip():
        raise InvalidReference("reference has leading or trailing white space")
    if _HEX64.match(text):
        raise InvalidReference("a 64-character hex string is an image ID, not a repository name")
    name_part = text.split("@", 1)[0]
    # Split off a tag: the last ':' that comes after the last '/'.
    colon = name_part.rfind(":")
    name_only = name_part[:colon] if colon > name_part.rfind("/") else name_part
    domain, remainder = _split_domain(name_only)
    if domain != DEFAULT_DOMAIN and "." not in domain and ":" not in domain and domain.lower() != "localhost":
        # A host only because of its capitals (`A/app`): lowercased, it would name a Docker Hub repository.
        raise InvalidReference(f"registry host {domain!r} is a host only because of its capital letters, and the "
                               "normalised (lowercase) reference would name a Docker Hub repository; write the "
                               "registry with its domain or port")
    if remainder.lower() != remainder:
        raise InvalidReference("repository name must be lowercase")
    match = _REFERENCE.match(text)
    # The grammar alone would take `[0]/0` as host `[0]`; the host rule above says it is a repository path,
    # so both parts are checked as split.
    split_ok = _ANCHORED_REPOSITORY.match(remainder) and (domain == DEFAULT_DOMAIN or _ANCHORED_DOMAIN.match(domain))
    if not match or not split_ok:
        raise InvalidReference(_explain(text, name_only, domain, remainder))
    if len(match.group("name")) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(f"repository name is longer than {NAME_TOTAL_LENGTH_MAX} characters")
    digest = match.group("digest")
    if digest:
        validate_digest(digest)
    tag = match.group("tag")
    if tag is None and digest is None:
        tag = default_tag
    return Reference(registry=normalise_host(domain), repository=remainder, tag=tag, digest=digest)


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
