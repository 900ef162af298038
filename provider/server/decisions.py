"""What one request decided, per image, for its log line: `kubectl logs | grep <image>` answers "why denied".

Bounded: the first MAX_LOGGED images are listed, the rest only counted, so a Pod with hundreds of images does
not make one line hundreds of kilobytes. Reason categories are a few stable words a log query can count on.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from provider.engine import Item

MAX_LOGGED = 16
# The opening words of the facts' `reason` (provider.facts.unverified_reason) and the category they mean.
_REASON = re.compile(rb'"reason":"(no configured authority covers|no signatures found|'
                     rb'[0-9]+ signature artifact\(s\) found, none in a format|no signature verified)')
_CATEGORIES = {b"no configured authority covers": "no_authority", b"no signatures found": "unsigned",
               b"no signature verified": "signature_rejected"}


def category(item: Item) -> str:
    """`verified`, an error's code (NOT_FOUND, INVALID_REFERENCE…), or why an image is not verified."""
    outcome = item.outcome
    if outcome != "unverified":
        return outcome
    found = _REASON.search(item.raw) if item.raw else None
    if found is None:
        return "unverified"
    return _CATEGORIES.get(found[1], "untrusted_format")


def decisions(items: Sequence[Item]) -> dict[str, Any]:
    """Log fields: `images` (reference → category, the first MAX_LOGGED), `imagesNotListed`, `reasons` (counts)."""
    categories = [category(item) for item in items]
    fields: dict[str, Any] = {
        "images": {item.key: found for item, found in zip(items[:MAX_LOGGED], categories, strict=False)},
        "reasons": dict(Counter(c for c in categories if c not in ("verified", "resolved"))),
    }
    if len(items) > MAX_LOGGED:
        fields["imagesNotListed"] = len(items) - MAX_LOGGED
    return fields
