"""Property tests for the reference grammar: total over hostile text, one value per image, stable pinning."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from provider.reference import InvalidReference, parse_reference

component = st.from_regex(r"[a-z0-9]{1,6}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,6}){0,2}", fullmatch=True)
hexdigest = st.from_regex(r"[a-f0-9]{64}", fullmatch=True)
# Text made of the characters references are built from, so the parser's deeper branches are reached.
reference_like = st.text(alphabet="abcz09AZ._-:/@[]", min_size=1, max_size=300)
dotless_host = st.from_regex(r"[a-z][a-z0-9-]{0,8}[a-z0-9]", fullmatch=True).filter(lambda h: h != "localhost")
port = st.sampled_from(["443", "0443", "00443", "5000", "80"])


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


# distribution/reference normalize.go, splitDockerDomain: the first component is a registry host when it contains
# '.' or ':' or is 'localhost'. `host:443/x` has a host by that rule; dropping the default port must not take the
# rule's reason away, or the normal form re-parses as the Docker Hub repository `docker.io/host/x`.
@given(dotless_host, port, st.lists(component, min_size=1, max_size=3),
       st.sampled_from(["", ":v1", "@sha256:" + "a" * 64]))
def test_a_dotless_host_with_a_port_keeps_its_registry(host: str, port: str, path: list[str], suffix: str) -> None:
    text = f"{host}:{port}/" + "/".join(path) + suffix
    ref = parse_reference(text)
    assert ref.registry == f"{host}:{int(port)}"
    assert ref.repository == "/".join(path)
    again = parse_reference(str(ref))
    assert again == ref and str(again) == str(ref)


@given(st.sampled_from(["registry.example", "localhost", "[::1]", "10.0.0.1"]), st.sampled_from(["443", "0443"]),
       component)
def test_the_default_port_is_dropped_where_the_name_stays_a_host(host: str, port: str, name: str) -> None:
    ref = parse_reference(f"{host}:{port}/{name}:v1")
    assert ref.registry == host and parse_reference(str(ref)) == ref
