"""Run gator-style suites (`kind: Suite`) with real external data, and answer admission like Gatekeeper.

Suite files use gator's shape so users already know it: tests → template, constraint, cases → object,
assertions (`violations: yes|no|N`, optional `message` regexp). Additions: a case may set `operation` (""
for an audit review), `oldObject` and `subResource` (for UPDATE and DELETE reviews), and `inventory`
(Namespace objects for namespaceSelector).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provider.policy.external import ExternalData
from provider.policy.gatekeeper import (
    VALIDATION_POINT,
    PolicyError,
    PolicySet,
    Review,
    Violation,
    check_constraints,
    load_documents,
    parse_constraint,
    parse_template,
)


@dataclass
class CaseResult:
    test: str
    case: str
    messages: list[str]
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def _one(path: Path) -> dict[str, Any]:
    documents = [doc for doc, _ in load_documents([path])]
    if len(documents) != 1:
        raise PolicyError(f"{path}: expected exactly one object, found {len(documents)}")
    return documents[0]


def _template(path: Path) -> dict[str, Any]:
    """The template a suite names; next to its source (src.rego, meta.yaml) it is rendered from that source, so
    a suite always tests the Rego as edited, not a template.yaml not yet rebuilt."""
    from provider.policy.build import is_policy_dir, render_policy

    if path.name == "template.yaml" and is_policy_dir(path.parent):
        return dict(yaml.safe_load(render_policy(path.parent)))
    return _one(path)


def check_assertion(assertion: dict[str, Any], violations: list[Violation]) -> str:
    """Empty when the assertion holds; else what went wrong (gator's semantics)."""
    pattern = assertion.get("message")
    relevant = [v for v in violations if pattern is None or re.search(pattern, v.message)]
    expected = assertion.get("violations", "yes" if pattern is not None else None)
    about = f" matching /{pattern}/" if pattern is not None else ""
    if expected is None:
        return "assertion needs violations and/or message"
    if expected in ("yes", True):
        return "" if relevant else f"expected violations{about}, got none"
    if expected in ("no", False):
        return "" if not relevant else f"expected no violations{about}, got {len(relevant)}"
    if isinstance(expected, int):
        return "" if len(relevant) == expected else f"expected {expected} violations{about}, got {len(relevant)}"
    return f"violations must be yes, no or a number, got {expected!r}"


def find_suites(paths: Iterable[Path]) -> list[Path]:
    """Suite files: files as given, and every `kind: Suite` file under a directory (as `gator verify DIR` reads a
    directory tree); a directory without one is an error, not a silent pass."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            if not path.exists():
                raise PolicyError(f"{path}: no such file or directory")
            found.append(path)
            continue
        suites = [file for file in sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml"))
                  if any(doc.get("kind") == "Suite" for doc, _ in load_documents([file]))]
        if not suites:
            raise PolicyError(f"{path}: no suite files (kind: Suite) in this directory")
        found.extend(suites)
    return found


def run_suite(path: Path, external_data: ExternalData,
              warn: Callable[[str], None] | None = None) -> list[CaseResult]:
    """Run one suite; `warn` gets each warning `admit` would give for a test's constraint (check_constraints),
    prefixed with the suite and the test."""
    suite = _one(path)
    if suite.get("kind") != "Suite":
        raise PolicyError(f"{path}: not a Suite (kind: Suite)")
    try:
        return _run_tests(path, suite, external_data, warn or (lambda _: None))
    except KeyError as exc:
        raise PolicyError(f"{path}: a test or case has no {exc.args[0]!r}") from None
    except (TypeError, AttributeError):
        raise PolicyError(f"{path}: tests must be a list of {{name, template, constraint, cases}} and cases a list "
                          "of {name, object, assertions}") from None


def _run_tests(path: Path, suite: dict[str, Any], external_data: ExternalData,
               warn: Callable[[str], None]) -> list[CaseResult]:
    base = path.parent
    results = []
    for test in suite.get("tests") or []:
        template = parse_template(_template(base / test["template"]), test["template"])
        constraint = parse_constraint(_one(base / test["constraint"]), test["constraint"])
        # What the API server would refuse is no test case; what it would keep without meaning is a warning.
        for warning in check_constraints([template], [constraint]):
            warn(f"{path}: test {test.get('name', '')}: {warning}")
        for case in test.get("cases") or []:
            namespaces = {d["metadata"]["name"]: d for d, _ in load_documents(base / p for p in
                                                                             case.get("inventory") or [])
                          if d.get("kind") == "Namespace"}
            policies = PolicySet([template], [constraint], external_data, namespaces)
            old_object = _one(base / case["oldObject"]) if case.get("oldObject") else None
            review = Review(_one(base / case["object"]), operation=case.get("operation", "CREATE"),
                            old_object=old_object, sub_resource=case.get("subResource", ""))
            violations = policies.evaluate(review)
            problems = [p for p in (check_assertion(a, violations) for a in case.get("assertions") or []) if p]
            results.append(CaseResult(test.get("name", ""), case.get("name", ""),
                                      [v.message for v in violations], problems))
    return results


# --- admission -------------------------------------------------------------------------------------------

RESOURCES = {"Deployment": "deployment.apps", "ReplicaSet": "replicaset.apps", "StatefulSet": "statefulset.apps",
             "DaemonSet": "daemonset.apps", "Job": "job.batch", "CronJob": "cronjob.batch", "Pod": "pod",
             "ReplicationController": "replicationcontroller", "Namespace": "namespace"}


@dataclass
class Admission:
    """What Gatekeeper's validating webhook would answer for one object."""

    object: dict[str, Any]
    denied: list[Violation]
    warnings: list[Violation]
    dryrun: list[Violation]

    @property
    def allowed(self) -> bool:
        return not self.denied

    def kubectl(self, operation: str = "CREATE") -> str:
        """The lines kubectl prints for this answer."""
        lines = [f"Warning: [{v.constraint.name}] {v.message}" for v in self.warnings]
        if self.denied:
            reasons = "\n".join(f"[{v.constraint.name}] {v.message}" for v in self.denied)
            lines.append(f'Error from server: admission webhook "validation.gatekeeper.sh" denied the request: '
                         f"{reasons}")
            return "\n".join(lines)
        resource = RESOURCES.get(self.object.get("kind", ""), str(self.object.get("kind", "object")).lower())
        verb = "configured" if operation == "UPDATE" else "created"
        lines.append(f"{resource}/{(self.object.get('metadata') or {}).get('name', '')} {verb}")
        return "\n".join(lines)


def admit(policies: PolicySet, obj: dict[str, Any], operation: str = "CREATE",
          old_object: dict[str, Any] | None = None) -> Admission:
    """Evaluate every constraint on `obj` and sort the violations by their action at the webhook."""
    answer = Admission(obj, [], [], [])
    for violation in policies.evaluate(Review(obj, operation=operation, old_object=old_object)):
        actions = violation.constraint.actions_at(VALIDATION_POINT)
        if "deny" in actions:
            answer.denied.append(violation)
        elif "warn" in actions:
            answer.warnings.append(violation)
        else:
            answer.dryrun.append(violation)
    return answer
