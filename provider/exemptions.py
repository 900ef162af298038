"""`exemptImages`: which image references an exemption list covers.

The rule is the Rego library's (`pattern_matches` in policies/lib/images.rego), so the digest-pinning
mutation (`mutation.exemptImages`) leaves alone exactly the images the templates exempt. Patterns and
references are compared in the normalised form: `*` covers everything; a trailing `*` is a prefix; a
repository covers any tag or digest of it; a tag covers that tag reference only (never `repo:tag@sha256:…`,
which the runtime pulls by digest whatever the tag says); a digest covers that digest, with or without a tag.
"""

from __future__ import annotations

from collections.abc import Iterable

from provider.reference import Reference, normalise_pattern


def pattern_covers(reference: str, pattern: str) -> bool:
    """Whether a normalised `pattern` covers a normalised `reference`."""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return reference.startswith(pattern[:-1])
    if reference == pattern:
        return True
    if "@" in pattern:
        name, _, digest = pattern.partition("@")
        spelt, _, pulled = reference.partition("@")
        tagged = ":" in spelt.rsplit("/", 1)[-1]
        return pulled == digest and (spelt == name or (tagged and spelt.rsplit(":", 1)[0] == name))
    if ":" in pattern.rsplit("/", 1)[-1]:
        return False
    return reference.startswith((pattern + ":", pattern + "@"))


def exempt(reference: Reference, patterns: Iterable[str]) -> bool:
    """Whether any of the (unnormalised) `patterns` covers `reference`."""
    text = str(reference)
    return any(pattern_covers(text, normalise_pattern(pattern)) for pattern in patterns)
