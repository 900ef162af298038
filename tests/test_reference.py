from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provider.config import pattern_matches
from provider.reference import InvalidReference, Reference, normalise_host, normalise_pattern, parse_reference

SHA = "sha256:" + "a" * 64


@pytest.mark.parametrize(("text", "expected"), [
    ("alpine", "docker.io/library/alpine:latest"),
    ("alpine:3.11", "docker.io/library/alpine:3.11"),
    ("library/alpine", "docker.io/library/alpine:latest"),
    ("docker.io/alpine", "docker.io/library/alpine:latest"),
    ("index.docker.io/library/alpine:1", "docker.io/library/alpine:1"),
    ("acme/app", "docker.io/acme/app:latest"),
    ("localhost/app", "localhost/app:latest"),
    ("localhost:5000/team/app:v1", "localhost:5000/team/app:v1"),
    ("127.0.0.1:5000/a/b/c/d:tag", "127.0.0.1:5000/a/b/c/d:tag"),
    ("[::1]:5000/app:v1", "[::1]:5000/app:v1"),
    ("ghcr.io/acme/app@" + SHA, "ghcr.io/acme/app@" + SHA),
    ("ghcr.io/acme/app:v1@" + SHA, "ghcr.io/acme/app:v1@" + SHA),
    ("registry.example/a__b/c-d/e.f:V_1.0-rc", "registry.example/a__b/c-d/e.f:V_1.0-rc"),
    ("Registry.Example/app", "registry.example/app:latest"),
    ("REGISTRY.example/prod/app", "registry.example/prod/app:latest"),
    ("registry.example:443/prod/app:v1", "registry.example/prod/app:v1"),
    ("registry.example:0443/prod/app", "registry.example/prod/app:latest"),
    ("registry.example:05000/prod/app", "registry.example:5000/prod/app:latest"),
    ("INDEX.DOCKER.IO/alpine", "docker.io/library/alpine:latest"),
    ("docker.io:443/alpine", "docker.io/library/alpine:latest"),
    ("[FE80::1]:443/app", "[fe80::1]/app:latest"),
    ("ghcr.io/acme/app@sha512:" + "b" * 128, "ghcr.io/acme/app@sha512:" + "b" * 128),
])
def test_normalises_like_the_reference_implementation(text: str, expected: str) -> None:
    assert str(parse_reference(text)) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty"),
    ("Alpine", "lowercase"),
    ("acme/App", "lowercase"),
    ("alpine:", "invalid tag"),
    ("alpine:-bad", "invalid tag"),
    ("A/0", "a host only because of its capital letters"),
    ("[0]/0", "invalid repository name"),  # `[0]` has no ':' so it is no host (found by hypothesis)
    ("alpine:\u00e9", "invalid tag"),  # `\w` would take any Unicode letter
    ("alpine:v\u0661", "invalid tag"),
    ("alpine:" + "a" * 129, "invalid tag"),
    ("alpine@sha256:abc", "64 lowercase hex"),
    ("alpine@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("alpine@sha256:" + "A" * 64, "64 lowercase hex"),
    ("a" * 64, "image ID"),
    ("acme//app", "invalid repository name"),
    ("acme/-app", "invalid repository name"),
    (" alpine", "white space"),
    ("-bad.example/app", "invalid registry host"),
    ("ex.com/" + "a" * 260, "longer than 255"),
    ("registry.example:70000/app", "port must be 1 to 65535"),
    ("registry.example:0/app", "port must be 1 to 65535"),
])
def test_rejects_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidReference, match=reason):
        parse_reference(text)


def test_parts_and_pinning() -> None:
    ref = parse_reference("localhost:5000/team/app:v1")
    assert ref == Reference("localhost:5000", "team/app", "v1", None)
    assert ref.name == "localhost:5000/team/app"
    assert ref.pinned(SHA) == "localhost:5000/team/app@" + SHA
    assert str(ref.with_digest(SHA)) == "localhost:5000/team/app:v1@" + SHA
    assert str(ref.with_digest(SHA, keep_tag=False)) == "localhost:5000/team/app@" + SHA


