"""Hypothesis strategies shared by the DSSE, Rekor and simple-signing fuzz tests."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# The number of examples comes from the active hypothesis profile (bounded in the normal run, larger when
# fuzzing longer); no deadline, as the machine running the suite may be slow and shared.
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
base64_text = st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode())
maybe_base64 = base64_text | json_values


def flip(data: bytes, index: int, mask: int) -> bytes:
    """`data` with the byte at `index` (modulo its length) XORed with a non-zero `mask`."""
    mutated = bytearray(data)
    mutated[index % len(mutated)] ^= mask
    return bytes(mutated)


def flip_base64(value: str, index: int, mask: int) -> str:
    """A base64 value whose decoded bytes differ from the original in one byte."""
    return base64.b64encode(flip(base64.b64decode(value), index, mask)).decode()


positions = st.integers(min_value=0, max_value=1 << 16)
masks = st.integers(min_value=1, max_value=255)


def to_json(value: Any) -> bytes:
    return json.dumps(value).encode()
