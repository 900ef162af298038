"""Property tests for the reference grammar: total over hostile text, one value per image, stable pinning."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from provider.reference import InvalidReference, parse_reference

component = st.from_regex(r"[a-z0-9]{1,6}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,6}){0,2}", fullmatch=True)
hexdigest = st.from_regex(r"[a-f0-9]{64}", fullmatch=True)
# Text made of the characters references are built from, so the parser's deeper branches are reached.
reference_like = st.text(alphabet="abcz09AZ._-:/@[]", min_size=1, max_size=300)


@given(reference_like)
def test_reference_like_text_parses_to_a_fixed_point_or_raises_invalid_reference(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InvalidReference as exc:
        assert str(exc)
        return
    again = parse_reference(str(ref))
    assert again == ref and str(again) == str(ref)
    assert ref.tag is not None or ref.digest is not None
    assert ref.registry and ref.repository and ref.registry != "index.docker.io"


@given(component, st.integers(min_value=4097, max_value=9000))
def test_overlong_text_is_refused(name: str, length: int) -> None:
    text = ("registry.example/" + "/".join([name] * length))[:length]
    try:
        parse_reference(text)
    except InvalidReference:
        return
    raise AssertionError("a reference over 4096 characters was accepted")


@given(component, st.sampled_from(["", ":v1", ":latest"]))
def test_docker_hub_spellings_are_one_value(name: str, suffix: str) -> None:
    spellings = [name, f"library/{name}", f"docker.io/{name}", f"docker.io/library/{name}",
                 f"index.docker.io/{name}", f"index.docker.io/library/{name}"]
    values = {parse_reference(s + suffix) for s in spellings}
    assert len(values) == 1
    assert str(values.pop()).startswith(f"docker.io/library/{name}:")


@given(st.lists(component, min_size=1, max_size=3), hexdigest, st.booleans())
def test_pinning_keeps_the_name_and_sets_the_digest(path: list[str], hex_: str, keep_tag: bool) -> None:
    ref = parse_reference("registry.example/" + "/".join(path) + ":v1")
    digest = f"sha256:{hex_}"
    pinned = parse_reference(ref.pinned(digest))
    assert (pinned.registry, pinned.repository, pinned.digest, pinned.tag) == (
        ref.registry, ref.repository, digest, None)
    with_digest = parse_reference(str(ref.with_digest(digest, keep_tag=keep_tag)))
    assert with_digest.digest == digest and with_digest.tag == ("v1" if keep_tag else None)
