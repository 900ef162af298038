"""Fuzzing DSSE envelopes and in-toto statements (cosign `.att` layers).

Properties: any input raises only the domain error (ValueError); changing any signed byte (payload type,
payload, signature) never verifies; the unsigned `keyid` may change freely.
"""

from __future__ import annotations

import base64
import contextlib
import json

from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from provider.config import CosignAuthority, PublicKey
from provider.devkit import cosign
from provider.verifiers.dsse import parse_envelope, parse_statement
from provider.verifiers.signers import Rejected, SignedBlob, authenticate
from tests.fuzz.strategies_signed import FUZZ, flip, json_values, masks, maybe_base64, positions, to_json

KEY = ec.generate_private_key(ec.SECP256R1())
AUTHORITY = CosignAuthority(public_keys=(PublicKey("fuzz.pub", KEY.public_key()),))
DIGEST = "sha256:" + "a" * 64
ENVELOPE = cosign.attestation_envelope(KEY, DIGEST, "https://slsa.dev/provenance/v1", {"builder": {"id": "ci"}})
ORIGINAL = parse_envelope(ENVELOPE)


def accepted(data: bytes) -> bool:
    """True when the envelope parses and one of its signatures verifies with the authority's key."""
    try:
        envelope = parse_envelope(data)
    except ValueError:
        return False
    for signature in envelope.signatures:
        try:
            authenticate(SignedBlob(envelope.signed, signature, envelope=data, payload=envelope.payload), "fuzz",
                         AUTHORITY, "")
        except Rejected:
            continue
        return True
    return False


def test_the_original_envelope_verifies() -> None:
    assert accepted(ENVELOPE)
    assert parse_statement(ORIGINAL.payload_type, ORIGINAL.payload).subject_digests == (DIGEST,)


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_raise_only_the_domain_error(data: bytes) -> None:
    try:
        envelope = parse_envelope(data)
    except ValueError:
        return
    with contextlib.suppress(ValueError):
        parse_statement(envelope.payload_type, envelope.payload)


@FUZZ
@given(json_values | st.fixed_dictionaries({
    "payloadType": json_values | st.just("application/vnd.in-toto+json"),
    "payload": maybe_base64,
    "signatures": st.lists(st.fixed_dictionaries({"sig": maybe_base64}) | json_values, max_size=3) | json_values,
}))
def test_envelope_shaped_json_raises_only_the_domain_error(value: object) -> None:
    try:
        envelope = parse_envelope(to_json(value))
    except ValueError:
        return
    with contextlib.suppress(ValueError):
        parse_statement(envelope.payload_type, envelope.payload)
    assert not accepted(to_json(value))  # no key signed anything here


@FUZZ
@given(json_values | st.fixed_dictionaries({"subject": json_values, "predicateType": json_values}))
def test_statement_shaped_payloads_raise_only_the_domain_error(value: object) -> None:
    with contextlib.suppress(ValueError):
        parse_statement("application/vnd.in-toto+json", to_json(value))


@FUZZ
@given(positions, masks)
def test_a_flipped_byte_verifies_only_when_the_signed_content_is_unchanged(index: int, mask: int) -> None:
    mutated = flip(ENVELOPE, index, mask)
    if accepted(mutated):
        # e.g. JSON whitespace, or base64 padding bits: the bytes differ, the signed content does not.
        envelope = parse_envelope(mutated)
        assert envelope.signed == ORIGINAL.signed
        assert ORIGINAL.signatures[0] in envelope.signatures


@FUZZ
@given(st.sampled_from(["payloadType", "payload", "sig"]), positions, masks)
def test_changing_a_signed_field_never_verifies(field: str, index: int, mask: int) -> None:
    raw = json.loads(ENVELOPE)
    if field == "payloadType":
        raw["payloadType"] = flip(raw["payloadType"].encode(), index, mask).decode("latin-1")
    elif field == "payload":
        raw["payload"] = base64.b64encode(flip(base64.b64decode(raw["payload"]), index, mask)).decode()
    else:
        raw["signatures"][0]["sig"] = base64.b64encode(flip(base64.b64decode(raw["signatures"][0]["sig"]), index,
                                                            mask)).decode()
    assert not accepted(to_json(raw))


@FUZZ
@given(st.text(max_size=64))
def test_the_unsigned_keyid_may_change(keyid: str) -> None:
    raw = json.loads(ENVELOPE)
    raw["signatures"][0]["keyid"] = keyid
    assert accepted(to_json(raw))
