"""Deliver constraints once Gatekeeper serves their kinds, and remove the ones a release no longer renders.

A constraint's kind exists only after Gatekeeper has processed its ConstraintTemplate, so a plain
`helm install` cannot create constraints with the rest of the chart. A post-install/upgrade Job runs this
instead: wait for the kinds, server-side apply each constraint (idempotent: an unchanged constraint is left as
it is, status and all), then delete this release's constraints that are no longer wanted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from provider.kube.client import KubeClient, KubeError

log = logging.getLogger("sigwarden.kube")

GROUP_VERSION = "constraints.gatekeeper.sh/v1beta1"
FIELD_MANAGER = "sigwarden-constraints"
RELEASE_LABEL = "app.kubernetes.io/instance"


class ConstraintError(RuntimeError):
    """A constraint could not be delivered; the message names it and says why."""


@dataclass
class Delivery:
    """What one run did."""

    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def served_kinds(client: KubeClient) -> dict[str, str]:
    """Constraint kind → resource plural, as the API server's discovery lists them now."""
    found = client.get(f"/apis/{GROUP_VERSION}") or {}
    return {r["kind"]: r["name"] for r in found.get("resources") or [] if "/" not in r.get("name", "/")}


def wait_for_kinds(client: KubeClient, kinds: set[str], timeout: float, poll: float = 2.0,
                   sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """Poll discovery until every kind is served; raises ConstraintError naming the missing ones."""
    deadline = time.monotonic() + timeout
    while True:
        served = served_kinds(client)
        missing = sorted(kinds - set(served))
        if not missing:
            return served
        if time.monotonic() >= deadline:
            raise ConstraintError(f"Gatekeeper does not serve {', '.join(missing)} after {timeout:.0f}s: is "
                                  "Gatekeeper running, and are the ConstraintTemplates created without errors? "
                                  "(kubectl get constrainttemplates -o yaml shows their status)")
        log.info("waiting for constraint kinds", extra={"missing": missing})
        sleep(poll)


def _check(doc: Any, index: int) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("apiVersion") != GROUP_VERSION or not doc.get("kind"):
        raise ConstraintError(f"document {index} is not a {GROUP_VERSION} constraint")
    if not (doc.get("metadata") or {}).get("name"):
        raise ConstraintError(f"document {index} ({doc['kind']}) has no metadata.name")
    return doc


def deliver(client: KubeClient, documents: list[Any], release: str, managed_kinds: set[str],
            timeout: float = 240.0, sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """Apply `documents` and prune this release's constraints of `managed_kinds` that are not among them."""
    constraints = [_check(doc, i) for i, doc in enumerate(documents)]
    for doc in constraints:
        labels = doc.setdefault("metadata", {}).setdefault("labels", {})
        if labels.get(RELEASE_LABEL, release) != release:
            raise ConstraintError(f"{doc['kind']}/{doc['metadata']['name']} is labelled for release "
                                  f"{labels[RELEASE_LABEL]!r}, not {release!r}")
        labels[RELEASE_LABEL] = release
    wanted = {doc["kind"] for doc in constraints}
    served = wait_for_kinds(client, wanted, timeout, sleep=sleep) if wanted else served_kinds(client)
    done = Delivery()
    for doc in constraints:
        name = doc["metadata"]["name"]
        client.apply(f"/apis/{GROUP_VERSION}/{served[doc['kind']]}/{quote(name)}", doc, FIELD_MANAGER)
        done.applied.append(f"{doc['kind']}/{name}")
    keep = {(doc["kind"], doc["metadata"]["name"]) for doc in constraints}
    for kind in sorted(managed_kinds | wanted):
        if kind not in served:
            continue  # template gone: Gatekeeper already removed the kind and its constraints
        path = f"/apis/{GROUP_VERSION}/{served[kind]}"
        listed = client.get(path, params={"labelSelector": f"{RELEASE_LABEL}={release}"}) or {}
        for item in listed.get("items") or []:
            name = item["metadata"]["name"]
            if (kind, name) in keep:
                continue
            try:
                client.request("DELETE", f"{path}/{quote(name)}")
            except KubeError as exc:
                if exc.status != 404:
                    raise
            done.deleted.append(f"{kind}/{name}")
    return done
