"""Image patterns in the shipped templates: matched on the normalised reference, and warned about when risky.

The Rego normaliser (policies/lib/images.rego) must agree with provider/reference.py on every reference and
pattern; hypothesis compares the two through regorus (marked fuzz: `make fuzz` runs many more examples).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provider import cli
from provider.config import pattern_matches
from provider.exemptions import pattern_covers
from provider.policy.external import gatekeeper_shape
from provider.policy.gatekeeper import Constraint, PolicySet
from provider.policy.patterns import constraint_pattern_warnings, pattern_problem
from provider.policy.suite import admit
from provider.reference import InvalidReference, normalise_pattern, parse_reference
from tests.helpers import rego_library, write_yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "constraints" / "templates"
REGO = rego_library()


def rego_call(function: str, argument: str) -> str | None:
    result = REGO.eval_query(f"x := data.lib.sigwarden.images.{function}({json.dumps(argument)})")
    rows = result.get("result") or []
    return rows[0]["bindings"]["x"] if rows else None


def python_normalised(text: str) -> str | None:
    try:
        return str(parse_reference(text))
    except InvalidReference:
        return None


component = st.from_regex(r"[a-z0-9]{1,4}(?:[._-][a-z0-9]{1,3})?", fullmatch=True)
port = st.sampled_from(["", ":443", ":0443", ":5000", ":05000", ":80", ":65535"])
host = st.one_of(
    st.from_regex(r"[a-zA-Z][a-zA-Z0-9-]{0,5}\.[a-zA-Z]{2,4}", fullmatch=True),
    st.sampled_from(["localhost", "LocalHost", "docker.io", "DOCKER.IO", "index.docker.io", "Index.Docker.IO",
                     "[::1]", "[FE80::1]", "127.0.0.1"]),
    # Dotless names: a host only with a port (distribution/reference normalize.go, splitDockerDomain), and
    # `myhost:443` must keep its port in both normal forms.
    st.sampled_from(["myhost", "registry", "svc-1"]))
tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,8}", fullmatch=True)
digest = st.from_regex(r"sha256:[a-f0-9]{64}", fullmatch=True)


@st.composite
def references(draw: st.DrawFn) -> str:
    path = "/".join(draw(st.lists(component, min_size=1, max_size=3)))
    prefix = draw(st.none() | st.builds(lambda h, p: f"{h}{p}/", host, port))
    text = (prefix or "") + path
    if draw(st.booleans()):
        text += ":" + draw(tag)
    if draw(st.booleans()):
        text += "@" + draw(digest)
    return text


@given(references())
def test_rego_normalises_every_reference_like_the_provider(text: str) -> None:
    expected = python_normalised(text)
    if expected is not None:
        assert rego_call("normalized", text) == expected


@given(references(), st.booleans())
def test_rego_normalises_patterns_like_the_provider(text: str, prefix: bool) -> None:
    pattern = text.split("@")[0] + ("*" if prefix else "")
    assert rego_call("normalized_pattern", pattern) == normalise_pattern(pattern)


@given(references(), references(), st.integers(min_value=1, max_value=80), st.booleans(), st.booleans(),
       st.booleans())
def test_rego_matches_patterns_as_the_provider_does(image: str, other: str, cut: int, own: bool,
                                                      prefix: bool, pinned: bool) -> None:
    reference = python_normalised(image)
    if reference is None:
        return
    # Half the patterns are cut from the image itself, so matches are common, not a rare accident; some keep
    # the digest (with or without the tag) to try digest exemptions.
    source = (image[:cut] if own else other).split("@")[0] + ("*" if prefix else "")
    if pinned and "@" in image and not prefix:
        name, _, digest = image.partition("@")
        source = (name if own else name.rsplit(":", 1)[0]) + "@" + digest
    pattern = normalise_pattern(source)
    matched = REGO.eval_query(f"data.lib.sigwarden.images.pattern_matches({json.dumps(reference)}, "
                              f"{json.dumps(pattern)})")
    rego_says = bool(matched.get("result")) and matched["result"][0]["expressions"][0]["value"] is True
    # provider/exemptions.py states the documented rule (docs/writing-policies.md, "Exemptions").
    assert rego_says is pattern_covers(reference, pattern)
    if not pattern.endswith("*") and "@" not in pattern and ":" not in pattern.rsplit("/", 1)[-1]:
        # A repository pattern matches exactly as the provider's scope and store matching does.
        assert rego_says is pattern_matches(pattern, parse_reference(image).name)


def test_a_reference_without_a_normal_form_has_none_in_rego_either() -> None:
    assert python_normalised("registry.example:70000/app") is None
    assert rego_call("normalized", "registry.example:70000/app") is None


# --- the templates: exemptions on the normalised reference --------------------------------------------------

def no_external_data(request: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError(f"no external data expected, got {request}")


def pod(*images: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]}}


def digest_pinning(tmp_path: Path, exempt: list[str]) -> PolicySet:
    constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sDigestPinnedImages",
                  "metadata": {"name": "pinned"}, "spec": {"parameters": {"exemptImages": exempt}}}
    return PolicySet.from_paths([TEMPLATES, write_yaml(tmp_path / "c.yaml", constraint)], no_external_data)


@pytest.mark.parametrize(("image", "exempt"), [
    ("registry.example/tools/debug:v1", True),
    ("REGISTRY.example/tools/debug:v1", True),
    ("registry.example:443/tools/debug", True),
    ("Registry.Example:0443/tools/debug:v1", True),
    ("registry.example:5000/tools/debug:v1", False),
    ("registry.example.evil.example/tools/debug:v1", False),
    ("registry.example/toolsmith/debug:v1", False),
    ("busybox", True),
    ("docker.io/library/busybox:1.36", True),
    ("index.docker.io/busybox:1.36", True),
    ("busybox.evil.example/busybox", False),
])
def test_exempt_images_match_the_normalised_reference(tmp_path: Path, image: str, exempt: bool) -> None:
    policies = digest_pinning(tmp_path, ["registry.example/tools/*", "busybox"])
    violations = admit(policies, pod(image)).denied
    assert (not violations) is exempt, [v.message for v in violations]


def signed_images(tmp_path: Path, answer: dict[str, Any], parameters: dict[str, Any]) -> PolicySet:
    constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSignedImages",
                  "metadata": {"name": "signed"}, "spec": {"parameters": parameters}}
    return PolicySet.from_paths([TEMPLATES, write_yaml(tmp_path / "c.yaml", constraint)],
                                lambda request: gatekeeper_shape([{"key": k, "value": answer}
                                                                  for k in request["keys"]]))


def test_signed_images_also_exempt_on_the_reference_the_provider_sent(tmp_path: Path) -> None:
    """An image spelled in a way only the provider normalises is still exempt by its facts."""
    facts = {"reference": "registry.example/tools/debug:v1", "digest": "sha256:" + "a" * 64, "verified": False,
             "reason": "no signatures found", "authorities": [], "signatures": []}
    policies = signed_images(tmp_path, facts, {"exemptImages": ["registry.example/tools/*"]})
    assert admit(policies, pod("registry.example:443/tools/debug:v1")).allowed
    facts["reference"] = "registry.example/team/app:v1"
    denied = admit(policies, pod("registry.example/team/app:v1")).denied
    assert [v.message for v in denied] == ["image registry.example/team/app:v1 is not attested: no signatures found"]


# --- warnings for patterns whose `*` can cross a boundary ---------------------------------------------------

@pytest.mark.parametrize(("pattern", "problem"), [
    ("registry.example*", "can cross the registry host boundary"),
    ("REGISTRY.example*", "can cross the registry host boundary"),
    ("localhost:50*", "can cross the registry host boundary"),
    ("registry.example/team*", "can cross a repository path boundary"),
    ("nginx*", "can cross a repository path boundary"),
    ("*.example/app", "can never match an image: has a '*' before its end"),
    ("registry.example/*", ""),
    ("registry.example/team/*", ""),
    ("registry.example/app:v1*", ""),
    ("registry.example/app@sha256:*", ""),
    ("registry.example/app", ""),
    ("*", ""),
])
def test_pattern_problems(pattern: str, problem: str) -> None:
    found = pattern_problem(pattern)
    assert (problem in found) if problem else found == ""


def test_constraint_warnings_name_the_constraint_and_parameter() -> None:
    constraint = Constraint("K8sSignedImages", "prod", "deny", (), {},
                            {"exemptImages": ["registry.example/tools/*", "registry.example*"]}, "c.yaml")
    warnings = [str(w) for w in constraint_pattern_warnings([constraint])]
    assert len(warnings) == 1
    assert warnings[0].startswith("K8sSignedImages prod parameters.exemptImages: image pattern 'registry.example*' "
                                  "can cross the registry host boundary")


def test_admit_and_audit_print_the_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sDigestPinnedImages",
                  "metadata": {"name": "pinned"}, "spec": {"parameters": {"exemptImages": ["registry.example*"]}}}
    constraints = write_yaml(tmp_path / "constraints.yaml", constraint)
    objects = write_yaml(tmp_path / "pod.yaml", pod("registry.example.evil.example/x:v1"))
    config = write_yaml(tmp_path / "config.yaml", {"stores": [{"type": "registry", "match": ["*"]}]})
    code = cli.main(["admit", "--config", str(config), "--constraints", str(constraints), "-f", str(objects)])
    out = capsys.readouterr()
    assert code == 0  # the pattern exempts the lookalike host: exactly what the warning is about
    assert ("warning: K8sDigestPinnedImages pinned parameters.exemptImages: image pattern 'registry.example*' can "
            "cross the registry host boundary") in out.err
    code = cli.main(["audit", "--config", str(config), "--constraints", str(constraints), "--manifests",
                     str(objects), "--no-progress"])
    out = capsys.readouterr()
    assert code == 0
    assert "image pattern 'registry.example*' can cross the registry host boundary" in out.err


def test_config_check_warns_about_scopes_and_store_patterns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_yaml(tmp_path / "config.yaml", {
        "stores": [{"type": "registry", "match": ["Registry.Example*", "*"]}]})
    assert cli.main(["config", "check", "--for", "verify", str(config)]) == 0
    err = capsys.readouterr().err
    assert ("warning: stores[0].match: image pattern 'registry.example*' can cross the registry host boundary"
            in err)
