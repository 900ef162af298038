"""Ratify applies exactly one cosign trust policy per image; the authorities `import ratify` writes must admit
exactly what that rule admits. A small reference model of Ratify's rule (written from ratify-project/ratify
pkg/verifier/cosign/trustpolicies.go GetScopedPolicy and pkg/utils/utils.go ParseSubjectReference, which uses
distribution's ParseDockerRef) is compared with the imported configuration: a differential table, a property
test over random references and scope sets, and real cosign signatures through the shipped template."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from provider.config import Config, ConfigError, build_config
from provider.config.placeholders import PREFIX
from provider.devkit import cosign
from provider.devkit.kube import deployment
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.importers import output
from provider.importers.ratify import convert
from provider.importers.ratify_scopes import validate_scopes
from provider.policy.external import EngineExternalData
from provider.policy.gatekeeper import PolicySet
from provider.policy.suite import admit
from provider.reference import parse_reference
from tests.helpers import write_yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "constraints/templates"
GROUP = "config.ratify.deislabs.io/v1beta1"


# --- the reference model: what Ratify does ----------------------------------------------------------------

def docker_reference(image: str) -> str:
    """distribution's ParseDockerRef(...).String(): Docker Hub rules, `:latest` when there is neither tag nor
    digest, and the tag dropped when a digest is present (the string GetScopedPolicy receives)."""
    name, _, digest = image.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    tag = name[colon + 1:] if colon > slash else ""
    name = name[:colon] if colon > slash else name
    first, sep, rest = name.partition("/")
    if not sep or not ("." in first or ":" in first or first == "localhost"):
        first, rest = "docker.io", name
    if first == "docker.io" and "/" not in rest:
        rest = f"library/{rest}"
    base = f"{first}/{rest}"
    return f"{base}@{digest}" if digest else f"{base}:{tag or 'latest'}"


def ratify_policy(policies: list[tuple[str, list[str]]], image: str) -> str | None:
    """GetScopedPolicy: the first policy with a scope equal to the reference or (ending in `*`) a raw prefix
    of it; the `*` policy only when none matches; None ("No policy found") otherwise."""
    reference = docker_reference(image)
    fallback = None
    for name, scopes in policies:
        for scope in scopes:
            if scope == "*":
                fallback = name
            elif (scope.endswith("*") and reference.startswith(scope[:-1])) or reference == scope:
                return name
    return fallback


# --- the imported configuration -----------------------------------------------------------------------------

@cache
def policy_key(index: int) -> bytes:
    return cosign.public_pem(ec.generate_private_key(ec.SECP256R1()))


def ratify_documents(policies: list[tuple[str, list[str]]]) -> list[dict[str, Any]]:
    """A cosign Verifier with one trust policy (and one inline key) per entry."""
    documents: list[dict[str, Any]] = []
    trust_policies = []
    for index, (name, scopes) in enumerate(policies):
        documents.append({"apiVersion": GROUP, "kind": "KeyManagementProvider", "metadata": {"name": f"key-{name}"},
                          "spec": {"type": "inline", "parameters": {"contentType": "key",
                                                                    "value": policy_key(index).decode()}}})
        trust_policies.append({"name": name, "scopes": scopes, "keys": [{"provider": f"key-{name}"}],
                               "tLogVerify": False})
    documents.append({"apiVersion": GROUP, "kind": "Verifier", "metadata": {"name": "cosign"},
                      "spec": {"name": "cosign", "artifactTypes": "application/vnd.dev.cosign.artifact.sig.v1+json",
                               "parameters": {"trustPolicies": trust_policies}}})
    return documents


def imported(policies: list[tuple[str, list[str]]], directory: Path) -> tuple[Config | None, str]:
    """The imported config (None while it holds a placeholder) and the migration report."""
    conversion = convert(ratify_documents(policies))
    output.write(conversion, directory)
    text = (directory / output.CONFIG_FILE).read_text()
    if PREFIX in text:
        return None, output.report(conversion)
    return build_config(yaml.safe_load(text), directory / output.CONFIG_FILE), output.report(conversion)


def sigwarden_policies(config: Config, image: str) -> set[str]:
    """The policies whose authority covers the image: a signature by any other policy's key counts for nothing."""
    name = parse_reference(image).name
    return {a.name.removeprefix("cosign-") for a in config.authorities if a.covers(name)}


# --- a differential table: one row per rule ---------------------------------------------------------------

