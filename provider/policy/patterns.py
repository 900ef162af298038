"""Warnings for image patterns whose `*` reaches further than it looks, or that can never match.

A trailing `*` is a plain prefix on the normalised reference, so `registry.example*` also matches
`registry.example.evil.com/…` and `registry.example:5000/…`, and `registry.example/team*` matches
`registry.example/team-evil/…`. Such patterns are legal (a prefix is sometimes meant) but deserve a warning
wherever constraints or config are read: `sigwarden admit`, `audit`, `policy build` and `config check`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from provider.config import Config
from provider.reference import normalise_pattern, pattern_defect

# Constraint parameters that hold image patterns, in the shipped templates.
PATTERN_PARAMETERS = ("exemptImages",)


@dataclass(frozen=True)
class PatternWarning:
    """One risky pattern: where it was found, the pattern, and why it is risky."""

    where: str
    pattern: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: image pattern {self.pattern!r} {self.problem}"


def pattern_problem(pattern: object) -> str:
    """Why `pattern` can match more than it appears to; empty when its `*` stays inside its boundaries."""
    if not isinstance(pattern, str):
        return "is not a string and matches nothing"
    defect = pattern_defect(pattern)
    if defect:
        return f"can never match an image: {defect}"
    normalised = normalise_pattern(pattern)
    if normalised == "*":
        return ""
    if not normalised.endswith("*"):
        return ""
    prefix = normalised[:-1]
    if "/" not in prefix:
        return (f"can cross the registry host boundary: it matches every host and port that starts with "
                f"{prefix!r} (such as {prefix}-evil.example/…); write {prefix}/* to mean one registry")
    last = prefix.rsplit("/", 1)[1]
    if last == "" or ":" in last or "@" in last:
        return ""  # a whole path below a "/", or a tag or digest prefix of one repository
    return (f"can cross a repository path boundary: it also matches {prefix}-other/… ; write {prefix}/* for the "
            f"repositories below {prefix} (and {prefix} for that repository itself)")


def pattern_warnings(patterns: Iterable[object], where: str) -> list[PatternWarning]:
    """A warning for each pattern in `patterns` whose `*` can cross a host or path boundary."""
    warnings = []
    for pattern in patterns:
        problem = pattern_problem(pattern)
        if problem:
            warnings.append(PatternWarning(where, str(pattern), problem))
    return warnings


def constraint_pattern_warnings(constraints: Sequence[object]) -> list[PatternWarning]:
    """Warnings for the image patterns of constraints (anything with kind, name and parameters)."""
    warnings = []
    for constraint in constraints:
        parameters = getattr(constraint, "parameters", {}) or {}
        for parameter in PATTERN_PARAMETERS:
            patterns = parameters.get(parameter)
            if isinstance(patterns, list):
                where = f"{getattr(constraint, 'kind', '')} {getattr(constraint, 'name', '')} parameters.{parameter}"
                warnings.extend(pattern_warnings(patterns, where))
    return warnings


def config_pattern_warnings(config: Config) -> list[PatternWarning]:
    """Warnings for the config's authority scopes and store `match` patterns."""
    warnings = []
    for index, authority in enumerate(config.authorities):
        warnings.extend(pattern_warnings(authority.scopes, f"authorities[{index}] ({authority.name}).scopes"))
    for index, store in enumerate(config.stores):
        warnings.extend(pattern_warnings(store.match, f"stores[{index}].match"))
    warnings.extend(pattern_warnings(config.mutation.exempt_images, "mutation.exemptImages"))
    return warnings
