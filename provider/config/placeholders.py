"""Placeholders that `sigwarden import` writes where only the user can supply a value.

A placeholder is a string starting with `TODO:` followed by what to put there. Loading a config that still
holds one fails, naming the field and repeating the instruction, so a converted config never loads half-filled
(an authority whose certificate is a placeholder would otherwise verify nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from provider.config.model import ConfigError

PREFIX = "TODO:"


def placeholder(instruction: str) -> str:
    """The placeholder text for a value the user must fill in."""
    return f"{PREFIX} {instruction}"


def find_placeholders(data: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every (field, instruction) still holding a placeholder, in document order."""
    if isinstance(data, str):
        if data.startswith(PREFIX):
            yield where, data[len(PREFIX):].strip()
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from find_placeholders(value, f"{where}.{key}" if where else str(key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from find_placeholders(value, f"{where}[{index}]")


def reject_placeholders(data: Any, source: Path, where: str = "") -> None:
    """Raise a ConfigError for the first placeholder left in `data`, and count the others."""
    found = list(find_placeholders(data, where))
    if found:
        field_path, instruction = found[0]
        more = f" ({len(found) - 1} more placeholder(s) after this one)" if len(found) > 1 else ""
        raise ConfigError(source, field_path, f"placeholder left by `sigwarden import`: fill in {instruction}{more}")
