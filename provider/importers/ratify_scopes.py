"""Ratify's cosign trust-policy scopes, and what each one becomes in sigwarden.

Ratify (pkg/verifier/cosign/trustpolicies.go) applies exactly one trust policy per image: the policy with a
scope that equals the reference, or is a raw string prefix of it (a scope ending in `*`), else the `*` policy.
The reference it compares is Docker's normal form (`docker.io/library/` added, `:latest` when there is neither
tag nor digest, the tag dropped when a digest is present), so a scope can name a tag or a digest. sigwarden
decides per repository: a scope that stops inside the repository name means the same on both sides and becomes
an authority scope; a scope that reaches into the tag or digest cannot be said per repository and needs the
user (as does one that sigwarden would read differently); a scope that no reference can equal is never
selected and is dropped. The `*` policy becomes an unscoped authority that yields to the others (`yieldTo`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from provider.reference import normalise_pattern

WILDCARD = "*"
# Ratify's validScopeRegex: lowercase letters, digits and . - : @ /, with at most a trailing `*`.
_VALID_SCOPE = re.compile(r"^[a-z0-9.\-:@/]*\*?$")


@dataclass(frozen=True)
class ScopeTranslation:
    """One Ratify scope in sigwarden terms: `pattern` (an authority scope), or why there is none."""

    kind: str  # repository | never | inexact
    pattern: str = ""
    why: str = ""


def validate_scopes(policies: Sequence[tuple[str, Sequence[str]]]) -> str:
    """The message Ratify's validateScopes fails with for these (name, scopes) policies, or ""."""
    seen: list[str] = []
    global_seen = False
    for name, scopes in policies:
        if not scopes:
            return f"scope parameter is required for trust policy {name}"
        if len(scopes) > 1 and WILDCARD in scopes:
            return (f"global wildcard character * cannot be used with other scopes within the same trust policy "
                    f"{name}")
        if WILDCARD in scopes:
            if global_seen:
                return "global wildcard character * can only be used once"
            global_seen = True
            continue
        for scope in scopes:
            if scope == "":
                return f"scope value cannot be empty in trust policy {name}"
            if not _VALID_SCOPE.match(scope):
                return f"invalid scope {scope} for trust policy {name}"
            if scope in seen:
                return f"duplicate scope {scope} for trust policy {name}"
            for existing in seen:
                if _overlap(scope, existing):
                    return f"overlapping scopes {scope} and {existing} for trust policy {name}"
            seen.append(scope)
    return ""


def _overlap(scope: str, existing: str) -> bool:
    """Ratify's conflict rule: a wildcard scope's prefix is a prefix of the other scope (or its prefix)."""
    trimmed, trimmed_existing = scope.removesuffix(WILDCARD), existing.removesuffix(WILDCARD)
    if scope.endswith(WILDCARD) and existing.endswith(WILDCARD):
        shorter, longer = sorted((trimmed, trimmed_existing), key=len)
        return longer.startswith(shorter)
    if existing.endswith(WILDCARD):
        return scope.startswith(trimmed_existing)
    if scope.endswith(WILDCARD):
        return existing.startswith(trimmed)
    return False


def _host_like(component: str) -> bool:
    """Docker's rule for the first component of a reference: a registry host when it has `.` or `:` or is
    localhost (Ratify's scopes are lowercase, so the capital-letter case never arises)."""
    return "." in component or ":" in component or component == "localhost"


def translate(scope: str) -> ScopeTranslation:
    """What one (valid, non-`*`) Ratify scope becomes."""
    if not scope.endswith(WILDCARD):
        name, tag_or_digest = _split_name(scope)
        if not tag_or_digest or not _host_like(name.split("/", 1)[0]) or "/" not in name:
            return ScopeTranslation("never", why="Ratify compares it with references that always carry a "
                                                  "registry host and a tag or digest, so it never matches")
        return ScopeTranslation("inexact", pattern=name, why=f"it names the {tag_or_digest} of {name}")
    prefix = scope.removesuffix(WILDCARD)
    first, sep, rest = prefix.partition("/")
    if "@" in prefix or (sep and ":" in rest.rsplit("/", 1)[-1]):
        name = _split_name(prefix)[0]
        return ScopeTranslation("inexact", pattern=name, why=f"it selects by tag or digest within {name}")
    if sep and not _host_like(first):
        return ScopeTranslation("never", why=f"{first!r} is not a registry host, and every reference Ratify "
                                             "compares starts with one")
    if normalise_pattern(scope) != scope:
        return ScopeTranslation("inexact", pattern=scope, why="sigwarden reads this pattern differently (it "
                                                               f"means {normalise_pattern(scope)})")
    return ScopeTranslation("repository", pattern=scope)


def _split_name(text: str) -> tuple[str, str]:
    """`host/repo:tag` → (`host/repo`, `tag v1`); `host/repo@sha256:…` → (`host/repo`, `digest sha256:…`)."""
    if "@" in text:
        name, digest = text.split("@", 1)
        return name, f"digest {digest}"
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash and slash >= 0:
        return text[:colon], f"tag {text[colon + 1:]}"
    return text, ""
