"""SBOMs read into a bounded summary: CycloneDX JSON and SPDX 2.x JSON.

Only the fields policies need are read (format, components, licences), with plain JSON and explicit bounds:
the full object models of cyclonedx-python-lib and spdx-tools validate whole documents and cost far more
than a summary needs, and a document they reject would still have to be reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provider.content.limits import (
    MAX_COMPONENTS_READ,
    MAX_LICENSES,
    MAX_LISTED_COMPONENTS,
    ContentError,
    items,
    text,
)

NO_ASSERTION = ("NOASSERTION", "NONE", "")


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    purl: str


@dataclass(frozen=True)
class Sbom:
    format: str
    created: str
    tool: str
    component_count: int
    licenses: tuple[str, ...]
    components: tuple[Component, ...]
    licenses_truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"format": self.format, "created": self.created, "tool": self.tool,
                "componentCount": self.component_count, "licenses": list(self.licenses),
                "licensesTruncated": self.licenses_truncated,
                "components": [{"name": c.name, "version": c.version, "purl": c.purl} for c in self.components]}


def _bounded(licenses: dict[str, None]) -> tuple[tuple[str, ...], bool]:
    ordered = sorted(licenses)
    return tuple(ordered[:MAX_LICENSES]), len(ordered) > MAX_LICENSES


def from_cyclonedx(document: object) -> Sbom:
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        raise ContentError("not a CycloneDX JSON document (bomFormat is not \"CycloneDX\")")
    components = items(document.get("components"), "CycloneDX components", MAX_COMPONENTS_READ)
    licenses: dict[str, None] = {}
    listed = []
    for entry in components:
        if not isinstance(entry, dict):
            raise ContentError("a CycloneDX component is not a JSON object")
        for choice in items(entry.get("licenses"), "CycloneDX component licenses", 64):
            if not isinstance(choice, dict):
                continue
            licence = choice.get("license") if isinstance(choice.get("license"), dict) else {}
            # An SPDX id when there is one, else the expression, else the free-text name.
            name = text(licence.get("id")) or text(choice.get("expression")) or text(licence.get("name"))
            if name:
                licenses[name] = None
        if len(listed) < MAX_LISTED_COMPONENTS:
            listed.append(Component(text(entry.get("name")), text(entry.get("version")), text(entry.get("purl"))))
    metadata = document.get("metadata") if isinstance(document.get("metadata"), dict) else {}
    bounded, truncated = _bounded(licenses)
    return Sbom(f"CycloneDX {text(document.get('specVersion'))}".strip(), text(metadata.get("timestamp")),
                _cyclonedx_tool(metadata.get("tools")), len(components), bounded, tuple(listed), truncated)


def _cyclonedx_tool(tools: object) -> str:
    # CycloneDX 1.5 moved tools from a list to {"components": [...]}; both are in use.
    entries = tools.get("components") if isinstance(tools, dict) else tools
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        return " ".join(filter(None, (text(entries[0].get("name")), text(entries[0].get("version")))))
    return ""


def from_spdx(document: object) -> Sbom:
    if not isinstance(document, dict) or not text(document.get("spdxVersion")).startswith("SPDX-"):
        raise ContentError("not an SPDX JSON document (no spdxVersion)")
    packages = items(document.get("packages"), "SPDX packages", MAX_COMPONENTS_READ)
    licenses: dict[str, None] = {}
    listed = []
    for entry in packages:
        if not isinstance(entry, dict):
            raise ContentError("an SPDX package is not a JSON object")
        for key in ("licenseConcluded", "licenseDeclared"):
            value = text(entry.get(key))
            if value not in NO_ASSERTION:
                licenses[value] = None
        if len(listed) < MAX_LISTED_COMPONENTS:
            purl = next((text(ref.get("referenceLocator")) for ref in items(entry.get("externalRefs"),
                                                                             "SPDX externalRefs", 256)
                         if isinstance(ref, dict) and ref.get("referenceType") == "purl"), "")
            listed.append(Component(text(entry.get("name")), text(entry.get("versionInfo")), purl))
    info = document.get("creationInfo") if isinstance(document.get("creationInfo"), dict) else {}
    creators = [text(c) for c in items(info.get("creators"), "SPDX creators", 64) if text(c).startswith("Tool:")]
    bounded, truncated = _bounded(licenses)
    return Sbom(text(document.get("spdxVersion")), text(info.get("created")),
                creators[0].removeprefix("Tool:").strip() if creators else "", len(packages), bounded,
                tuple(listed), truncated)
