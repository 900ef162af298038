"""What an importer produces: a config fragment, Kubernetes objects, trust files, and a report line per field.

A value only the user can supply becomes a `TODO:` placeholder (see provider/config/placeholders.py), which
`sigwarden config check` refuses, and a report line marked for attention, which makes `--check` exit 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provider.config.placeholders import placeholder

CONSTRAINTS_GROUP = "constraints.gatekeeper.sh/"
ENFORCEMENT_ACTIONS = ("dryrun", "warn", "deny")
DEFAULT_ENFORCEMENT_ACTION = "dryrun"

# The workload kinds the shipped templates read images from; constraints match them all so a Deployment is
# refused at `kubectl apply`, not later when its ReplicaSet creates Pods.
POD_KINDS = [{"apiGroups": [""], "kinds": ["Pod", "ReplicationController"]},
             {"apiGroups": ["apps"], "kinds": ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"]},
             {"apiGroups": ["batch"], "kinds": ["Job", "CronJob"]}]


@dataclass(frozen=True)
class Finding:
    """One source field and what it became; `attention` when the user must act before the cut-over."""

    source: str  # e.g. "Verifier verifier-notation: spec.parameters.trustPolicyDoc"
    became: str
    attention: bool = False


@dataclass
class Conversion:
    """The result of one import, before it is written anywhere."""

    origin: str  # what was imported: kritis, ratify
    config: dict[str, Any] = field(default_factory=dict)  # authorities, stores, include
    kubernetes: list[dict[str, Any]] = field(default_factory=list)  # constraints, Provider objects
    files: dict[str, bytes] = field(default_factory=dict)  # path relative to the config → content
    findings: list[Finding] = field(default_factory=list)

    def done(self, source: str, became: str) -> None:
        self.findings.append(Finding(source, became))

    def attention(self, source: str, became: str) -> None:
        self.findings.append(Finding(source, became, attention=True))

    def todo(self, source: str, instruction: str) -> str:
        """A placeholder value for the config, reported for attention; returns the placeholder text."""
        self.attention(source, f"TODO in the config: {instruction}")
        return placeholder(instruction)

    def add_file(self, relative: str, content: bytes) -> str:
        self.files[relative] = content
        return relative

    def set_enforcement_action(self, action: str) -> None:
        """Every constraint written gets `action`; audit first (dryrun) is the importers' default, because a
        translated policy is only trusted once `sigwarden audit` agrees with the old system's results."""
        constraints = [o for o in self.kubernetes if str(o.get("apiVersion", "")).startswith(CONSTRAINTS_GROUP)]
        for constraint in constraints:
            constraint.setdefault("spec", {})["enforcementAction"] = action
        if constraints:
            names = ", ".join(f"{c['kind']} {c['metadata']['name']}" for c in constraints)
            self.done("(enforcement action)", f"enforcementAction: {action} on {names}" + (
                "; audit first: compare `sigwarden audit` with the old system's results, then promote to warn "
                "and deny (--enforcement-action)" if action == "dryrun" else " (--enforcement-action)"))

    @property
    def needs_attention(self) -> bool:
        return any(f.attention for f in self.findings)

    def authority_names(self) -> list[str]:
        return [a["name"] for a in self.config.get("authorities", [])]


def name_of(doc: dict[str, Any]) -> str:
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    return str(metadata.get("name") or "unnamed")


def namespace_of(doc: dict[str, Any]) -> str:
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    return str(metadata.get("namespace") or "")


def label(doc: dict[str, Any]) -> str:
    """`Kind namespace/name` as the report names a source object."""
    namespace = namespace_of(doc)
    return f"{doc.get('kind') or 'document without kind'} {namespace + '/' if namespace else ''}{name_of(doc)}"
