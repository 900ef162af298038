"""OpenVEX statements: a signed `not_affected` statement takes a vulnerability out of the summaries.

Statements are attached to this image's digest and signed, so every product they name is read as this
image; `status` other than `not_affected` changes nothing (the scanner's finding stands).
"""

from __future__ import annotations

from dataclasses import dataclass

from provider.content.limits import MAX_VEX_STATEMENTS, ContentError, items, text


@dataclass(frozen=True)
class Suppression:
    id: str
    author: str
    justification: str
    aliases: tuple[str, ...] = ()


def from_openvex(document: object) -> tuple[Suppression, ...]:
    if not isinstance(document, dict) or not text(document.get("@context")).startswith("https://openvex.dev/ns"):
        raise ContentError("not an OpenVEX document (@context is not https://openvex.dev/ns…)")
    author = text(document.get("author"))
    found = []
    for statement in items(document.get("statements"), "OpenVEX statements", MAX_VEX_STATEMENTS):
        if not isinstance(statement, dict) or statement.get("status") != "not_affected":
            continue
        vulnerability = statement.get("vulnerability")
        if isinstance(vulnerability, dict):  # OpenVEX 0.2: {"@id"|"name", "aliases"}
            ident = text(vulnerability.get("name")) or text(vulnerability.get("@id"))
            aliases = tuple(text(a) for a in items(vulnerability.get("aliases"), "aliases", 16) if text(a))
        else:  # OpenVEX 0.0.1: a bare string
            ident, aliases = text(vulnerability), ()
        if ident:
            found.append(Suppression(ident, text(statement.get("author")) or author,
                                     text(statement.get("justification")), aliases))
    return tuple(found)
