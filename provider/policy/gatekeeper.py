"""Evaluate ConstraintTemplates and constraints on objects the way Gatekeeper does.

The Rego runs in regorus (Gatekeeper's v0 dialect); this module only emulates what Gatekeeper does around
it: the review input, constraint `match`, and enforcement actions. Each emulated rule is listed in
docs/writing-policies.md with the Gatekeeper behaviour it follows.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regorus
import yaml

from provider import yamlerrors
from provider.policy.external import ExternalData
from provider.policy.schema import constraint_problems

VALIDATION_POINT = "validation.gatekeeper.sh"
AUDIT_POINT = "audit.gatekeeper.sh"
ACTIONS = ("deny", "dryrun", "warn")


class PolicyError(ValueError):
    """A template, constraint or object that cannot be used; says which file and why."""


@dataclass(frozen=True)
class Template:
    kind: str
    package: str
    rego: str
    libs: tuple[str, ...]
    source: str
    api_version: str = "templates.gatekeeper.sh/v1"
    schema: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)  # openAPIV3Schema
    legacy_schema: bool = False


@dataclass(frozen=True)
class Constraint:
    kind: str
    name: str
    enforcement_action: str
    scoped_actions: tuple[tuple[str, tuple[str, ...]], ...]
    match: Mapping[str, Any]
    parameters: Mapping[str, Any]
    source: str
    spec: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)  # as written, for validation

    def actions_at(self, point: str) -> tuple[str, ...]:
        """The enforcement actions that apply at an enforcement point (scoped constraints may have several)."""
        if self.enforcement_action != "scoped":
            return (self.enforcement_action,)
        return tuple(action for action, points in self.scoped_actions if point in points or "*" in points)


@dataclass(frozen=True)
class Violation:
    constraint: Constraint
    message: str
    details: Any = None


@dataclass
class Review:
    """Gatekeeper's `input.review` for one object."""

    object: dict[str, Any]
    operation: str = "CREATE"  # "" for audit reviews, which carry no admission operation
    old_object: dict[str, Any] | None = None
    sub_resource: str = ""  # e.g. "ephemeralcontainers" for kubectl debug's UPDATE of pods/ephemeralcontainers
    user_info: dict[str, Any] = field(default_factory=lambda: {"username": "sigwarden-admit"})

    def to_input(self) -> dict[str, Any]:
        api_version = self.object.get("apiVersion", "v1")
        group, _, version = api_version.rpartition("/")
        metadata = self.object.get("metadata") or {}
        review: dict[str, Any] = {
            "kind": {"group": group, "version": version, "kind": self.object.get("kind", "")},
            "object": self.object, "name": metadata.get("name", ""),
            "namespace": metadata.get("namespace", ""), "userInfo": self.user_info,
        }
        if self.operation:
            review["operation"] = self.operation
        if self.old_object is not None:
            review["oldObject"] = self.old_object
        if self.sub_resource:
            review["subResource"] = self.sub_resource
        return review


def load_documents(paths: Iterable[Path]) -> list[tuple[dict[str, Any], str]]:
    """Every YAML document in the files and directories given, with where it came from (`kind: List` unrolled).

    A file named on its own must hold Kubernetes objects (mappings), as `kubectl apply -f` requires; files found in
    a directory may also hold other YAML, which is skipped.
    """
    found: list[tuple[dict[str, Any], str]] = []
    for path in paths:
        named = not path.is_dir()
        files = [path] if named else sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
        for file in files:
            try:
                documents = list(yaml.safe_load_all(file.read_text()))
            except OSError as exc:
                raise PolicyError(f"{file}: cannot read: {exc.strerror or exc}") from None
            except UnicodeDecodeError as exc:
                raise PolicyError(f"{file}: not UTF-8 text (byte {exc.start})") from None
            except yaml.YAMLError as exc:
                raise PolicyError(yamlerrors.describe(file, exc)) from None
            for number, doc in enumerate(documents, 1):
                if not isinstance(doc, dict):
                    if named and doc is not None:
                        raise PolicyError(f"{file}: document {number} is a {type(doc).__name__}, not a Kubernetes "
                                          "object (a mapping with apiVersion and kind)")
                    continue
                items = doc.get("items") if str(doc.get("kind", "")).endswith("List") else None
                found.extend((item, str(file)) for item in (items if isinstance(items, list) else [doc]))
    return found


