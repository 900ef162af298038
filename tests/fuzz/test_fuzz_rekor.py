"""Fuzzing Rekor bundles (the cosign bundle annotation) and entry bodies of every supported kind.

Properties: any input raises only TlogError; a flipped byte of a bundle verifies only if the entry the SET
covers is unchanged; a changed bound field of a body (hash, signature, key, kind) never verifies even when
the log signs the changed entry; the dsse `envelopeHash`, which no client can recompute, may change.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from provider.config import PublicKey
from provider.devkit import cosign, rekor
from provider.verifiers.dsse import parse_envelope
from provider.verifiers.rekor import LoggedSignature, TlogError, check_body, verify_bundle
from tests.fuzz.strategies_signed import FUZZ, flip, flip_base64, json_values, masks, maybe_base64, positions, to_json

LOG = ec.generate_private_key(ec.SECP256R1())
REKOR = (PublicKey("rekor.pub", LOG.public_key()),)
SIGNER = ec.generate_private_key(ec.SECP256R1())
PEM = cosign.public_pem(SIGNER)
PAYLOAD = cosign.payload("sha256:" + "b" * 64, "registry.example/app")
SIGNATURE = cosign.sign(SIGNER, PAYLOAD)
SIMPLE = LoggedSignature(SIGNATURE, PAYLOAD, SIGNER.public_key())
BUNDLE = rekor.hashedrekord_bundle(LOG, PAYLOAD, SIGNATURE, PEM, 1_700_000_000, 3)

ENVELOPE = cosign.attestation_envelope(SIGNER, "sha256:" + "c" * 64, "https://slsa.dev/provenance/v1", {})
_parsed = parse_envelope(ENVELOPE)
DSSE = LoggedSignature(_parsed.signatures[0], _parsed.signed, SIGNER.public_key(), ENVELOPE, _parsed.payload)

# (body, what it must bind, the paths of its bound fields)
BODIES: dict[str, tuple[dict[str, Any], LoggedSignature, list[tuple[str, ...]]]] = {
    "hashedrekord": (rekor.hashedrekord_body(PAYLOAD, SIGNATURE, PEM), SIMPLE, [
        ("spec", "data", "hash", "value"), ("spec", "data", "hash", "algorithm"),
        ("spec", "signature", "content"), ("spec", "signature", "publicKey", "content")]),
    "intoto/0.0.1": (rekor.intoto_body(ENVELOPE, PEM, "0.0.1"), DSSE, [
        ("spec", "content", "hash", "value"), ("spec", "content", "payloadHash", "value"), ("spec", "publicKey")]),
    "intoto/0.0.2": (rekor.intoto_body(ENVELOPE, PEM, "0.0.2"), DSSE, [
        ("spec", "content", "payloadHash", "value"), ("spec", "content", "envelope", "signatures", 0, "sig"),
        ("spec", "content", "envelope", "signatures", 0, "publicKey")]),
    "dsse": (rekor.dsse_body(ENVELOPE, PEM), DSSE, [
        ("spec", "payloadHash", "value"), ("spec", "signatures", 0, "signature"),
        ("spec", "signatures", 0, "verifier")]),
}


def entry_fields(bundle_text: str) -> Any:
    payload = json.loads(bundle_text)["Payload"]
    return payload["body"], payload["integratedTime"], payload["logID"], payload["logIndex"]


def verifies(bundle_text: str, logged: LoggedSignature = SIMPLE) -> bool:
    try:
        verify_bundle(bundle_text, logged, REKOR)
    except TlogError:
        return False
    return True


def test_the_original_bundles_verify() -> None:
    assert verifies(BUNDLE)
    for body, logged, _ in BODIES.values():
        check_body(to_json(body), logged)


@FUZZ
@given(st.text(max_size=2048) | st.binary(max_size=2048).map(lambda b: b.decode("latin-1")))
def test_arbitrary_text_raises_only_tlog_error(text: str) -> None:
    assert not verifies(text)


@FUZZ
@given(json_values | st.fixed_dictionaries({
    "SignedEntryTimestamp": maybe_base64,
    "Payload": json_values | st.fixed_dictionaries({"body": maybe_base64, "integratedTime": json_values,
                                                    "logID": json_values, "logIndex": json_values}),
}))
def test_bundle_shaped_json_raises_only_tlog_error(value: object) -> None:
    assert not verifies(json.dumps(value))


@FUZZ
@given(st.sampled_from(sorted(BODIES)), json_values | st.fixed_dictionaries({
    "kind": st.sampled_from(["hashedrekord", "rekord", "intoto", "dsse"]) | json_values,
    "apiVersion": st.sampled_from(["0.0.1", "0.0.2"]) | json_values,
    "spec": json_values,
}))
def test_body_shaped_json_raises_only_tlog_error(name: str, value: object) -> None:
    try:
        check_body(to_json(value), BODIES[name][1])
    except TlogError:
        return
    raise AssertionError("a body that records nothing of this signature was accepted")


@FUZZ
@given(positions, masks)
def test_a_flipped_bundle_byte_verifies_only_when_the_logged_entry_is_unchanged(index: int, mask: int) -> None:
    mutated = flip(BUNDLE.encode(), index, mask).decode("latin-1")
    if verifies(mutated):
        assert entry_fields(mutated) == entry_fields(BUNDLE)


def _set(body: dict[str, Any], path: tuple[str | int, ...], change: Callable[[Any], Any]) -> dict[str, Any]:
    changed = json.loads(json.dumps(body))
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = change(node[path[-1]])
    return changed


def _different(value: Any, index: int, mask: int) -> Any:
    try:
        base64.b64decode(value, validate=True)
        return flip_base64(value, index, mask)
    except ValueError:
        return flip(value.encode(), index, mask).decode("latin-1")


@FUZZ
@given(st.sampled_from(sorted(BODIES)), st.data(), positions, masks)
def test_a_changed_bound_field_never_verifies_even_when_logged(name: str, data: st.DataObject, index: int,
                                                              mask: int) -> None:
    body, logged, paths = BODIES[name]
    path = data.draw(st.sampled_from([*paths, ("kind",), ("apiVersion",)]))
    changed = _set(body, path, lambda value: _different(value, index, mask))
    # The log really did sign this changed entry: only the binding can reject it. A key field may still name
    # the same key (PEM is whitespace-tolerant), and a signature field may still hold the same signature (base64
    # whose unused last bits differ); only then may it pass.
    if verifies(rekor.entry_bundle(LOG, changed, 1_700_000_000), logged):
        assert ((path in KEY_FIELDS and names_the_signer(_get(changed, path)))
                or (path in SIGNATURE_FIELDS and decodes_alike(_get(body, path), _get(changed, path)))), path


def test_a_signature_written_with_other_unused_base64_bits_is_the_same_signature() -> None:
    """Go's encoding/base64 StdEncoding, which Rekor's and cosign's types decode with, is not Strict: it ignores
    the unused bits of the last character, and so does Python's b64decode. A body whose signature text differs
    only there records the same signature."""
    signature = bytes(range(70))  # 70 bytes: the last base64 character carries 4 unused bits
    body = rekor.hashedrekord_body(PAYLOAD, signature, PEM)
    text = body["spec"]["signature"]["content"]
    assert text.endswith("==")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    body["spec"]["signature"]["content"] = text[:-3] + alphabet[alphabet.index(text[-3]) ^ 0b0001] + "=="
    assert body["spec"]["signature"]["content"] != text
    assert verifies(rekor.entry_bundle(LOG, body, 1_700_000_000), LoggedSignature(signature, PAYLOAD,
                                                                                  SIGNER.public_key()))


KEY_FIELDS = {("spec", "signature", "publicKey", "content"), ("spec", "publicKey"),
              ("spec", "content", "envelope", "signatures", 0, "publicKey"), ("spec", "signatures", 0, "verifier")}
SIGNATURE_FIELDS = {("spec", "signature", "content"), ("spec", "content", "envelope", "signatures", 0, "sig"),
                    ("spec", "signatures", 0, "signature")}


def decodes_alike(original: str, changed: str) -> bool:
    """Both texts decode to the same bytes, once or, as intoto 0.0.2 stores a signature, twice."""
    a: str | bytes = original
    b: str | bytes = changed
    with contextlib.suppress(ValueError):
        while a != b:
            a, b = base64.b64decode(a, validate=True), base64.b64decode(b, validate=True)
        return True
    return False


def _get(body: dict[str, Any], path: tuple[str | int, ...]) -> Any:
    node: Any = body
    for key in path:
        node = node[key]
    return node


def names_the_signer(value: str) -> bool:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        return rekor.key_id(load_pem_public_key(base64.b64decode(value))) == rekor.key_id(SIGNER.public_key())
    except ValueError:
        return False


@FUZZ
@given(st.text(max_size=64))
def test_the_dsse_envelope_hash_is_not_bound(value: str) -> None:
    body, logged, _ = BODIES["dsse"]
    changed = _set(body, ("spec", "envelopeHash", "value"), lambda _old: value)
    assert verifies(rekor.entry_bundle(LOG, changed, 1_700_000_000), logged)


@FUZZ
@given(st.integers() | st.floats(allow_nan=False) | st.text(max_size=10), st.integers() | st.text(max_size=10))
def test_odd_integrated_times_and_indexes_are_domain_errors(integrated: Any, log_index: Any) -> None:
    entry = {"body": base64.b64encode(to_json(BODIES["hashedrekord"][0])).decode(), "integratedTime": integrated,
             "logID": rekor.key_id(LOG.public_key()), "logIndex": log_index}
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    text = json.dumps({"SignedEntryTimestamp": base64.b64encode(cosign.sign(LOG, canonical)).decode(),
                       "Payload": entry})
    with contextlib.suppress(TlogError):
        verify_bundle(text, SIMPLE, REKOR)


def test_a_recorded_key_on_an_unknown_curve_is_a_domain_error() -> None:
    # Found by the test above: one bit in the curve OID made key loading raise UnsupportedAlgorithm.
    body, logged, _ = BODIES["dsse"]
    changed = _set(body, ("spec", "signatures", 0, "verifier"), lambda value: flip_base64(value, 47, 1))
    assert b"IJoZIzj0" in base64.b64decode(changed["spec"]["signatures"][0]["verifier"])
    assert not verifies(rekor.entry_bundle(LOG, changed, 1_700_000_000), logged)
