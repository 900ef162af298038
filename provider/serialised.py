"""Facts serialised once, when they are produced, so a warm answer is assembled from bytes.

Only the per-request members (the key, which the client chose, the reference spelling, `cached` and `traceID`)
are encoded per request, and always through the JSON encoder: a key with quotes, backslashes or control
characters cannot break out of its string.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from provider.server.protocol import RESPONSE_API_VERSION


def dumps(value: Any) -> bytes:
    """Compact JSON; non-ASCII and control characters escaped."""
    return json.dumps(value, separators=(",", ":")).encode()


def quoted(text: str) -> bytes:
    """A JSON string: the encoder's own string escaping (its C implementation), ASCII only."""
    return encode_basestring_ascii(text).encode()


@dataclass(frozen=True, slots=True)
class SerialisedFacts:
    """The members of a facts object but `reference` (it depends on the spelling asked), as JSON bytes, and
    what the metrics need without parsing them again."""

    members: bytes
    verified: bool
    authorities: tuple[str, ...]

    @classmethod
    def from_json(cls, facts_json: bytes) -> SerialisedFacts:
        return cls.of(json.loads(facts_json))

    @classmethod
    def of(cls, facts: Mapping[str, Any]) -> SerialisedFacts:
        """From the facts object as built (encoded once: no round trip through JSON text)."""
        members = {name: value for name, value in facts.items() if name != "reference"}
        return cls(dumps(members)[1:-1], bool(members.get("verified")), tuple(members.get("authorities") or ()))

    def spliced(self, key_json: bytes, reference_json: bytes, end: bytes) -> bytes:
        """One response item, `{"key": key, "value": facts + per-request members}`, from the key and reference
        as `quoted` gives them and the request's `ItemEnd`."""
        return b"".join((item_head(key_json, reference_json), self.members, end))


def item_head(key_json: bytes, reference_json: bytes) -> bytes:
    """A facts item up to its facts members: what depends on the key and the reference spelling only, so the
    engine's warm index keeps it per key and completes it with the facts and the request's `ItemEnd`."""
    return b"".join((b'{"key":', key_json, b',"value":{"image":', key_json, b',"reference":', reference_json, b","))


@dataclass(frozen=True, slots=True)
class ItemEnd:
    """The last members of every facts item of one request (`cached`, `traceID`), encoded once per request."""

    cached: bytes
    fresh: bytes

    @classmethod
    def of(cls, trace_id: str) -> ItemEnd:
        trace = quoted(trace_id)
        return cls(b',"cached":true,"traceID":' + trace + b"}}", b',"cached":false,"traceID":' + trace + b"}}")


def response_bytes(items: Iterable[bytes], system_error: str = "") -> bytes:
    """A ProviderResponse from pre-serialised items (the same document `provider_response` describes)."""
    return b"".join((b'{"apiVersion":', dumps(RESPONSE_API_VERSION), b',"kind":"ProviderResponse","response":'
                     b'{"idempotent":true,"items":[', b",".join(items), b'],"systemError":', dumps(system_error),
                     b"}}"))
