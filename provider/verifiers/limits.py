"""Resource bounds on what a signature may make the verifier do.

Anyone with push rights can put a signature next to an image, so the size of the work it causes is bounded
before the expensive part runs: RSA modulus size, certificate chain length and size, JSON nesting depth of
envelopes and payloads, and the packet count and decompression ratio of OpenPGP messages. Going over a
bound fails that one signature (LimitError, a ValueError), never the image.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import json
import zlib
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

MAX_RSA_BITS = 8192
MAX_CHAIN_CERTIFICATES = 10
MAX_CHAIN_BYTES = 128 * 1024
MAX_JSON_DEPTH = 64
MAX_OPENPGP_PACKETS = 64
MAX_DECOMPRESSION_RATIO = 100
MAX_DECOMPRESSED_BYTES = 8 * 1024 * 1024
# Small messages may expand past the ratio (headers compress well); this much is always allowed.
_DECOMPRESSION_FLOOR = 64 * 1024


class LimitError(ValueError):
    """A signature asks for more work than the verifier allows; the message names the bound."""


def check_public_key(key: object, what: str) -> None:
    if isinstance(key, rsa.RSAPublicKey) and key.key_size > MAX_RSA_BITS:
        raise LimitError(f"{what} has an RSA key of {key.key_size} bits, over the limit of {MAX_RSA_BITS}")


def check_certificate_chain(chain: Sequence[x509.Certificate]) -> None:
    """Bound the number and total DER size of certificates a signature carries (x5c, cosign chains)."""
    if len(chain) > MAX_CHAIN_CERTIFICATES:
        raise LimitError(f"the certificate chain has {len(chain)} certificates, over the limit of "
                         f"{MAX_CHAIN_CERTIFICATES}")
    size = sum(len(cert.public_bytes(Encoding.DER)) for cert in chain)
    if size > MAX_CHAIN_BYTES:
        raise LimitError(f"the certificate chain is {size} bytes, over the limit of {MAX_CHAIN_BYTES}")


def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
            deepest = max(deepest, depth + 1)
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
            deepest = max(deepest, depth + 1)
    return deepest


def load_json(data: bytes | str, what: str) -> Any:
    """json.loads with a nesting bound; deeper documents are a LimitError, broken ones a ValueError."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise LimitError(f"{what} nests JSON deeper than the limit of {MAX_JSON_DEPTH}") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise LimitError(f"{what} nests JSON deeper than the limit of {MAX_JSON_DEPTH}")
    return value


# --- OpenPGP ----------------------------------------------------------------------------------------------

_COMPRESSED_DATA = 8


def _dearmor(data: bytes) -> bytes:
    lines = data.decode("ascii", errors="replace").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if not line.strip() and i > 0)
    except StopIteration:
        raise LimitError("armoured OpenPGP message has no body") from None
    body = [line.strip() for line in lines[start + 1:] if line.strip() and not line.startswith(("=", "-----"))]
    try:
        return base64.b64decode("".join(body), validate=True)
    except (binascii.Error, ValueError):
        raise LimitError("armoured OpenPGP message is not base64") from None


def _body_length(data: bytes, offset: int) -> tuple[int, int, bool]:
    """A new-format length at `offset`: (length, header bytes, partial)."""
    first = data[offset]
    if first < 192:
        return first, 1, False
    if first < 224:
        return ((first - 192) << 8) + data[offset + 1] + 192, 2, False
    if first == 255:
        return int.from_bytes(data[offset + 1:offset + 5], "big"), 5, False
    return 1 << (first & 0x1F), 1, True


def _packets(data: bytes) -> list[tuple[int, bytes]]:
    """(tag, body) of each packet, bodies joined across partial lengths."""
    packets: list[tuple[int, bytes]] = []
    offset = 0
    try:
        while offset < len(data):
            if len(packets) >= MAX_OPENPGP_PACKETS:
                raise LimitError(f"the OpenPGP message has more than {MAX_OPENPGP_PACKETS} packets")
            header = data[offset]
            if not header & 0x80:
                raise LimitError("not an OpenPGP message (bad packet header)")
            if header & 0x40:
                tag, offset, body = header & 0x3F, offset + 1, b""
                while True:
                    length, used, partial = _body_length(data, offset)
                    body += data[offset + used:offset + used + length]
                    offset += used + length
                    if not partial:
                        break
            else:
                tag, kind = (header >> 2) & 0x0F, header & 0x03
                if kind == 3:
                    body, offset = data[offset + 1:], len(data)
                else:
                    size = 1 << kind
                    length = int.from_bytes(data[offset + 1:offset + 1 + size], "big")
                    body = data[offset + 1 + size:offset + 1 + size + length]
                    offset += 1 + size + length
            packets.append((tag, body))
    except IndexError:
        raise LimitError("the OpenPGP message is truncated") from None
    return packets


def _inflate(algorithm: int, compressed: bytes, allowed: int) -> bytes:
    if algorithm == 0:
        return compressed
    try:
        if algorithm in (1, 2):
            inflater = zlib.decompressobj(-15 if algorithm == 1 else 15)
            out = inflater.decompress(compressed, allowed + 1)
        elif algorithm == 3:
            out = bz2.BZ2Decompressor().decompress(compressed, allowed + 1)
        else:
            raise LimitError(f"the OpenPGP message uses unknown compression algorithm {algorithm}")
    except (zlib.error, OSError, EOFError):
        raise LimitError("the OpenPGP message's compressed data is corrupt") from None
    if len(out) > allowed:
        raise LimitError(f"the OpenPGP message decompresses to more than the limit (ratio "
                         f"{MAX_DECOMPRESSION_RATIO}:1, at most {MAX_DECOMPRESSED_BYTES} bytes)")
    return out


def check_openpgp_message(data: bytes) -> None:
    """Bound the packet count (nested compressed packets included) and the decompression of a message."""
    if data.lstrip().startswith(b"-----BEGIN PGP"):
        data = _dearmor(data.lstrip())
    # One budget for all compression layers together: nesting cannot multiply the ratio.
    budget = min(MAX_DECOMPRESSED_BYTES, max(_DECOMPRESSION_FLOOR, MAX_DECOMPRESSION_RATIO * len(data)))
    pending, seen = [data], 0
    while pending:
        for tag, body in _packets(pending.pop()):
            seen += 1
            if seen > MAX_OPENPGP_PACKETS:
                raise LimitError(f"the OpenPGP message has more than {MAX_OPENPGP_PACKETS} packets")
            if tag == _COMPRESSED_DATA:
                if not body:
                    raise LimitError("the OpenPGP message has an empty compressed data packet")
                inflated = _inflate(body[0], body[1:], budget)
                budget -= len(inflated)
                pending.append(inflated)