DIGEST = "sha256:" + "a" * 64
PROD_AND_GLOBAL = [("prod", ["registry.example/prod/*"]), ("dev", ["*"])]
ROWS = [
    # (policies, image, policy Ratify applies)
    # trustpolicies.go GetScopedPolicy: a scoped policy beats `*` (the hole of issue 25.1: `*` must not apply)
    (PROD_AND_GLOBAL, "registry.example/prod/app:v1", "prod"),
    # GetScopedPolicy: `*` only when no scope matches
    (PROD_AND_GLOBAL, "registry.example/dev/app:v1", "dev"),
    # ParseSubjectReference: a digest reference keeps no tag; the raw prefix still matches
    (PROD_AND_GLOBAL, f"registry.example/prod/app:v1@{DIGEST}", "prod"),
    # GetScopedPolicy: a raw string prefix crosses path components (`prod*` covers `production/`)
    ([("prod", ["registry.example/prod*"]), ("dev", ["*"])], "registry.example/production/app:v1", "prod"),
    # ParseDockerRef: Docker Hub names get docker.io/library/ before the comparison
    ([("hub", ["docker.io/library/*"]), ("dev", ["*"])], "alpine:3.19", "hub"),
    ([("hub", ["docker.io/library/*"]), ("dev", ["*"])], "docker.io/acme/app:v1", "dev"),
    # GetScopedPolicy: no `*` policy and no matching scope: "No policy found", nothing verifies
    ([("prod", ["registry.example/prod/*"])], "registry.example/dev/app:v1", None),
    # GetScopedPolicy: a scope equal to a bare repository never equals a reference (those carry a tag or digest)
    ([("bare", ["registry.example/prod/app"]), ("dev", ["*"])], "registry.example/prod/app:v1", "dev"),
    # GetScopedPolicy: a scope without a registry host never prefixes a normalised reference
    ([("short", ["library/*"]), ("dev", ["*"])], "alpine:3.19", "dev"),
    # GetScopedPolicy: a host prefix with a port
    ([("local", ["localhost:5000/*"]), ("dev", ["*"])], "localhost:5000/team/app:v1", "local"),
]


@pytest.mark.parametrize(("policies", "image", "applied"), ROWS)
def test_differential_rows(policies: list[tuple[str, list[str]]], image: str, applied: str | None,
                           tmp_path: Path) -> None:
    assert ratify_policy(policies, image) == applied  # the reference model reads the row as Ratify does
    config, report = imported(policies, tmp_path)
    assert config is not None, report
    assert sigwarden_policies(config, image) == ({applied} if applied else set())


TAG_SCOPES = [
    # GetScopedPolicy compares scopes with the tag (trustpolicies_test.go TestGetScopedPolicy "valid policy",
    # "valid policy wildcards"): sigwarden decides per repository, so the user has to choose
    [("v1", ["ghcr.io/ratify-project/ratify:v1"]), ("dev", ["*"])],
    [("tags", ["ghcr.io/ratify-project/ratify:*"]), ("dev", ["*"])],
    [("pinned", [f"ghcr.io/ratify-project/ratify@{DIGEST}"]), ("dev", ["*"])],
    # sigwarden reads these patterns differently (the default port is dropped; Docker Hub names get library/)
    [("port", ["registry.example:443/*"]), ("dev", ["*"])],
    [("hub", ["docker.io/nginx*"]), ("dev", ["*"])],
]


@pytest.mark.parametrize("policies", TAG_SCOPES)
def test_scopes_sigwarden_cannot_say_per_repository_need_the_user(policies: list[tuple[str, list[str]]],
                                                                  tmp_path: Path) -> None:
    config, report = imported(policies, tmp_path)
    assert config is None  # a placeholder: `config check` refuses it until the user decides
    assert f"!! Verifier cosign: spec.parameters.trustPolicies[{policies[0][0]}].scopes {policies[0][1][0]}" in report
    assert "never per tag or digest" in report


