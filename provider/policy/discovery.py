"""One rule for finding templates and constraints, shared by `admit`, `audit` and `policy test`.

A path given with `--constraints` (or `--templates`) may hold ConstraintTemplates, constraints or both, in files
or directories, multi-document YAML or `kind: List`. The shipped templates are always available; a template found
in the paths replaces the shipped one of the same kind. With no paths at all, the shipped sample constraints are
used, so a fresh install can be tried without writing any.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provider import catalog
from provider.policy.gatekeeper import (
    Constraint,
    PolicyError,
    Template,
    check_constraints,
    load_documents,
    parse_constraint,
    parse_template,
)
from provider.policy.patterns import constraint_pattern_warnings


@dataclass
class Discovered:
    templates: list[Template]
    constraints: list[Constraint]
    warnings: list[str] = field(default_factory=list)


def shipped_templates() -> list[Template]:
    return _templates(load_documents(catalog.template_files()))


def _templates(documents: Iterable[tuple[dict[str, Any], str]]) -> list[Template]:
    return [parse_template(doc, source) for doc, source in documents if doc.get("kind") == "ConstraintTemplate"]


def discover(paths: Sequence[Path], namespaces: Mapping[str, Any] | None = None) -> Discovered:
    """Templates and constraints from `paths` (plus the shipped templates; the shipped samples when empty)."""
    for path in paths:
        if not path.exists():
            raise PolicyError(f"{path}: no such file or directory")
    documents = load_documents(paths or catalog.sample_constraints())
    templates = {t.kind: t for t in shipped_templates()}
    templates.update((t.kind, t) for t in _templates(documents))
    constraints = [parse_constraint(doc, source) for doc, source in documents
                   if str(doc.get("apiVersion", "")).startswith("constraints.gatekeeper.sh/")]
    if paths and not constraints:
        raise PolicyError(f"no constraints found in {', '.join(map(str, paths))}")
    warnings = [*check_constraints(templates.values(), constraints), *selector_warnings(constraints, namespaces or {}),
                *map(str, constraint_pattern_warnings(constraints))]
    return Discovered(list(templates.values()), constraints, warnings)


def selector_warnings(constraints: Iterable[Constraint], namespaces: Mapping[str, Any]) -> list[str]:
    """A namespaceSelector matches nothing when no Namespace objects were given: say so instead of staying quiet."""
    if namespaces:
        return []
    return [f"{c.source}: constraint {c.name} has a namespaceSelector but no Namespace objects were given "
            "(--namespaces): it matches no namespaced object" for c in constraints if c.match.get("namespaceSelector")]
