"""User-written regular expressions with Go's meaning (RE2 syntax, unanchored search, linear-time matching).

cosign and policy-controller compile `--certificate-identity-regexp`, `subjectRegExp` and the issuer regexps with
Go's `regexp` and test them with `MatchString`: a search anywhere in the text unless the pattern anchors itself.
The text is a certificate SAN, chosen by whoever asked for the certificate, so the engine must not backtrack.
Patterns are compiled once, when the config is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the error is raised to the caller, who names the field


class RegexpError(ValueError):
    """The pattern is not valid RE2 (Go regexp) syntax."""


@dataclass(frozen=True)
class GoRegexp:
    """A compiled RE2 pattern; `search` is Go's `regexp.MatchString`."""

    pattern: str
    compiled: Any = field(repr=False, compare=False)

    @classmethod
    def compile(cls, pattern: str) -> GoRegexp:
        try:
            return cls(pattern, re2.compile(pattern, _OPTIONS))
        except re2.error as exc:
            detail = exc.args[0] if exc.args else exc
            detail = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
            raise RegexpError(f"invalid regular expression (RE2 syntax, as Go and cosign read it): {detail}") \
                from None

    def search(self, text: str) -> bool:
        """True when the pattern matches anywhere in `text` (Go's MatchString)."""
        try:
            return self.compiled.search(text) is not None
        except UnicodeEncodeError:  # a lone surrogate from a lossy decode: no Go string equals it
            return False

    @property
    def open_ends(self) -> tuple[str, ...]:
        """The ends ("start", "end") the pattern does not pin (`^`/`\\A`, `$`/`\\z`); a syntactic look, for advice."""
        text = self.pattern
        starts = text.startswith(("^", "\\A"))
        ends = (text.endswith("$") and not text.endswith("\\$")) or text.endswith("\\z")
        return tuple(end for end, pinned in (("start", starts), ("end", ends)) if not pinned)
