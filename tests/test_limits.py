"""Resource bounds: a signature that asks for too much work fails on its own, with the bound named."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import pytest

from provider.verifiers import limits
from provider.verifiers.dsse import parse_envelope, parse_statement
from tests.helpers import VECTORS
from tests.test_simplesigning import GPG_KEY, gpg_vector, verify

REPOSITORY = "testing/manifest"


def lookaside_verdict(tmp_path: Path, signature: bytes) -> dict:
    """Facts for the containers-image GPG image whose only lookaside signature is `signature`."""
    digest = gpg_vector(tmp_path, REPOSITORY)
    (tmp_path / "sigstore" / f"{REPOSITORY}@{digest.replace(':', '=')}" / "signature-1").write_bytes(signature)
    item = verify(tmp_path, f"{REPOSITORY}:latest", {"publicKeyData": GPG_KEY,
                                                     "lookaside": f"file://{tmp_path}/sigstore"})
    assert not item.error, item.error  # one bad signature never becomes an item error
    assert item.value["verified"] is False
    (result,) = item.value["signatures"]
    return result


def new_format_packet(tag: int, body: bytes) -> bytes:
    return bytes([0xC0 | tag, 0xFF]) + len(body).to_bytes(4, "big") + body


def test_openpgp_decompression_bomb_is_refused(tmp_path: Path) -> None:
    bomb = new_format_packet(8, b"\x02" + zlib.compress(bytes(20 * 1024 * 1024), 9))
    assert len(bomb) < 30_000
    result = lookaside_verdict(tmp_path, bomb)
    assert result["reason"].startswith("OpenPGP signature refused: the OpenPGP message decompresses to more than")


def test_openpgp_packet_count_is_bounded(tmp_path: Path) -> None:
    markers = b"\xa8\x03PGP" * (limits.MAX_OPENPGP_PACKETS + 1)  # old-format marker packets
    result = lookaside_verdict(tmp_path, markers)
    assert result["reason"] == (f"OpenPGP signature refused: the OpenPGP message has more than "
                                f"{limits.MAX_OPENPGP_PACKETS} packets")
    # Hidden inside a compressed packet, they count as well.
    nested = new_format_packet(8, b"\x01" + zlib.compress(markers)[2:-4])
    assert "more than 64 packets" in lookaside_verdict(tmp_path / "nested", nested)["reason"]


def test_real_openpgp_signature_is_within_bounds() -> None:
    limits.check_openpgp_message((VECTORS / "containers-image/dir-img-valid/signature-1").read_bytes())


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deeply_nested_sigstore_json_signature_is_a_per_signature_error(tmp_path: Path) -> None:
    result = lookaside_verdict(tmp_path, b"\x00sigstore-json\n" + deep(200_000).encode())
    assert result["reason"] == f"sigstore-json signature refused: sigstore-json signature nests JSON deeper than " \
                               f"the limit of {limits.MAX_JSON_DEPTH}"
    shallow_but_over = b"\x00sigstore-json\n" + json.dumps({"payload": json.loads(deep(100))}).encode()
    assert "nests JSON deeper" in lookaside_verdict(tmp_path / "shallow", shallow_but_over)["reason"]


def test_dsse_envelope_and_statement_nesting_is_bounded() -> None:
    with pytest.raises(limits.LimitError, match="DSSE envelope nests JSON deeper than the limit of 64"):
        parse_envelope(deep(100_000).encode())
    payload = json.dumps({"subject": [], "predicateType": "x", "predicate": json.loads(deep(70))}).encode()
    with pytest.raises(limits.LimitError, match="in-toto statement nests JSON deeper"):
        parse_statement("application/vnd.in-toto+json", payload)
    fine = {"payloadType": "t", "payload": base64.b64encode(b"{}").decode(), "signatures": [{"sig": "AA=="}]}
    assert parse_envelope(json.dumps(fine).encode()).payload == b"{}"


def test_json_depth_counts_without_recursion() -> None:
    assert limits.json_depth(1) == 0 and limits.json_depth({"a": [1, {"b": []}]}) == 4
    assert limits.json_depth(json.loads(deep(500))) == 500


def test_deep_json_in_rekor_bundles_cosign_payloads_and_notation_payloads_is_a_reason() -> None:
    from provider.verifiers.cosign import COSIGN_IDENTITY, check_payload
    from provider.verifiers.notation.envelope import EnvelopeError, _json
    from provider.verifiers.rekor import TlogError, check_body

    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(TlogError):
        check_body(deep.encode(), None)  # type: ignore[arg-type]
    assert check_payload(deep.encode(), None,  # type: ignore[arg-type]
                         COSIGN_IDENTITY["ignore"]) == "payload is not a simple-signing JSON document"
    with pytest.raises(EnvelopeError, match="nests JSON deeper than the limit"):
        _json(deep, "the protected header")