component = st.from_regex(r"[a-z0-9]{1,5}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,5}){0,2}", fullmatch=True)
host = st.from_regex(r"[a-zA-Z][a-zA-Z0-9-]{0,6}[a-zA-Z0-9]\.[a-zA-Z]{2,5}(?::(?:0?443|[1-9][0-9]{0,3}))?",
                     fullmatch=True)
tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
hexdigest = st.from_regex(r"[a-f0-9]{64}", fullmatch=True)


@given(host=host, path=st.lists(component, min_size=1, max_size=4), tag=st.none() | tag,
       digest=st.none() | hexdigest)
def test_grammar_round_trips(host: str, path: list[str], tag: str | None, digest: str | None) -> None:
    text = host + "/" + "/".join(path) + (f":{tag}" if tag else "") + (f"@sha256:{digest}" if digest else "")
    ref = parse_reference(text)
    assert ref.registry == normalise_host(host)
    assert ref.registry == ref.registry.lower() and not ref.registry.endswith(":443")
    assert ref.repository == "/".join(path)
    assert ref.digest == (f"sha256:{digest}" if digest else None)
    assert ref.tag == (tag if tag else (None if digest else "latest"))
    assert parse_reference(str(ref)) == ref  # normal form is a fixed point


@given(st.text(min_size=1, max_size=80))
def test_arbitrary_text_parses_or_raises_invalid_reference(text: str) -> None:
    try:
        ref = parse_reference(text)
    except InvalidReference as exc:
        assert str(exc)
    else:
        assert parse_reference(str(ref)) == ref


def test_every_spelling_of_one_image_is_one_value() -> None:
    spellings = ["registry.example/prod/app:v1", "REGISTRY.example/prod/app:v1", "registry.example:443/prod/app:v1",
                 "Registry.Example:0443/prod/app:v1"]
    assert len({parse_reference(s) for s in spellings}) == 1
    hub = ["alpine", "library/alpine", "docker.io/alpine", "index.docker.io/library/alpine", "DOCKER.IO/alpine",
           "docker.io:443/library/alpine:latest"]
    assert len({parse_reference(s) for s in hub}) == 1


@pytest.mark.parametrize(("pattern", "expected"), [
    ("*", "*"),
    ("nginx", "docker.io/library/nginx"),
    ("nginx*", "docker.io/library/nginx*"),
    ("alpine:3.11", "docker.io/library/alpine:3.11"),
    ("acme/*", "docker.io/acme/*"),
    ("docker.io/*", "docker.io/*"),
    ("INDEX.docker.io/nginx", "docker.io/library/nginx"),
    ("Registry.Example:443/prod/*", "registry.example/prod/*"),
    ("registry.example*", "registry.example*"),
    ("localhost:5000/*", "localhost:5000/*"),
])
def test_patterns_are_normalised_like_references(pattern: str, expected: str) -> None:
    assert normalise_pattern(pattern) == expected


@pytest.mark.parametrize(("pattern", "image", "matches"), [
    ("registry.example/prod/*", "REGISTRY.example/prod/app", True),
    ("registry.example/prod/*", "registry.example:443/prod/app", True),
    ("registry.example/prod/app", "registry.example:443/prod/app:v1", True),
    ("registry.example/*", "registry.example:5000/prod/app", False),
    ("registry.example/prod/app", "registry.example:5000/prod/app", False),
    ("REGISTRY.EXAMPLE:443/prod/*", "registry.example/prod/app", True),
    ("nginx", "docker.io/library/nginx:1.25", True),
    ("nginx", "nginx.evil.example/nginx", False),
])
def test_patterns_match_only_the_normalised_reference(pattern: str, image: str, matches: bool) -> None:
    assert pattern_matches(normalise_pattern(pattern), parse_reference(image).name) is matches
