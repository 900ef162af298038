"""Property: no trust policy document, however malformed, makes the parser raise anything but TrustPolicyError."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider.verifiers.notation.trustpolicy import TrustPolicyDocument, TrustPolicyError, parse_trust_policy

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any JSON value (what json.load or yaml.safe_load can hand the parser).
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                          max_size=4), max_leaves=12)


def either(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the well-formed value, sometimes any JSON in its place: gets the parser past its early checks."""
    return st.one_of(valid, valid, valid, valid, JSON)


NAMES = st.sampled_from(["wabbit", "prod", "*", ""]) | st.text(max_size=6)
SCOPES = st.lists(st.sampled_from(["*", "registry.example/app", "registry.example:5000/app", "REG.example/a/b",
                                   "registry.example/app:tag", "registry.example", "registry.example/app@x",
                                   "docker.io/library/alpine", "localhost:5000/a"]) | st.text(max_size=10),
                  min_size=1, max_size=2)
LEVELS = st.sampled_from(["strict", "permissive", "audit", "skip", "Strict", ""])
OVERRIDES = st.dictionaries(st.sampled_from(["integrity", "authenticity", "authenticTimestamp", "expiry", "revocation",
                                             "other"]), either(st.sampled_from(["enforce", "log", "skip", "x"])),
                            max_size=3)
VERIFICATION = st.fixed_dictionaries({"level": either(LEVELS)}, optional={
    "override": either(OVERRIDES), "verifyTimestamp": either(st.sampled_from(["always", "afterCertExpiry", "x"]))})
STORES = st.lists(st.sampled_from(["ca:certs", "tsa:ts", "signingAuthority:sa", "ca:", "x509:certs", "ca:other"])
                  | st.text(max_size=8), min_size=1, max_size=3)
IDENTITIES = st.lists(st.sampled_from(["*", "*", "x509.subject: C=US, ST=WA, O=Acme, CN=Signer",
                                       "x509.subject: CN=a, CN=b", "x509.subject: CN", "x509.subject:",
                                       "x509.subject: C=US, O=A\\, B"])
                      | st.text(max_size=16), min_size=1, max_size=2)
STATEMENT = st.fixed_dictionaries({
    "name": either(NAMES), "registryScopes": either(SCOPES), "signatureVerification": either(VERIFICATION),
    "trustStores": either(STORES), "trustedIdentities": either(IDENTITIES)})
DOCUMENT = st.fixed_dictionaries({
    "version": either(st.sampled_from(["1.0", "1.0", "2.0", 1.0])),
    "trustPolicies": either(st.lists(either(STATEMENT), min_size=1, max_size=3))})


def parse(document: Any) -> None:
    try:
        result = parse_trust_policy(document, known_stores=("ca:certs", "tsa:ts", "signingAuthority:sa"))
    except TrustPolicyError as exc:
        assert str(exc)  # the error says what is wrong
        return
    assert isinstance(result, TrustPolicyDocument) and result.policies


@SETTINGS
@given(DOCUMENT)
def test_structured_documents_parse_or_raise_the_domain_error(document: dict[str, Any]) -> None:
    parse(document)


@SETTINGS
@given(JSON)
def test_any_json_value_parses_or_raises_the_domain_error(document: Any) -> None:
    parse(document)


def test_a_valid_document_still_parses() -> None:
    document = {"version": "1.0", "trustPolicies": [{
        "name": "p", "registryScopes": ["registry.example/app"],
        "signatureVerification": {"level": "strict", "override": {"revocation": "log"}},
        "trustStores": ["ca:certs"], "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme, CN=Signer"]}]}
    (policy,) = parse_trust_policy(document, known_stores=("ca:certs",)).policies
    assert policy.actions["revocation"] == "log" and policy.trust_stores == ("ca:certs",)