@pytest.mark.parametrize(("policies", "message"), [
    # trustpolicies.go validateScopes (trustpolicies_test.go TestValidateScopes)
    ([("a", ["registry.example/*"]), ("b", ["registry.example/prod/*"])],
     "overlapping scopes registry.example/prod/* and registry.example/* for trust policy b"),
    ([("a", ["*"]), ("b", ["*"])], "global wildcard character * can only be used once"),
    ([("a", ["*", "registry.example/*"])],
     "global wildcard character * cannot be used with other scopes within the same trust policy a"),
    ([("a", ["Registry.example/*"])], "invalid scope Registry.example/* for trust policy a"),
    ([("a", ["registry.example/x:v1"]), ("b", ["registry.example/x:v1"])],
     "duplicate scope registry.example/x:v1 for trust policy b"),
])
def test_policies_ratify_refuses_create_no_authority(policies: list[tuple[str, list[str]]], message: str,
                                                     tmp_path: Path) -> None:
    assert validate_scopes(policies) == message
    conversion = convert(ratify_documents(policies))
    assert conversion.config["authorities"] == []
    assert f"Ratify refuses these trust policies ({message})" in output.report(conversion)


# --- the property: random references and scope sets ------------------------------------------------------

HOSTS = ["registry.example", "registry.example:5000", "reg.example", "localhost:5000", "docker.io"]
PATHS = ["app", "prod/app", "prod/apple", "production/app", "dev/app", "library/alpine", "acme/app"]
TAGS = ["v1", "v2", "latest"]


@st.composite
def images(draw: st.DrawFn) -> str:
    host = draw(st.sampled_from([*HOSTS, ""]))
    path = draw(st.sampled_from(PATHS))
    name = f"{host}/{path}" if host else path.removeprefix("library/")
    tag = draw(st.sampled_from([*TAGS, ""]))
    digest = draw(st.sampled_from(["", DIGEST]))
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


@st.composite
def scopes(draw: st.DrawFn) -> str:
    """A prefix of some normalised reference, with `*` (most often cut inside the repository name)."""
    reference = docker_reference(draw(images()))
    name_end = len(reference.split("@")[0].rsplit(":", 1)[0]) if "@" not in reference else reference.index("@")
    cut = draw(st.integers(min_value=reference.index("/") + 1, max_value=name_end))
    return reference[:cut] + "*"


@st.composite
def scope_sets(draw: st.DrawFn) -> list[tuple[str, list[str]]]:
    chosen = draw(st.lists(scopes(), min_size=1, max_size=4, unique=True))
    policies = [(f"p{i}", [scope]) for i, scope in enumerate(chosen)]
    if draw(st.booleans()):
        policies.append(("global", ["*"]))
    return policies


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(policies=scope_sets(), probes=st.lists(images(), min_size=1, max_size=8))
def test_imported_config_selects_as_ratify_does(policies: list[tuple[str, list[str]]], probes: list[str],
                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    assume(validate_scopes(policies) == "")  # Ratify refuses overlapping scopes (covered above)
    config, report = imported(policies, tmp_path_factory.mktemp("import"))
    if config is None:  # a scope sigwarden cannot say per repository: the user decides (see above)
        assert "never per tag or digest" in report
        return
    for image in probes:
        applied = ratify_policy(policies, image)
        assert sigwarden_policies(config, image) == ({applied} if applied else set()), (image, policies)


# --- end to end: real cosign signatures, the shipped template ---------------------------------------------

def test_prod_image_signed_only_with_the_global_key_is_denied(tmp_path: Path) -> None:
    prod_key, dev_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    documents = ratify_documents(PROD_AND_GLOBAL)
    documents[0]["spec"]["parameters"]["value"] = cosign.public_pem(prod_key).decode()
    documents[1]["spec"]["parameters"]["value"] = cosign.public_pem(dev_key).decode()
    conversion = convert(documents)
    conversion.set_enforcement_action("deny")
    output.write(conversion, tmp_path / "out")
    config = yaml.safe_load((tmp_path / "out/config.yaml").read_text())
    assert config["authorities"][1] == {**config["authorities"][1], "name": "cosign-dev", "yieldTo": ["cosign-prod"]}
    config["stores"] = [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["registry.example/*"]}]
    signed = {}
    for repository, key in (("prod/app", dev_key), ("prod/api", prod_key), ("dev/app", dev_key)):
        writer = LayoutWriter(tmp_path / "layouts/registry.example", repository)
        digest = writer.add_image("v1", repository.encode())["digest"]
        cosign.sign_image(writer, digest, f"registry.example/{repository}", key)
        signed[repository] = f"registry.example/{repository}:v1"
    engine = Engine(build_config(config, write_yaml(tmp_path / "out/config.yaml", config)))
    try:
        policies = PolicySet.from_paths([TEMPLATES, tmp_path / "out/kubernetes.yaml"], EngineExternalData(engine))
        answers = {repository: admit(policies, deployment("app", image, "default"))
                   for repository, image in signed.items()}
        facts = engine.verify([signed["prod/app"]], "t")[0].value
    finally:
        engine.shutdown()
    # Ratify checks registry.example/prod/app against the prod policy only: the dev key does not count there.
    assert not answers["prod/app"].allowed
    assert facts["verified"] is False and facts["authorities"] == []
    assert answers["prod/api"].allowed, answers["prod/api"].kubectl()
    assert answers["dev/app"].allowed, answers["dev/app"].kubectl()


