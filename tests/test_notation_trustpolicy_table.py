"""notation-go's own trust policy validation tables, run against sigwarden's trust policy reader.

The rows are data vendored from notaryproject/notation-go (verifier/trustpolicy/oci_test.go,
verifier/trustpolicy/trustpolicy_test.go, internal/pkix/pkix_test.go; see tests/vectors/SOURCES), each naming
the upstream test it comes from. sigwarden must refuse what notation-go refuses, with notation-go's message,
accept what it accepts, and apply the statement notation-go's GetApplicableTrustPolicy applies.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from provider.reference import parse_reference
from provider.verifiers.notation.dn import DNError, parse_distinguished_name
from provider.verifiers.notation.trustpolicy import CHECKS, TrustPolicyError, parse_trust_policy

TABLE = yaml.safe_load((Path(__file__).parent / "vectors/notation-go/trustpolicy-validation.yaml").read_text())
BASE = TABLE["base"]
WRAPPED = "oci trust policy: "  # OCIDocument.Validate's prefix for validatePolicyCore errors


def document_of(row: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    for key, value in (row.get("document") or {}).items():
        document[key] = value
    statement = document["trustPolicies"][0] if document.get("trustPolicies") else None
    for key, value in (row.get("statement") or {}).items():
        statement[key] = value
    for extra in row.get("extra") or []:
        document["trustPolicies"].append({**copy.deepcopy(BASE["trustPolicies"][0]), **extra})
    return document


def expanded() -> list[Any]:
    cases = []
    for index, row in enumerate(TABLE["rows"]):
        name = f"{index}-{row['test']}-{row.get('case', '')}"
        if not row.get("scopes"):
            cases.append(pytest.param(row, id=name))
        for scope in row.get("scopes") or []:
            case = {**row, "statement": {"registryScopes": [scope]}, "error": row["error"].replace("{scope}", scope)}
            cases.append(pytest.param(case, id=f"{name}-{scope}"))
    return cases


@pytest.mark.parametrize("row", expanded())
def test_notation_go_validation_table(row: dict[str, Any]) -> None:
    if "dn" in row:  # pkix_test.go TestParseDistinguishedName: wantErr only
        try:
            parse_distinguished_name(row["dn"])
            rejected = False
        except DNError:
            rejected = True
        assert rejected is row["rejects"]
        row = {**row, "statement": {"trustedIdentities": [f"x509.subject:{row['dn']}"]}}
    document = document_of(row)
    expected = row.get("error")
    if "rejects" in row:
        if row["rejects"]:
            with pytest.raises(TrustPolicyError):
                parse_trust_policy(document)
        else:
            parse_trust_policy(document)
        return
    if expected is None:
        parsed = parse_trust_policy(document)
        if row.get("actions"):
            assert [parsed.policies[0].actions[check] for check in CHECKS] == row["actions"]
        return
    with pytest.raises(TrustPolicyError) as caught:
        parse_trust_policy(document)
    assert str(caught.value) == (WRAPPED + expected if row.get("core") else expected)


@pytest.mark.parametrize("row", TABLE["selection"], ids=lambda row: row["case"])
def test_notation_go_statement_selection(row: dict[str, Any]) -> None:
    statements = [{**copy.deepcopy(BASE["trustPolicies"][0]), **s} for s in row["statements"]]
    document = parse_trust_policy({"version": "1.0", "trustPolicies": statements})
    # notation-go matches the artifact's path before `@`; sigwarden matches the same path, normalised.
    name = parse_reference(row["artifact"].split("@")[0]).name
    applied = document.policy_for(name)
    assert (applied.name if applied else None) == row["applies"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("CSTOLN=,+;\\#\" 0aZ\u00e9\ud800")) | st.characters(), max_size=40))
def test_any_dn_text_is_accepted_or_refused_with_a_reason(text: str) -> None:
    try:
        attributes = parse_distinguished_name(text)
    except DNError as exc:
        assert str(exc)
    else:
        assert all(attributes.get(key) for key in ("C", "ST", "O"))
