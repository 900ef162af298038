"""Why an object is not evaluated: Gatekeeper never sees it, or a constraint's `match` leaves it out.

Gatekeeper skips namespaces given with `--exempt-namespace`, namespaces excluded by its `Config` resource
(`spec.match[].excludedNamespaces` for the audit or webhook process) and namespaces carrying the
`admission.gatekeeper.sh/ignore` label. The match decision itself stays with `policy.gatekeeper.matches`;
this module only names the clause that said no, by asking `matches` about each clause on its own.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from provider.policy.gatekeeper import Constraint, matches

IGNORE_LABEL = "admission.gatekeeper.sh/ignore"
# The Config processes under which Gatekeeper neither audits nor admits objects of a namespace.
EXCLUDING_PROCESSES = {"*", "audit", "webhook"}
CLAUSES = ("kinds", "scope", "name", "namespaces", "excludedNamespaces", "labelSelector", "namespaceSelector")


@dataclass(frozen=True)
class NamespaceExclusion:
    pattern: str
    source: str  # what said so: the flag, or the Config resource and its processes


def config_exclusions(documents: Iterable[Mapping[str, Any]]) -> list[NamespaceExclusion]:
    """Namespace exclusions from Gatekeeper `Config` resources among the documents."""
    found = []
    for doc in documents:
        if doc.get("kind") != "Config" or not str(doc.get("apiVersion", "")).startswith("config.gatekeeper.sh/"):
            continue
        metadata = doc.get("metadata") or {}
        name = f"{metadata.get('namespace', 'gatekeeper-system')}/{metadata.get('name', 'config')}"
        for entry in (doc.get("spec") or {}).get("match") or []:
            processes = [str(p) for p in entry.get("processes") or []]
            if EXCLUDING_PROCESSES & set(processes):
                found.extend(NamespaceExclusion(str(p), f"Gatekeeper Config {name} (processes: {', '.join(processes)})")
                             for p in entry.get("excludedNamespaces") or [])
    return found


@dataclass(frozen=True)
class Exemptions:
    exclusions: tuple[NamespaceExclusion, ...]
    namespaces: Mapping[str, Mapping[str, Any]]

    @classmethod
    def build(cls, exempt_namespaces: Iterable[str], config_documents: Iterable[Mapping[str, Any]],
              namespaces: Mapping[str, Mapping[str, Any]]) -> Exemptions:
        flags = [NamespaceExclusion(p, "--exempt-namespace") for p in exempt_namespaces]
        return cls(tuple(flags + config_exclusions(config_documents)), namespaces)

    def reason(self, namespace: str) -> str:
        """Why Gatekeeper would never see objects of this namespace, or "" when it would."""
        if not namespace:
            return ""
        for exclusion in self.exclusions:
            if fnmatch.fnmatchcase(namespace, exclusion.pattern):
                return f"namespace {namespace} is exempt from Gatekeeper ({exclusion.source}: {exclusion.pattern})"
        labels = ((self.namespaces.get(namespace) or {}).get("metadata") or {}).get("labels") or {}
        if IGNORE_LABEL in labels:
            return f"namespace {namespace} carries the {IGNORE_LABEL} label: Gatekeeper's webhook skips it"
        return ""


def mismatch_reason(constraint: Constraint, obj: Mapping[str, Any],
                    namespaces: Mapping[str, dict[str, Any]]) -> str:
    """Which clause of the constraint's `match` leaves the object out, in words."""
    match = constraint.match
    metadata = obj.get("metadata") or {}
    namespace = str(metadata.get("namespace", "") or "")
    for clause in CLAUSES:
        if clause in match and not matches({clause: match[clause]}, obj, namespaces):
            return _clause_text(clause, match[clause], str(obj.get("kind", "")), namespace, namespaces)
    return "not selected by match"


def _clause_text(clause: str, value: Any, kind: str, namespace: str, namespaces: Mapping[str, Any]) -> str:
    if clause == "kinds":
        return f"kind {kind} is not in match.kinds"
    if clause == "scope":
        return f"match.scope {value} leaves out {'namespaced' if namespace else 'cluster-scoped'} objects"
    if clause == "name":
        return f"name does not match match.name {value}"
    if clause == "namespaces":
        return f"namespace {namespace or '(none)'} is not in match.namespaces"
    if clause == "excludedNamespaces":
        return f"namespace {namespace} is in match.excludedNamespaces"
    if clause == "labelSelector":
        return "labels do not satisfy match.labelSelector"
    if namespace not in namespaces:
        return f"namespace {namespace} is unknown (no Namespace object given), so match.namespaceSelector cannot " \
               "select it"
    return f"namespace {namespace} is not selected by match.namespaceSelector"
