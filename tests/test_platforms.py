"""Platform names in containerd's normal form: the provider's (facts `platform`) and the Rego library's
(`lib.sigwarden.platforms`, for the constraint's `platforms:`) run against containerd's own table.

The table is containerd/platforms `platforms_test.go`, TestParseSelector and TestParseSelectorInvalid
(tests/vectors/containerd/, see SOURCES); the rules are `database.go`, normalizeOS and normalizeArch.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from provider.stores.manifests import platforms_of
from provider.stores.platforms import normalized_platform
from tests.helpers import VECTORS, rego_library

TABLE = json.loads((VECTORS / "containerd" / "parse-selector.json").read_text())
ROWS = [(row["input"], platform) for row in TABLE["valid"] for platform in [row["expected"], *row["matches"]]]


REGO = rego_library()


def rego(query: str) -> Any:
    rows = REGO.eval_query(f"x := data.lib.sigwarden.platforms.{query}").get("result") or []
    return rows[0]["bindings"]["x"] if rows else None


def as_facts(platform: dict[str, str], with_normal_form: bool) -> dict[str, Any]:
    entry = {"digest": "sha256:" + "a" * 64, "os": platform["os"], "architecture": platform["architecture"],
             "variant": platform.get("variant", ""), "platformSpecified": True, "attestationManifest": False}
    if with_normal_form:
        entry["platform"] = normalized_platform(entry["os"], entry["architecture"], entry["variant"])
    return entry


@pytest.mark.parametrize(("spec", "platform"), ROWS)
def test_every_platform_containerd_matches_is_one_normal_form(spec: str, platform: dict[str, str]) -> None:
    # TestParseSelector: NewMatcher(Parse(input)) matches the expected platform and every `matches` entry.
    for with_normal_form in (True, False):  # the provider's normal form, and the library's for older facts
        assert rego(f"matches({json.dumps(as_facts(platform, with_normal_form))}, {json.dumps(spec)})") is True
    expected = next(row["expected"] for row in TABLE["valid"] if row["input"] == spec)
    got = normalized_platform(platform["os"], platform["architecture"], platform.get("variant", ""))
    want = normalized_platform(expected["os"], expected["architecture"], expected.get("variant", ""))
    assert got == want
    assert rego(f'normalized({json.dumps(platform["os"])}, {json.dumps(platform["architecture"])}, '
                f'{json.dumps(platform.get("variant", ""))})') == got


@pytest.mark.parametrize("spec", TABLE["invalid"])
def test_what_containerd_cannot_parse_is_not_a_platform_name(spec: str) -> None:
    # TestParseSelectorInvalid: Parse returns an error.
    assert rego(f"invalid({json.dumps(spec)})") is True


@pytest.mark.parametrize(("spec", "platform"), [
    ("linux/arm/v6", {"os": "linux", "architecture": "arm", "variant": "v7"}),
    ("linux/arm/v7", {"os": "linux", "architecture": "armel"}),
    ("linux/amd64", {"os": "linux", "architecture": "arm64"}),
    ("windows/amd64", {"os": "linux", "architecture": "amd64"}),
])
def test_other_platforms_do_not_match(spec: str, platform: dict[str, str]) -> None:
    assert rego(f"matches({json.dumps(as_facts(platform, True))}, {json.dumps(spec)})") is None


def test_a_name_without_a_variant_names_every_variant() -> None:
    # Deliberately wider than containerd's matcher (linux/arm is arm/v7 there): every arm manifest a node
    # listed as linux/arm could run must be signed.
    for variant in ("v5", "v6", "v7", "v8"):
        platform = {"os": "linux", "architecture": "arm", "variant": variant}
        assert rego(f'matches({json.dumps(as_facts(platform, True))}, "linux/arm")') is True


def test_index_entries_without_a_platform_are_kept_and_match_every_name() -> None:
    index = {"manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": "sha256:" + "b" * 64, "size": 1}]}
    (entry,) = platforms_of(index)
    assert entry.specified is False and (entry.os, entry.architecture) == ("", "")
    facts = {"digest": entry.digest, "os": "", "architecture": "", "variant": "", "platform": "",
             "platformSpecified": False, "attestationManifest": False}
    for spec in ("linux/amd64", "linux/arm64", "windows/amd64"):
        assert rego(f"matches({json.dumps(facts)}, {json.dumps(spec)})") is True
    assert rego(f"name({json.dumps(facts)})") == "(no platform in the index)"
