"""Validate Gatekeeper objects against the real CRD schemas vendored in tests/crds/."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRDS = Path(__file__).resolve().parent / "crds"


def _strict(schema: Any) -> Any:
    """Unknown fields are errors here (kubectl's strict field validation), unless the CRD preserves them."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if isinstance(schema.get("pattern"), str) and schema["pattern"].startswith("^(?i)"):
            # RE2 takes inline flags anywhere; Python only at the start of the pattern.
            schema["pattern"] = "(?i)^" + schema["pattern"][5:]
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@cache
def _schemas() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in CRDS.glob("*.yaml"):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd:
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                api_version = f"{spec['group']}/{version['name']}"
                schema = _strict(version["schema"]["openAPIV3Schema"])
                # The API server validates ObjectMeta itself; CRD schemas only add limits (name length).
                schema["properties"].get("metadata", {}).pop("additionalProperties", None)
                found[(api_version, spec["names"]["kind"])] = schema
    return found


def validate_object(obj: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError unless `obj` fits its CRD's schema."""
    key = (obj["apiVersion"], obj["kind"])
    schemas = _schemas()
    if key not in schemas:
        raise KeyError(f"no CRD for {key} in {CRDS}")
    jsonschema.validate(copy.deepcopy(obj), schemas[key])


def constraint_schema(template: dict[str, Any]) -> dict[str, Any]:
    """The schema Gatekeeper generates for a template's constraint kind.

    Its `match` is Gatekeeper's shared Match type, the same one the Assign CRD embeds, so it is taken from
    there; `parameters` is the template's own openAPIV3Schema.
    """
    assign = _schemas()[("mutations.gatekeeper.sh/v1", "Assign")]
    parameters = template["spec"]["crd"]["spec"].get("validation", {}).get("openAPIV3Schema", {"type": "object"})
    scoped_action = {"type": "object", "properties": {
        "action": {"type": "string", "enum": ["deny", "dryrun", "warn"]},
        "enforcementPoints": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }}
    return _strict({"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "properties": {
        "apiVersion": {"type": "string", "enum": ["constraints.gatekeeper.sh/v1beta1", "constraints.gatekeeper.sh/v1"]},
        "kind": {"type": "string", "enum": [template["spec"]["crd"]["spec"]["names"]["kind"]]},
        "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {
            "enforcementAction": {"type": "string", "enum": ["deny", "dryrun", "warn", "scoped"]},
            "scopedEnforcementActions": {"type": "array", "items": scoped_action},
            "match": assign["properties"]["spec"]["properties"]["match"],
            "parameters": parameters,
        }},
    }})
