"""Gatekeeper's external-data envelopes: validate a ProviderRequest, build a ProviderResponse."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

API_VERSIONS = ("externaldata.gatekeeper.sh/v1beta1", "externaldata.gatekeeper.sh/v1alpha1")
RESPONSE_API_VERSION = "externaldata.gatekeeper.sh/v1beta1"

# The systemError of a request refused for its own shape (malformed, over maxKeys or a size limit) starts
# with this code, so a template can tell it from an unavailable provider: allowOnError covers only the latter.
REQUEST_REFUSED = "REQUEST_REFUSED"
REFUSED_STATUSES = (400, 413, 431)


class BadRequest(ValueError):
    """The request body is not a valid ProviderRequest; the message says exactly what is wrong."""


# A ProviderRequest is 3 levels deep. Deeper bodies are refused with one message whether the JSON parser gave
# up (its recursion limit depends on the calling thread's stack) or the parsed document is merely too deep.
MAX_NESTING = 32
_TOO_DEEP = f"request body is nested more than {MAX_NESTING} levels deep"


def nesting_depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON value (a scalar is 0), without recursion."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_NESTING:  # past the limit the answer is already known
            pending.extend((child, depth + 1) for child in children)
    return deepest


def parse_provider_request(body: bytes, max_keys: int, allow_empty: bool = False) -> list[str]:
    """Return the request's keys, or raise BadRequest naming the problem.

    `allow_empty` lets an empty key through (/mutate: a blank image placeholder is answered unchanged)."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise BadRequest(_TOO_DEEP) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    # A body with fewer brackets than the limit cannot nest deeper (brackets inside strings only overcount):
    # an ordinary request skips the walk over its keys.
    if body.count(b"[") + body.count(b"{") > MAX_NESTING and nesting_depth(data) > MAX_NESTING:
        raise BadRequest(_TOO_DEEP)
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object (a ProviderRequest)")
    if data.get("apiVersion") not in API_VERSIONS:
        raise BadRequest(f"apiVersion must be one of {', '.join(API_VERSIONS)}, got {_brief(data.get('apiVersion'))}")
    if data.get("kind") != "ProviderRequest":
        raise BadRequest(f"kind must be ProviderRequest, got {_brief(data.get('kind'))}")
    request = data.get("request")
    if not isinstance(request, dict):
        raise BadRequest("request must be an object with a keys list")
    keys = request.get("keys")
    if not isinstance(keys, list):
        raise BadRequest("request.keys must be a list of image references")
    if not keys:
        raise BadRequest("request.keys is empty")
    if len(keys) > max_keys:
        raise BadRequest(f"request.keys has {len(keys)} keys, more than the limit of {max_keys}")
    for index, key in enumerate(keys):
        if not isinstance(key, str):
            raise BadRequest(f"request.keys[{index}] must be a string, got {type(key).__name__}")
        if not key and not allow_empty:
            raise BadRequest(f"request.keys[{index}] is an empty string")
    return keys


def _brief(value: Any) -> str:
    """A client's value quoted back in an error, cut short: the answer must not echo a megabyte."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def refused(message: str) -> str:
    """The systemError for a request refused as malformed or over a limit."""
    return f"{REQUEST_REFUSED}: {message}"


def provider_response(items: Sequence[dict[str, Any]] = (), system_error: str = "") -> dict[str, Any]:
    return {
        "apiVersion": RESPONSE_API_VERSION,
        "kind": "ProviderResponse",
        "response": {"idempotent": True, "items": list(items), "systemError": system_error},
    }
