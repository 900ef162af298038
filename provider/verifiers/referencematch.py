"""Does a simple-signing payload's `docker-reference` fit the image? containers/image's identity rules.

The rules follow containers/image `signature/policy_reference_match.go` (the `signedIdentity` of a
`signedBy` requirement in policy.json); both sides are normalised as `reference.ParseNormalizedNamed`
does, and a reference that does not parse never matches.
"""

from __future__ import annotations

from provider.config import SignedIdentity
from provider.reference import InvalidReference, Reference, parse_reference


def _parse(text: str) -> Reference | None:
    try:
        return parse_reference(text, default_tag="")
    except InvalidReference:
        return None


def _name_only(ref: Reference) -> bool:
    return not ref.tag and not ref.digest


def names_repository_only(text: str) -> bool:
    """True for a valid reference with neither tag nor digest."""
    signed = _parse(text)
    return signed is not None and _name_only(signed)


def match_repo_digest_or_exact(intended: Reference, signed: Reference) -> bool:
    """containers/image `matchRepoDigestOrExactReferenceValues`: a tag needs that exact tag, a digest the repo."""
    if _name_only(signed):
        return False
    if intended.tag:  # a tag, or a tag and a digest: the signature must name exactly the same
        return str(signed) == str(intended)
    if intended.digest:  # the digest itself is checked against the payload's manifest digest
        return signed.name == intended.name
    return False


def _exact(intended: Reference | None, signed: Reference | None) -> bool:
    # prmMatchExact / prmExactReference: no default tags on either side.
    if intended is None or signed is None or _name_only(intended) or _name_only(signed):
        return False
    return str(signed) == str(intended)


def remap_matches_prefix(name: str, prefix: str) -> bool:
    """containers/image `prmRemapIdentity.refMatchesPrefix`: the prefix, then nothing or a `/`."""
    return name == prefix or (name.startswith(prefix) and len(name) > len(prefix) and name[len(prefix)] == "/")


def remap(intended: Reference, prefix: str, signed_prefix: str) -> Reference | None:
    """containers/image `remapReferencePrefix`: the reference with `prefix` replaced, None if that is invalid."""
    if not remap_matches_prefix(intended.name, prefix):
        return intended
    # ParseNamed (not normalised): the rewritten text must already be fully qualified.
    rewritten = str(intended).replace(prefix, signed_prefix, 1)
    parsed = _parse(rewritten)
    if parsed is None or str(parsed) != rewritten:
        return None
    return parsed


def identity_matches(rule: SignedIdentity, intended: Reference, signed_text: str) -> bool:
    """True when a payload naming `signed_text` may vouch for the image `intended` under `rule`."""
    if rule.type == "ignore":
        return True
    signed = _parse(signed_text)
    if signed is None:
        return False
    if rule.type == "matchRepoDigestOrExact":
        return match_repo_digest_or_exact(intended, signed)
    if rule.type == "matchExact":
        return _exact(intended, signed)
    if rule.type == "matchRepository":
        return signed.name == intended.name
    if rule.type == "exactReference":
        return _exact(_parse(rule.docker_reference), signed)
    if rule.type == "exactRepository":
        repository = _parse(rule.docker_repository)
        return repository is not None and signed.name == repository.name
    if rule.type == "remapIdentity":
        remapped = remap(intended, rule.prefix, rule.signed_prefix)
        return remapped is not None and match_repo_digest_or_exact(remapped, signed)
    return False  # an unknown rule never matches


def describe(rule: SignedIdentity) -> str:
    """The rule as a reason can name it."""
    if rule.type == "exactReference":
        return f"exactReference {rule.docker_reference}"
    if rule.type == "exactRepository":
        return f"exactRepository {rule.docker_repository}"
    if rule.type == "remapIdentity":
        return f"remapIdentity {rule.prefix} -> {rule.signed_prefix}"
    return rule.type
