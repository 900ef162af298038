"""`signedIdentity` of attestation authorities: containers/image policy.json's identity rules, checked at load."""

from __future__ import annotations

import re

from provider.config.model import SIGNED_IDENTITY_TYPES, SignedIdentity
from provider.config.reader import SCHEMA, Node
from provider.reference import InvalidReference, parse_reference


def signed_identity(node: Node) -> SignedIdentity:
    """`signedIdentity` as in containers/image policy.json; `dockerReference` is the older spelling."""
    if node.has("signedIdentity") and node.has("dockerReference"):
        raise node.error("dockerReference", "give signedIdentity or dockerReference, not both")
    if node.has("dockerReference"):
        legacy = node.string("dockerReference", choices=("ignore", "repository"))
        return SignedIdentity("ignore" if legacy == "ignore" else "matchRepository")
    if not node.has("signedIdentity"):
        return SignedIdentity()
    entry = node.child("signedIdentity", SCHEMA["authorities[].attestation.signedIdentity"])
    kind = entry.string("type", choices=SIGNED_IDENTITY_TYPES)
    needs = {"exactReference": ("dockerReference",), "exactRepository": ("dockerRepository",),
             "remapIdentity": ("prefix", "signedPrefix")}.get(kind, ())
    extra = sorted(k for k in ("dockerReference", "dockerRepository", "prefix", "signedPrefix")
                   if entry.has(k) and k not in needs)
    if extra:
        raise entry.error(extra[0], f"is not used by type {kind}")
    values = {k: entry.string(k) for k in needs}
    for key in ("dockerReference", "dockerRepository"):
        if key in values:
            _check_reference(entry, key, values[key], exact=key == "dockerReference")
    for key in ("prefix", "signedPrefix"):
        if key in values and not _REMAP_PREFIX.fullmatch(values[key]):
            raise entry.error(key, f"{values[key]!r} is not a host, host/namespace or host/repository "
                              "(containers/image remapIdentity)")
    return SignedIdentity(kind, values.get("dockerReference", ""), values.get("dockerRepository", ""),
                          values.get("prefix", ""), values.get("signedPrefix", ""))


# containers/image newPRMRemapIdentity: a prefix is a host, or a host with a repository path, never a tag.
_REMAP_PREFIX = re.compile(r"[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")


def _check_reference(node: Node, key: str, text: str, exact: bool) -> None:
    try:
        ref = parse_reference(text, default_tag="")
    except InvalidReference as exc:
        raise node.error(key, f"{text!r} is not an image reference: {exc}") from None
    if exact and not ref.tag and not ref.digest:
        raise node.error(key, f"{text!r} names no tag or digest (exactReference needs one)")
    if not exact and (ref.tag or ref.digest):
        raise node.error(key, f"{text!r} is a repository: give it without tag or digest")
