"""Text every report format can carry: what XML 1.0 and HTML forbid becomes a visible escape.

Image strings, Pod names and registry messages reach the reports verbatim, and any of them may hold a control
character or a lone surrogate (JSON's `\\ud800` decodes to one). XML 1.0 (section 2.2, production Char) allows
only tab, line feed, carriage return and U+0020 to U+10FFFF without surrogates, U+FFFE and U+FFFF; HTML also
counts the C1 controls, DEL and the noncharacters as parse errors, and a lone surrogate cannot be written as
UTF-8 at all. Each such character is written as `\\xNN`, `\\uNNNN` or `\\UNNNNNNNN`, so a reader sees that it
was there and every document stays well-formed.
"""

from __future__ import annotations

import re

_NONCHARACTERS = "".join(f"{chr(plane + 0xFFFE)}{chr(plane + 0xFFFF)}" for plane in range(0x10000, 0x110000,
                                                                                          0x10000))
FORBIDDEN = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
                       f"{_NONCHARACTERS}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """`text` with every character XML 1.0 or HTML forbids replaced by its visible escape."""
    return FORBIDDEN.sub(_escape, text)
