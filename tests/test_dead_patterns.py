"""Image patterns that can never match a normalised reference are refused where config is loaded (`config check`,
`serve`, reload), naming the field; in constraints they are warned about with the same explanation."""

from __future__ import annotations

from pathlib import Path

import pytest

from provider import cli
from provider.config import ConfigError, load_config
from provider.policy.gatekeeper import Constraint
from provider.policy.patterns import constraint_pattern_warnings
from provider.reference import parse_reference, pattern_defect
from tests.helpers import VECTORS, write_yaml

KEY = str(VECTORS / "containers-image/cosign.pub")


@pytest.mark.parametrize(("pattern", "problem"), [
    ("https://registry.example/team/*", "starts with https://, which no image reference has: write it without the "
                                        "scheme (registry.example/team/*)"),
    ("oci://registry.example/team/app", "starts with oci://"),
    ("registry.example/Team/*", "has upper case in the repository path 'Team', and repository names are lowercase: "
                                "write registry.example/team/*"),
    ("registry.example/team/App", "has upper case in the repository path 'team/App'"),
    ("registry.example/team app/*", "contains white space, which no image reference has"),
    (" registry.example/team/*", "contains white space"),
    ("registry.example/*/app", "has a '*' before its end: only a trailing '*' is a wildcard (a prefix), there is no "
                               "mid-path wildcard, and no reference contains '*', so it matches nothing; list the "
                               "repositories"),
    ("registry.example/team/*/app*", "list the repositories, or the prefix registry.example/team/* if everything "
                                     "below registry.example/team/ is meant"),
    ("*.example/team/*", "has a '*' before its end"),
    ("registry.example/team/", "is not an image reference and so matches none: invalid repository name 'team/'"),
])
def test_config_check_refuses_a_scope_that_can_never_match(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            pattern: str, problem: str) -> None:
    config = write_yaml(tmp_path / "config.yaml", {"authorities": [
        {"name": "team", "scopes": ["registry.example/ok/*", pattern], "cosign": {"publicKeys": [KEY]}}]})
    assert cli.main(["config", "check", "--for", "verify", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"authorities[0].scopes[1]: {pattern!r} can never match an image: " in err and problem in err
    assert len(err.strip().splitlines()) == 1


def test_store_match_is_checked_the_same_way(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "config.yaml", {"stores": [
        {"type": "registry", "match": ["registry.example/*", "https://registry.example/*"]}]})
    with pytest.raises(ConfigError, match=r"stores\[0\]\.match\[1\]: 'https://registry.example/\*' can never match"):
        load_config(config)


@pytest.mark.parametrize(("pattern", "reference"), [
    # Patterns that stay: each matches the normalised reference next to it.
    ("Registry.Example:443/team/*", "registry.example/team/app:v1"),
    ("registry.example/team/app:V1", "registry.example/team/app:V1"),
    ("registry.example/team/app:V*", "registry.example/team/app:V2"),
    ("registry.example/team/app@sha256:*", "registry.example/team/app@sha256:" + "a" * 64),
    ("nginx", "nginx:1.25"),
    ("acme/*", "docker.io/acme/app:v1"),
    ("registry.example*", "registry.example/app:v1"),
    ("[::1]:5000/a/*", "[::1]:5000/a/b:v1"),
    ("*", "registry.example/app:v1"),
])
def test_patterns_that_can_match_are_kept(tmp_path: Path, pattern: str, reference: str) -> None:
    from provider.config import pattern_matches
    from provider.reference import normalise_pattern

    assert pattern_defect(pattern) == ""
    assert pattern_matches(normalise_pattern(pattern), str(parse_reference(reference)))
    config = write_yaml(tmp_path / "config.yaml", {"authorities": [
        {"name": "team", "scopes": [pattern], "cosign": {"publicKeys": [KEY]}}]})
    assert load_config(config).authorities[0].scopes == (normalise_pattern(pattern),)


def test_constraint_exemptions_get_the_same_explanation() -> None:
    constraint = Constraint("K8sSignedImages", "prod", "deny", (), {},
                            {"exemptImages": ["registry.example/*/debug"]}, "c.yaml")
    (warning,) = [str(w) for w in constraint_pattern_warnings([constraint])]
    assert warning.startswith("K8sSignedImages prod parameters.exemptImages: image pattern 'registry.example/*/debug' "
                              "can never match an image: has a '*' before its end: only a trailing '*' is a wildcard")
