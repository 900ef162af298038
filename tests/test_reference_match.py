"""containers/image's signed-identity rules, run against its own test tables (signature/policy_reference_match_test.go).

The tables are vendored as data (tests/vectors/containers-image/policy_reference_match_tables.json, see SOURCES);
each test names the upstream test function whose loop it repeats.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provider.config import SignedIdentity
from provider.reference import InvalidReference, Reference, parse_reference
from provider.verifiers.referencematch import identity_matches, remap, remap_matches_prefix
from tests.fuzz.strategies_signed import FUZZ
from tests.helpers import VECTORS

TABLES = json.loads((VECTORS / "containers-image/policy_reference_match_tables.json").read_text())
EXACT = TABLES["prmExactMatchTestTable"]
REPOSITORY = TABLES["prmRepositoryMatchTestTable"]


def parsed(text: str) -> Reference | None:
    """reference.ParseNormalizedNamed: no default tag; None where Go returns an error."""
    try:
        return parse_reference(text, default_tag="")
    except InvalidReference:
        return None


def image_and_sig(rule: SignedIdentity, image: str, signature: str, expected: bool, possibly_invalid: bool) -> None:
    """testImageAndSig / testPossiblyInvalidImageAndSig."""
    intended = parsed(image)
    if intended is None:
        assert possibly_invalid, image
        return
    assert identity_matches(rule, intended, signature) is expected, f"{image} vs. {signature}"


def symmetric(rows: list[list[Any]], keep: bool | None = None) -> list[tuple[str, str, bool]]:
    return [(a, b, r) for x, y, r in rows if keep is None or r is keep for a, b in ((x, y), (y, x))]


# containers/image signature/policy_reference_match_test.go, TestPRMMatchRepoDigestOrExactMatchesDockerReference
@pytest.mark.parametrize(("image", "signature", "expected"),
                         symmetric(EXACT, True) + symmetric(REPOSITORY, False))
def test_TestPRMMatchRepoDigestOrExactMatchesDockerReference_shared(image: str, signature: str, expected: bool) -> None:
    image_and_sig(SignedIdentity("matchRepoDigestOrExact"), image, signature, expected, possibly_invalid=True)


# containers/image signature/policy_reference_match_test.go, matchRepoDigestOrExactTestTable
@pytest.mark.parametrize(("image", "signature", "expected"),
                         [tuple(row) for row in TABLES["matchRepoDigestOrExactTestTable"]])
def test_TestPRMMatchRepoDigestOrExactMatchesDockerReference(image: str, signature: str, expected: bool) -> None:
    image_and_sig(SignedIdentity("matchRepoDigestOrExact"), image, signature, expected, possibly_invalid=False)


# containers/image signature/policy_reference_match_test.go, TestPRMMatchExactMatchesDockerReference
@pytest.mark.parametrize(("image", "signature", "expected"), symmetric(EXACT))
def test_TestPRMMatchExactMatchesDockerReference(image: str, signature: str, expected: bool) -> None:
    image_and_sig(SignedIdentity("matchExact"), image, signature, expected, possibly_invalid=True)


# containers/image signature/policy_reference_match_test.go, TestPRMMatchRepositoryMatchesDockerReference
@pytest.mark.parametrize(("image", "signature", "expected"), symmetric(REPOSITORY))
def test_TestPRMMatchRepositoryMatchesDockerReference(image: str, signature: str, expected: bool) -> None:
    image_and_sig(SignedIdentity("matchRepository"), image, signature, expected, possibly_invalid=True)


# containers/image signature/policy_reference_match_test.go, TestPRMExactReferenceMatchesDockerReference and
# TestPRMExactRepositoryMatchesDockerReference: the configured reference replaces the image's.
@pytest.mark.parametrize(("configured", "signature", "expected"), symmetric(EXACT))
def test_TestPRMExactReferenceMatchesDockerReference(configured: str, signature: str, expected: bool) -> None:
    any_image = parse_reference("unrelated.example/any:tag")
    assert identity_matches(SignedIdentity("exactReference", docker_reference=configured), any_image,
                            signature) is expected


@pytest.mark.parametrize(("configured", "signature", "expected"), symmetric(REPOSITORY))
def test_TestPRMExactRepositoryMatchesDockerReference(configured: str, signature: str, expected: bool) -> None:
    any_image = parse_reference("unrelated.example/any:tag")
    assert identity_matches(SignedIdentity("exactRepository", docker_repository=configured), any_image,
                            signature) is expected


# containers/image signature/policy_reference_match_test.go, TestPRMRemapIdentityRefMatchesPrefix
@pytest.mark.parametrize(("ref", "prefix", "expected"),
                         [tuple(r) for r in TABLES["TestPRMRemapIdentityRefMatchesPrefix"]])
def test_TestPRMRemapIdentityRefMatchesPrefix(ref: str, prefix: str, expected: bool) -> None:
    intended = parsed(ref)
    assert intended is not None
    assert remap_matches_prefix(intended.name, prefix) is expected


# containers/image signature/policy_reference_match_test.go, TestPRMRemapIdentityRemapReferencePrefix
@pytest.mark.parametrize(("prefix", "signed_prefix", "ref", "expected"),
                         [tuple(r) for r in TABLES["TestPRMRemapIdentityRemapReferencePrefix"]])
def test_TestPRMRemapIdentityRemapReferencePrefix(prefix: str, signed_prefix: str, ref: str, expected: str) -> None:
    intended = parsed(ref)
    assert intended is not None
    result = remap(intended, prefix, signed_prefix)
    if expected == "":
        assert result is None
    else:
        assert result is not None and str(result) == expected


# containers/image signature/policy_reference_match_test.go, TestPRMRemapIdentityMatchesDockerReference
@pytest.mark.parametrize(("prefix", "signed_prefix", "image", "signature", "expected"),
                         [tuple(r) for r in TABLES["TestPRMRemapIdentityMatchesDockerReference"]])
def test_TestPRMRemapIdentityMatchesDockerReference(prefix: str, signed_prefix: str, image: str, signature: str,
                                                    expected: bool) -> None:
    image_and_sig(SignedIdentity("remapIdentity", prefix=prefix, signed_prefix=signed_prefix), image, signature,
                  expected, possibly_invalid=False)


# containers/image TestPRMRemapIdentityMatchesDockerReference, prmRemapIdentityMRDOETestCase: with a prefix that
# never rewrites, remapIdentity decides as matchRepoDigestOrExact.
@pytest.mark.parametrize(("image", "signature", "expected"),
                         symmetric(EXACT, True) + symmetric(REPOSITORY, False)
                         + [tuple(row) for row in TABLES["matchRepoDigestOrExactTestTable"]])
def test_prmRemapIdentityMRDOETestCase(image: str, signature: str, expected: bool) -> None:
    rule = SignedIdentity("remapIdentity", prefix="never-causes-a-rewrite.example",
                          signed_prefix="never-causes-a-rewrite.example")
    image_and_sig(rule, image, signature, expected, possibly_invalid=True)


components = st.from_regex(r"[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,4})?", fullmatch=True)
tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}", fullmatch=True)


# The oracle for matchRepoDigestOrExact (containers/image's default): for an image named by tag, a signature
# verifies only for exactly that repository and tag; a bare repository or any other tag never does.
@FUZZ
@given(st.lists(components, min_size=1, max_size=3), tags, tags)
def test_matchRepoDigestOrExact_admits_a_tag_only_with_a_signature_for_that_tag(path: list[str], tag: str,
                                                                              other: str) -> None:
    rule = SignedIdentity()
    repository = "registry.example/" + "/".join(path)
    image = parse_reference(f"{repository}:{tag}")
    assert identity_matches(rule, image, f"{repository}:{tag}")
    assert not identity_matches(rule, image, repository)
    assert identity_matches(rule, image, f"{repository}:{other}") is (other == tag)
    assert not identity_matches(rule, image, f"{repository}x:{tag}")
