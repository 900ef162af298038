"""Bounds on content summaries: the facts travel through Gatekeeper's cache and Redis."""

from __future__ import annotations

MAX_FINDINGS = 20_000  # findings read from one report; more is a per-report error
MAX_LISTED_VULNERABILITIES = 200  # ids listed in the facts (counts cover all of them)
MAX_ALIASES = 8
MAX_COMPONENTS_READ = 50_000
MAX_LISTED_COMPONENTS = 50
MAX_LICENSES = 200
MAX_STRING = 200
MAX_VEX_STATEMENTS = 1_000


class ContentError(ValueError):
    """A report or SBOM that cannot be summarised: the reason names the field or the bound."""


def text(value: object) -> str:
    """A string field for the facts, bounded; anything else is empty."""
    return value[:MAX_STRING] if isinstance(value, str) else ""


def items(value: object, what: str, limit: int) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ContentError(f"{what} is not a list")
    if len(value) > limit:
        raise ContentError(f"{what} has {len(value)} entries, over the limit of {limit}")
    return value
