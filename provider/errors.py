"""Item error codes of the Gatekeeper protocol and the exception that carries them.

A verification that *fails* (no trusted signature) is not an error: it is facts with `verified: false`.
These errors are for operational trouble: the image cannot be found, read or reached in time.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_REFERENCE = "INVALID_REFERENCE"
    NOT_FOUND = "NOT_FOUND"
    UNAUTHORIZED = "UNAUTHORIZED"
    REGISTRY_UNAVAILABLE = "REGISTRY_UNAVAILABLE"
    TIMEOUT = "TIMEOUT"
    INTERNAL = "INTERNAL"


class ItemError(Exception):
    """An image could not be checked; `str()` is the protocol's `CODE: message`."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")
