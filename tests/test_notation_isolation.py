"""One notation signature is one result: malformed, plugin-bound or audit-level signatures never decide for others.

Each case is a real envelope made with the devkit signer (re-signed after the header change, so only the change
is wrong) and served from an OCI layout next to a valid signature.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import cbor2
import pytest

from provider.config import build_config
from provider.devkit import notation
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.verifiers.notation.revocation import RevocationChecker
from provider.verifiers.notation.verifier import NotationVerifier
from tests.helpers import facts_for as facts_under
from tests.helpers import write_yaml

IDENTITY = notation.identity_with_intermediate("ec-256")
SIGNER = "x509.subject: C=US, ST=WA, O=Acme, CN=Acme Release Signer"


def policy(level: str = "strict", identities: list[str] | None = None) -> dict[str, Any]:
    return {"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["*"],
                                                 "signatureVerification": {"level": level},
                                                 "trustStores": ["ca:acme"],
                                                 "trustedIdentities": identities or [SIGNER]}]}


def facts_for(tmp_path: Path, envelopes: list[tuple[bytes, str]], level: str = "strict",
              root: bytes = IDENTITY.root_pem) -> dict[str, Any]:
    """Verify registry.example/app:v1 with the given envelopes attached as referrers."""
    writer = LayoutWriter(tmp_path / "layouts/registry.example", "app")
    image = writer.add_image("v1")
    for envelope, kind in envelopes:
        notation.attach(writer, image, envelope, kind)
    (tmp_path / "root.pem").write_bytes(root)
    data = {"stores": [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["*"]}],
            "authorities": [{"name": "acme", "notation": {"trustStores": {"ca:acme": [str(tmp_path / "root.pem")]},
                                                          "trustPolicy": {"inline": policy(level)}}}]}
    return facts_under(tmp_path, data, "registry.example/app:v1")


def target(tmp_path: Path) -> dict[str, Any]:
    writer = LayoutWriter(tmp_path / "layouts/registry.example", "app")
    return notation.target_of(writer.add_image("v1"))


def jws_with_header(envelope: bytes, **header: Any) -> bytes:
    data = json.loads(envelope)
    data["header"].update(header)
    return json.dumps(data).encode()


def cose_message(envelope: bytes) -> list[Any]:
    return list(cbor2.loads(envelope).value)


# Each builder returns (envelope, kind, reason fragment) for an envelope a registry could serve.
MALFORMED = {
    "unhashable alg": lambda t: (notation.sign(t, IDENTITY, protected={"alg": ["ES256"]}), "jws",
                                 "signature algorithm \"['ES256']\" is not supported"),
    "non-list crit": lambda t: (notation.sign(t, IDENTITY, protected={"crit": 5}), "jws",
                                "crit header must be a non-empty list"),
    "crit of objects": lambda t: (notation.sign(t, IDENTITY, protected={"crit": [{"a": 1}]}), "jws",
                                  "crit header must be a non-empty list"),
    "bad base64 x5c": lambda t: (jws_with_header(notation.sign(t, IDENTITY), x5c=["!!!not base64"]), "jws",
                                 "x5c[0] is not base64"),
    "x5c not a list": lambda t: (jws_with_header(notation.sign(t, IDENTITY), x5c="MIIB"), "jws",
                                 "x5c must be a list"),
    "cose not an array": lambda t: (cbor2.dumps(cbor2.CBORTag(18, 5)), "cose", "not a COSE_Sign1 message"),
    "cose three elements": lambda t: (cbor2.dumps(cbor2.CBORTag(18, cose_message(
        notation.sign(t, IDENTITY, "cose"))[:3])), "cose", "not a COSE_Sign1 message"),
    "cose protected is text": lambda t: (cbor2.dumps(cbor2.CBORTag(18, ["x", {}, b"{}", b""])), "cose",
                                         "must be byte strings"),
    "cose x5chain of ints": lambda t: (notation.sign(t, IDENTITY, "cose", unprotected={33: [1, 2]}), "cose",
                                       "certificate 0 of the envelope's chain is not a byte string"),
    "signing time overflows": lambda t: (notation.sign(t, IDENTITY, protected={
        "io.cncf.notary.signingTime": 10 ** 20}), "jws", "io.cncf.notary.signingTime is not a valid time"),
    "cose signing time overflows": lambda t: (notation.sign(t, IDENTITY, "cose", protected={
        "io.cncf.notary.signingTime": 1e300}), "cose", "io.cncf.notary.signingTime is not a valid time"),
    "expiry without zone": lambda t: (notation.sign(t, IDENTITY, protected={
        "io.cncf.notary.expiry": "2999-01-01T00:00:00", "crit": ["io.cncf.notary.signingScheme",
                                                                  "io.cncf.notary.expiry"]}), "jws",
        "io.cncf.notary.expiry is not a valid time"),
    "size is a float": lambda t: (notation.sign(dict(t, size=t["size"] + 0.5), IDENTITY), "jws",
                                  "integer size"),
    "payload nested too deep": lambda t: (json.dumps({
        "protected": json.loads(notation.sign(t, IDENTITY))["protected"],
        "payload": base64.urlsafe_b64encode(b"[" * 100000).decode().rstrip("="), "signature": "AA",
        "header": {}}).encode(), "jws", "payload is not a Notary Project payload"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_signature_is_listed_and_the_valid_one_still_counts(tmp_path: Path, case: str) -> None:
    bad, kind, reason = MALFORMED[case](target(tmp_path))
    good = notation.sign(target(tmp_path), IDENTITY, "cose" if kind == "jws" else "jws")
    facts = facts_for(tmp_path, [(bad, kind), (good, "cose" if kind == "jws" else "jws")])
    assert facts["verified"] is True and facts["authorities"] == ["acme"]
    outcomes = sorted((s["verified"], s["reason"]) for s in facts["signatures"])
    assert len(outcomes) == 2
    assert outcomes[1] == (True, "")
    assert outcomes[0][0] is False and reason in outcomes[0][1], outcomes[0][1]


def test_only_malformed_signatures_leave_the_image_unverified_not_internal(tmp_path: Path) -> None:
    envelopes = [MALFORMED[case](target(tmp_path))[:2] for case in sorted(MALFORMED)]
    facts = facts_for(tmp_path, envelopes)
    assert facts["verified"] is False
    assert len(facts["signatures"]) == len(MALFORMED)
    assert all(s["reason"].startswith("malformed signature envelope: ") for s in facts["signatures"])


# --- plugins and unknown critical headers fail closed ---------------------------------------------------------

PLUGIN = "io.cncf.notary.verificationPlugin"
MIN_VERSION = "io.cncf.notary.verificationPluginMinVersion"


@pytest.mark.parametrize("kind", ["jws", "cose"])
@pytest.mark.parametrize(("headers", "name"), [
    ({PLUGIN: "com.example.hsm-verifier"}, "com.example.hsm-verifier"),
    ({PLUGIN: ""}, "(unnamed)"),
    ({MIN_VERSION: "1.0.0"}, "(unnamed)"),
    ({PLUGIN: "com.example.hsm-verifier", MIN_VERSION: "2.0.0"}, "com.example.hsm-verifier"),
])
@pytest.mark.parametrize("level", ["strict", "audit"])
def test_a_signature_naming_a_verification_plugin_fails_closed(tmp_path: Path, kind: str, headers: dict[str, str],
                                                               name: str, level: str) -> None:
    critical = ["io.cncf.notary.signingScheme", *headers]
    crit_label = "crit" if kind == "jws" else 2
    envelope = notation.sign(target(tmp_path), IDENTITY, kind, protected={**headers, crit_label: critical})
    facts = facts_for(tmp_path, [(envelope, kind)], level)
    assert facts["verified"] is False and facts["authorities"] == []
    signature = facts["signatures"][0]
    assert signature["reason"] == (f"signature requires verification plugin {name}, which is not available "
                                   "(notation plugins are not supported)")
    assert signature["checks"] == {"integrity": "passed", "verificationPlugin": "failed"}


@pytest.mark.parametrize("kind", ["jws", "cose"])
def test_unknown_critical_headers_fail_closed(tmp_path: Path, kind: str) -> None:
    crit_label = "crit" if kind == "jws" else 2
    envelope = notation.sign(target(tmp_path), IDENTITY, kind, protected={
        "io.example.mustUnderstand": "yes", crit_label: ["io.cncf.notary.signingScheme", "io.example.mustUnderstand"]})
    facts = facts_for(tmp_path, [(envelope, kind)], "audit")
    assert facts["verified"] is False
    assert facts["signatures"][0]["reason"] == ("malformed signature envelope: critical headers "
                                                "['io.example.mustUnderstand'] are not understood")


# --- an unforeseen failure stays with its signature ---------------------------------------------------------

class RevocationThatBreaksOn(RevocationChecker):
    """A revocation checker with a fault for one certificate: stands in for any bug below the verifier."""

    def __init__(self, leaf: Any) -> None:
        super().__init__()
        self.leaf = leaf

    def problem(self, chain: Any, **kwargs: Any) -> str:
        if chain[0] == self.leaf:
            raise RuntimeError("fault")
        return super().problem(chain, **kwargs)


def test_an_unforeseen_error_in_one_signature_is_that_signatures_result(tmp_path: Path) -> None:
    writer = LayoutWriter(tmp_path / "layouts/registry.example", "app")
    image = writer.add_image("v1")
    broken = notation.identity_with_intermediate("ec-256")
    notation.attach(writer, image, notation.sign(notation.target_of(image), broken))
    notation.attach(writer, image, notation.sign(notation.target_of(image), IDENTITY))
    (tmp_path / "root.pem").write_bytes(IDENTITY.root_pem + broken.root_pem)
    data = {"stores": [{"type": "oci-layout", "path": str(tmp_path / "layouts"), "match": ["*"]}],
            "authorities": [{"name": "acme", "notation": {"trustStores": {"ca:acme": [str(tmp_path / "root.pem")]},
                                                          "trustPolicy": {"inline": policy()}}}]}
    config = build_config(data, write_yaml(tmp_path / "config.yaml", data))
    engine = Engine(config, verifiers=[NotationVerifier(revocation=RevocationThatBreaksOn(broken.chain[0]))])
    try:
        item = engine.verify(["registry.example/app:v1"], "t")[0]
    finally:
        engine.shutdown()
    assert not item.error, item.error
    assert item.value["verified"] is True
    reasons = sorted(s["reason"] for s in item.value["signatures"])
    assert reasons == ["", "signature could not be checked (RuntimeError); it is not trusted"]