def _rego_error(exc: Exception, template: Template, name: str, doing: str = "") -> PolicyError:
    """regorus reports `--> file:line:col` and `error: …` among a backtrace: keep those two, as one line."""
    text = str(exc)
    position = re.search(r"-->\s*(\S+?):(\d+):(\d+)", text)
    problem = re.search(r"error: (.+?)(?:\s+Stack backtrace:|$)", text, re.MULTILINE)
    if position and not name:  # the file regorus names is "<kind>.<part>.rego"
        name = position[1].removeprefix(f"{template.kind}.").removesuffix(".rego")
    where = f"{name} line {position[2]}:{position[3]}" if position else name
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return PolicyError(f"{template.source}: {template.kind}: Rego error{doing} in {where}: "
                       f"{' '.join((problem[1] if problem else first).split())}")


def namespaces_from(paths: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """Namespace objects by name (for namespaceSelector), from any files or directories."""
    return {d["metadata"]["name"]: d for d, _ in load_documents(paths)
            if d.get("kind") == "Namespace" and isinstance(d.get("metadata"), dict) and d["metadata"].get("name")}


def parse_template(doc: dict[str, Any], source: str) -> Template:
    try:
        kind = doc["spec"]["crd"]["spec"]["names"]["kind"]
        target = doc["spec"]["targets"][0]
        rego = target["rego"]
    except (KeyError, IndexError, TypeError):
        raise PolicyError(f"{source}: ConstraintTemplate needs spec.crd.spec.names.kind and a target with rego") \
            from None
    package = next((line.split(None, 1)[1].strip() for line in rego.splitlines() if line.startswith("package ")),
                   None)
    if not package:
        raise PolicyError(f"{source}: template {kind} has no package line")
    api_version = str(doc.get("apiVersion", ""))
    validation = doc["spec"]["crd"]["spec"].get("validation") or {}
    schema = validation.get("openAPIV3Schema") if isinstance(validation, dict) else None
    legacy = validation.get("legacySchema") if isinstance(validation, dict) else None
    # frameworks apis/templates: legacySchema defaults to false in v1 and to true in v1beta1 and v1alpha1.
    if not isinstance(legacy, bool):
        legacy = not api_version.endswith("/v1")
    return Template(kind, package, rego, tuple(target.get("libs") or ()), source, api_version,
                    schema if isinstance(schema, dict) else None, legacy)


def parse_constraint(doc: dict[str, Any], source: str) -> Constraint:
    spec = doc.get("spec") or {}
    action = spec.get("enforcementAction", "deny")
    if action not in (*ACTIONS, "scoped"):
        raise PolicyError(f"{source}: enforcementAction {action!r} is not deny, dryrun, warn or scoped")
    scoped = []
    for entry in spec.get("scopedEnforcementActions") or []:
        points = tuple(p.get("name", "") for p in entry.get("enforcementPoints") or [])
        scoped.append((entry.get("action", ""), points))
    if action == "scoped" and not scoped:
        raise PolicyError(f"{source}: enforcementAction scoped needs scopedEnforcementActions")
    return Constraint(doc["kind"], (doc.get("metadata") or {}).get("name", ""), action, tuple(scoped),
                      spec.get("match") or {}, spec.get("parameters") or {}, source, spec)


class PolicySet:
    """Templates and constraints, evaluated with regorus and a real external_data."""

    def __init__(self, templates: Sequence[Template], constraints: Sequence[Constraint],
                 external_data: ExternalData, namespaces: Mapping[str, dict[str, Any]] | None = None) -> None:
        self.templates = {t.kind: t for t in templates}
        self.constraints = list(constraints)
        self.external_data = external_data
        self.namespaces = dict(namespaces or {})
        for constraint in self.constraints:
            if constraint.kind not in self.templates:
                raise PolicyError(f"{constraint.source}: no ConstraintTemplate defines kind {constraint.kind}")
        self._engines = {kind: self._engine(t) for kind, t in self.templates.items()}

    @classmethod
    def from_paths(cls, paths: Iterable[Path], external_data: ExternalData,
                   namespace_paths: Iterable[Path] = ()) -> PolicySet:
        templates, constraints = [], []
        for doc, source in load_documents(paths):
            if doc.get("kind") == "ConstraintTemplate":
                templates.append(parse_template(doc, source))
            elif str(doc.get("apiVersion", "")).startswith("constraints.gatekeeper.sh/"):
                constraints.append(parse_constraint(doc, source))
        return cls(templates, constraints, external_data, namespaces_from(namespace_paths))

    def _engine(self, template: Template) -> regorus.Engine:
        engine = regorus.Engine()
        engine.set_rego_v0(True)
        engine.add_extension("external_data", 1, self.external_data)
        sources = [(f"libs[{index}]", lib) for index, lib in enumerate(template.libs)]
        for name, rego in [*sources, ("rego", template.rego)]:
            try:
                engine.add_policy(f"{template.kind}.{name}.rego", rego)
            except RuntimeError as exc:
                raise _rego_error(exc, template, name) from None
        return engine

    def matching(self, obj: Mapping[str, Any]) -> list[Constraint]:
        """The constraints whose `match` selects `obj`."""
        return [c for c in self.constraints if matches(c.match, obj, self.namespaces)]

    def evaluate(self, review: Review, constraints: Sequence[Constraint] | None = None) -> list[Violation]:
        """Violations of the given constraints (default: every matching one), whatever their enforcement action.

        Constraints passed in are taken as already matched.
        """
        violations = []
        for constraint in constraints if constraints is not None else self.matching(review.object):
            engine = self._engines[constraint.kind]
            template = self.templates[constraint.kind]
            engine.set_input({"review": review.to_input(), "parameters": dict(constraint.parameters)})
            try:
                raw = json.loads(engine.eval_rule_as_json(f"data.{template.package}.violation"))
            except RuntimeError as exc:  # a runtime error in the Rego, or raised by external_data
                raise _rego_error(exc, template, "", f" evaluating constraint {constraint.name}") from None
            for entry in raw or []:
                violations.append(Violation(constraint, str(entry.get("msg", "")), entry.get("details")))
        return violations


def check_constraints(templates: Iterable[Template], constraints: Iterable[Constraint]) -> list[str]:
    """Refuse (PolicyError, the first error) a constraint the API server would refuse for its template's schema;
    return the warnings for parameters it would keep without meaning (legacySchema templates)."""
    by_kind = {t.kind: t for t in templates}
    warnings = []
    for constraint in constraints:
        if constraint.kind not in by_kind:
            continue
        errors, found = constraint_problems(by_kind[constraint.kind], constraint)
        if errors:
            raise PolicyError(errors[0] + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
        warnings.extend(found)
    return warnings


# --- match (Gatekeeper's `spec.match`) ---------------------------------------------------------------------

def matches(match: Mapping[str, Any], obj: Mapping[str, Any], namespaces: Mapping[str, dict[str, Any]]) -> bool:
    metadata = obj.get("metadata") or {}
    kind = obj.get("kind", "")
    group = str(obj.get("apiVersion", "v1")).rpartition("/")[0]
    namespace = metadata.get("namespace", "") if kind != "Namespace" else metadata.get("name", "")
    kinds = match.get("kinds") or []
    if kinds and not any(_in(group, k.get("apiGroups") or ["*"]) and _in(kind, k.get("kinds") or ["*"])
                         for k in kinds):
        return False
    scope = match.get("scope", "*")
    cluster_scoped = kind == "Namespace" or not metadata.get("namespace")
    if (scope == "Namespaced" and cluster_scoped) or (scope == "Cluster" and not cluster_scoped):
        return False
    if match.get("name") and not fnmatch.fnmatchcase(metadata.get("name", ""), match["name"]):
        return False
    if match.get("namespaces") and not (namespace and _glob_any(namespace, match["namespaces"])):
        return False
    if match.get("excludedNamespaces") and namespace and _glob_any(namespace, match["excludedNamespaces"]):
        return False
    if match.get("labelSelector") and not selects(match["labelSelector"], metadata.get("labels") or {}):
        return False
    if match.get("namespaceSelector"):
        if kind == "Namespace":
            labels = metadata.get("labels") or {}
        elif namespace in namespaces:
            labels = (namespaces[namespace].get("metadata") or {}).get("labels") or {}
        else:
            return False  # Gatekeeper cannot select an object whose namespace it does not know
        if not selects(match["namespaceSelector"], labels):
            return False
    return True


def _in(value: str, allowed: Sequence[str]) -> bool:
    return "*" in allowed or value in allowed


def _glob_any(value: str, patterns: Sequence[str]) -> bool:
    # Gatekeeper namespace patterns: exact, or a "*" prefix/suffix wildcard.
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True
