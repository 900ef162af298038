"""OpenVEX statements: a signed `not_affected` statement takes a vulnerability out of the summaries.

A statement counts only for the products it names: the summary of an image applies it when one of its
products names that image's digest (an OCI purl `pkg:oci/…@sha256%3A…`, a reference or `@id` ending in
`@sha256:…`, the bare digest, or a `sha-256` hash), so a document attached to one image says nothing about
another. `status` other than `not_affected` changes nothing (the scanner's finding stands).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from provider.content.limits import MAX_VEX_STATEMENTS, ContentError, items, text

MAX_PRODUCTS = 64
# Where a digest may end inside a product identifier: the end, a purl's qualifiers or subpath.
_DIGEST_END = re.compile(r"(?:$|[?#/])")


@dataclass(frozen=True)
class Suppression:
    id: str
    author: str
    justification: str
    aliases: tuple[str, ...] = ()
    products: tuple[str, ...] = ()

    def names(self, digest: str) -> bool:
        """Whether one of the statement's products is the manifest `digest`."""
        return any(_names_digest(product, digest) for product in self.products)


def _names_digest(identifier: str, digest: str) -> bool:
    decoded = unquote(identifier)
    if decoded == digest or decoded == digest.split(":", 1)[1]:
        return True
    at = decoded.find("@" + digest)
    return at >= 0 and bool(_DIGEST_END.match(decoded, at + 1 + len(digest)))


def _products(statement: dict[str, object]) -> tuple[str, ...]:
    """Identifiers of the statement's products: `@id`, `identifiers` values and `hashes` (OpenVEX 0.2), or the
    bare strings of OpenVEX 0.0.1."""
    found: list[str] = []
    for product in items(statement.get("products"), "OpenVEX products", MAX_PRODUCTS):
        if isinstance(product, str):
            found.append(product)
        elif isinstance(product, dict):
            found.append(text(product.get("@id")))
            for group in ("identifiers", "hashes"):
                values = product.get(group)
                if isinstance(values, dict):
                    found.extend(text(v) for v in values.values())
    return tuple(p for p in found if p)


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
                                     text(statement.get("justification")), aliases, _products(statement)))
    return tuple(found)
