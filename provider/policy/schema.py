"""Validate a constraint against its template's schema, as the Kubernetes API server would.

Gatekeeper turns a template's `spec.crd.spec.validation.openAPIV3Schema` into the `spec.parameters` schema of the
constraint CRD (frameworks constraint/pkg/client/crds/schema.go, CreateSchema), beside `match`,
`enforcementAction` and `scopedEnforcementActions`. The API server then refuses a value of the wrong type, and
kubectl (strict field validation, the default since Kubernetes 1.25) refuses a field the schema does not declare.
Templates before `templates.gatekeeper.sh/v1` default to `legacySchema: true`, for which Gatekeeper marks every
object of the schema `x-kubernetes-preserve-unknown-fields` (frameworks constraint/pkg/schema/transform.go,
AddPreserveUnknownFields): an undeclared parameter is kept, and the policy never reads it. That case is a warning
here; everything the API server would refuse is an error, so `admit` and `policy test` never accept a constraint
that `kubectl apply` would not.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# The constraint's spec fields besides parameters (frameworks CreateSchema); `spec` itself keeps no unknown field.
SPEC_FIELDS = ("match", "enforcementAction", "scopedEnforcementActions", "parameters")
_TYPES = {"object": "an object", "array": "a list", "string": "a string", "boolean": "a boolean",
          "integer": "an integer", "number": "a number"}


@dataclass(frozen=True)
class SchemaFinding:
    """One field of a constraint the API server would refuse (`fatal`) or keep without meaning (a warning)."""

    path: str
    problem: str
    fatal: bool


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _type_ok(expected: str, value: Any, schema: Mapping[str, Any]) -> bool:
    actual = _kind_of(value)
    if schema.get("x-kubernetes-int-or-string") and actual in ("integer", "string"):
        return True
    return actual == expected or (expected == "number" and actual == "integer")


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, (Mapping, list)) else _TYPES.get(_kind_of(value), "a value")
    return text if len(text) <= 60 else text[:57] + "..."


class _Walker:
    """Walks a value and its structural schema, collecting findings (unknown fields as unknown, not yet judged)."""

    def __init__(self) -> None:
        self.findings: list[SchemaFinding] = []
        self.unknown: list[tuple[str, tuple[str, ...]]] = []  # (path, the fields declared beside it)

    def walk(self, schema: Mapping[str, Any], value: Any, path: str) -> None:
        if value is None:
            return  # nulls of non-nullable fields are pruned before validation
        expected = schema.get("type")
        if isinstance(expected, str) and expected and not _type_ok(expected, value, schema):
            self.findings.append(SchemaFinding(path, f"must be {_TYPES.get(expected, expected)}, got "
                                                     f"{_TYPES.get(_kind_of(value), _kind_of(value))} "
                                                     f"{_shown(value)}", True))
            return
        enum = schema.get("enum")
        if isinstance(enum, list) and value not in enum:
            self.findings.append(SchemaFinding(path, f"unsupported value {_shown(value)}: supported values "
                                                     f"{', '.join(map(repr, enum))}", True))
        self._bounds(schema, value, path)
        if isinstance(value, Mapping):
            self._object(schema, value, path)
        elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
            for index, item in enumerate(value):
                self.walk(schema["items"], item, f"{path}[{index}]")

    def _bounds(self, schema: Mapping[str, Any], value: Any, path: str) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(schema.get("minimum"), (int, float)) and value < schema["minimum"]:
                self.findings.append(SchemaFinding(path, f"must be at least {schema['minimum']}, got {value}", True))
            if isinstance(schema.get("maximum"), (int, float)) and value > schema["maximum"]:
                self.findings.append(SchemaFinding(path, f"must be at most {schema['maximum']}, got {value}", True))
        if isinstance(value, list) and isinstance(schema.get("minItems"), int) and len(value) < schema["minItems"]:
            self.findings.append(SchemaFinding(path, f"must have at least {schema['minItems']} items", True))

    def _object(self, schema: Mapping[str, Any], value: Mapping[str, Any], path: str) -> None:
        properties = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
        extra = schema.get("additionalProperties")
        for name in schema.get("required") or []:
            if name not in value:
                self.findings.append(SchemaFinding(f"{path}.{name}", "required value is missing", True))
        for key, item in value.items():
            if key in properties and isinstance(properties[key], Mapping):
                self.walk(properties[key], item, f"{path}.{key}")
            elif isinstance(extra, Mapping):
                self.walk(extra, item, f"{path}.{key}")
            elif not (schema.get("x-kubernetes-preserve-unknown-fields") or extra is True):
                self.unknown.append((f"{path}.{key}", tuple(properties)))


def _suggestion(path: str, declared: Iterable[str]) -> str:
    name = path.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(name, list(declared), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def constraint_findings(kind: str, api_version: str, parameters_schema: Mapping[str, Any] | None,
                        legacy_schema: bool, spec: Mapping[str, Any]) -> list[SchemaFinding]:
    """What the API server would say about a constraint's `spec`, given its template's schema and legacySchema."""
    walker = _Walker()
    for key in spec:
        if key not in SPEC_FIELDS:
            walker.findings.append(SchemaFinding(
                f"spec.{key}", f"unknown field: kubectl's strict field validation refuses it (a constraint's spec "
                               f"has {', '.join(SPEC_FIELDS)}){_suggestion(key, SPEC_FIELDS)}", True))
    walker.walk({"type": "string"}, spec.get("enforcementAction"), "spec.enforcementAction")
    parameters = spec.get("parameters")
    if parameters_schema is None and legacy_schema:
        return walker.findings  # no schema at all: every parameter is kept, and the policy may read any of them
    if parameters_schema is None:
        if parameters not in (None, {}):
            walker.findings.append(SchemaFinding(
                "spec.parameters", f"unknown field: the template {kind} ({api_version}) declares no parameters "
                                   "schema and no legacySchema, so the constraint CRD has no parameters field and "
                                   "kubectl's strict field validation refuses it", True))
        return walker.findings
    walker.walk(parameters_schema or {}, parameters, "spec.parameters")
    for path, declared in walker.unknown:
        hint = _suggestion(path, declared)
        if legacy_schema:
            walker.findings.append(SchemaFinding(
                path, f"unknown field, kept: the template {kind} is {api_version or 'unversioned'} with legacySchema "
                      "(the default before templates.gatekeeper.sh/v1), so the API server keeps parameters it does "
                      f"not declare, and the policy will not read this one{hint}", False))
        else:
            walker.findings.append(SchemaFinding(
                path, f"unknown field: the template {kind} ({api_version}) does not declare it, and kubectl's strict "
                      f"field validation refuses it{hint}", True))
    return walker.findings


def constraint_problems(template: Any, constraint: Any) -> tuple[list[str], list[str]]:
    """Errors (what the API server refuses) and warnings (kept without meaning) for one constraint of a template,
    each a line naming the file, the constraint and the field."""
    errors, warnings = [], []
    for finding in constraint_findings(template.kind, template.api_version, template.schema, template.legacy_schema,
                                       constraint.spec):
        line = f"{constraint.source}: {constraint.kind} {constraint.name}: {finding.path}: {finding.problem}"
        (errors if finding.fatal else warnings).append(line)
    return errors, warnings