# --- the model: yieldTo is checked when the config loads ----------------------------------------------------

@pytest.mark.parametrize(("yield_to", "problem"), [
    (["nobody"], "authorities[1] (fallback).yieldTo: no authority is named 'nobody'"),
    (["fallback"], "authorities[1] (fallback).yieldTo: an authority cannot yield to itself"),
])
def test_yield_to_names_an_other_authority(yield_to: list[str], problem: str, tmp_path: Path) -> None:
    key = tmp_path / "key.pub"
    key.write_bytes(policy_key(0))
    config = {"authorities": [
        {"name": "prod", "scopes": ["registry.example/prod/*"], "cosign": {"publicKeys": [{"file": str(key)}]}},
        {"name": "fallback", "yieldTo": yield_to, "cosign": {"publicKeys": [{"file": str(key)}]}}]}
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        build_config(config, tmp_path / "config.yaml")


def test_an_unscoped_authority_yielded_to_takes_every_image(tmp_path: Path) -> None:
    key = tmp_path / "key.pub"
    key.write_bytes(policy_key(0))
    config = build_config({"authorities": [
        {"name": "all", "cosign": {"publicKeys": [{"file": str(key)}]}},
        {"name": "fallback", "yieldTo": ["all"], "cosign": {"publicKeys": [{"file": str(key)}]}}]},
        tmp_path / "config.yaml")
    assert [a.name for a in config.authorities if a.covers("registry.example/any/app")] == ["all"]


# --- notation: one statement per image (the same precedence, without prefixes) ------------------------------

REPOSITORIES = ["registry.example/prod/app", "registry.example/prod/api", "registry.example:5000/prod/app",
                "docker.io/library/alpine", "localhost:5000/team/app", "registry.example/prod"]


def notation_statement(statements: list[tuple[str, list[str]]], artifact: str) -> str | None:
    """notation-go verifier/trustpolicy/oci.go GetApplicableTrustPolicy: the path before `@` equal to a
    registry scope, else the `*` statement, else none. Ratify v1 hands it ParseDockerRef's string."""
    path = artifact.rsplit("@", 1)[0]
    exact = [name for name, scopes in statements if path in scopes]
    wildcard = [name for name, scopes in statements if "*" in scopes]
    return (exact or wildcard or [None])[0]


@settings(max_examples=80, deadline=None)
@given(assignment=st.lists(st.sampled_from([*REPOSITORIES, None]), min_size=len(REPOSITORIES),
                           max_size=len(REPOSITORIES)),
       wildcard=st.booleans(), artifact=st.sampled_from(REPOSITORIES))
def test_notation_statement_selection_matches_notation_go(assignment: list[str | None], wildcard: bool,
                                                          artifact: str) -> None:
    from provider.verifiers.notation.trustpolicy import parse_trust_policy

    # Each repository goes to at most one statement (notation-go refuses a scope in two statements).
    by_statement: dict[str, list[str]] = {}
    for repository, owner in zip(REPOSITORIES, assignment, strict=True):
        if owner is not None:
            by_statement.setdefault(f"s-{REPOSITORIES.index(owner)}", []).append(repository)
    statements = sorted(by_statement.items()) + ([("global", ["*"])] if wildcard else [])
    assume(statements)
    document = parse_trust_policy({"version": "1.0", "trustPolicies": [
        {"name": name, "registryScopes": scopes, "signatureVerification": {"level": "strict"},
         "trustStores": ["ca:x"], "trustedIdentities": ["*"]} for name, scopes in statements]})
    reference = f"{artifact}@{DIGEST}"
    applied = document.policy_for(parse_reference(docker_reference(reference)).name)
    assert (applied.name if applied else None) == notation_statement(statements, docker_reference(reference))
