"""`sigwarden audit --cluster`: what the audit reads, straight from the API server, and where its PolicyReports go.

Reading is `list` only (paginated, as kubectl does with `--chunk-size`): Namespaces, the workload kinds, the
constraint kinds Gatekeeper serves and their ConstraintTemplates. Writing is the PolicyReports alone, by
server-side apply with field manager `sigwarden`, then deleting the reports sigwarden wrote before that the new
run no longer has. The credentials are the pod's ServiceAccount, or the current context of KUBECONFIG.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from provider.kube.client import KubeClient, KubeError

PAGE = 500  # kubectl's default --chunk-size
# (API path, kind): what the audit groups into workloads by owner, Pods included.
WORKLOADS = (("/api/v1", "Pod", "pods"), ("/api/v1", "ReplicationController", "replicationcontrollers"),
             ("/apis/apps/v1", "Deployment", "deployments"), ("/apis/apps/v1", "ReplicaSet", "replicasets"),
             ("/apis/apps/v1", "StatefulSet", "statefulsets"), ("/apis/apps/v1", "DaemonSet", "daemonsets"),
             ("/apis/batch/v1", "Job", "jobs"), ("/apis/batch/v1", "CronJob", "cronjobs"))
CONSTRAINTS = "/apis/constraints.gatekeeper.sh/v1beta1"
TEMPLATES = "/apis/templates.gatekeeper.sh/v1/constrainttemplates"
GATEKEEPER_CONFIGS = "/apis/config.gatekeeper.sh/v1alpha1/configs"  # its spec.match exempts namespaces
REPORTS = "/apis/wgpolicyk8s.io/v1alpha2"
MANAGER = "sigwarden"
MANAGED_SELECTOR = "app.kubernetes.io/managed-by=sigwarden"


def list_all(client: KubeClient, path: str, kind: str, api_version: str,
             selector: str = "") -> Iterator[dict[str, Any]]:
    """Every item of a collection, page by page. A typed list's items carry no kind or apiVersion: set them."""
    token = ""
    while True:
        params = {"limit": str(PAGE)}
        if token:
            params["continue"] = token
        if selector:
            params["labelSelector"] = selector
        page = client.request("GET", path, params=params)
        for item in page.get("items") or []:
            if isinstance(item, dict):
                yield {"apiVersion": api_version, "kind": kind, **item}
        token = str((page.get("metadata") or {}).get("continue") or "")
        if not token:
            return


@dataclass
class ClusterState:
    objects: list[dict[str, Any]] = field(default_factory=list)  # Namespaces and workloads
    policies: list[dict[str, Any]] = field(default_factory=list)  # ConstraintTemplates and constraints
    constraints: list[dict[str, Any]] = field(default_factory=list)  # with their status: Gatekeeper's own audit


def read_cluster(client: KubeClient) -> ClusterState:
    state = ClusterState()
    state.objects += list_all(client, "/api/v1/namespaces", "Namespace", "v1")
    for base, kind, plural in WORKLOADS:
        api_version = base.removeprefix("/api/").removeprefix("/apis/")
        state.objects += list_all(client, f"{base}/{plural}", kind, api_version)
    try:
        state.objects += list_all(client, GATEKEEPER_CONFIGS, "Config", "config.gatekeeper.sh/v1alpha1")
    except KubeError as exc:
        if exc.status != 404:  # no Config CRD: Gatekeeper runs without one
            raise
    state.policies += list_all(client, TEMPLATES, "ConstraintTemplate", "templates.gatekeeper.sh/v1")
    discovery = client.get(CONSTRAINTS) or {}
    for resource in discovery.get("resources") or []:
        name = str(resource.get("name", ""))
        if name and "/" not in name:  # not a subresource (…/status)
            state.constraints += list_all(client, f"{CONSTRAINTS}/{quote(name)}", str(resource.get("kind", "")),
                                          "constraints.gatekeeper.sh/v1beta1")
    state.policies += state.constraints
    return state


def write_inputs(state: ClusterState, directory: Path) -> tuple[Path, Path, Path]:
    """The state as the files `audit` reads: manifests, templates and constraints, Gatekeeper's status."""
    import json

    manifests, policies, status = directory / "cluster.yaml", directory / "policies.yaml", directory / "status.json"
    manifests.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": state.objects}))
    policies.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": state.policies}))
    status.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": state.constraints}))
    return manifests, policies, status


def report_path(report: dict[str, Any]) -> str:
    namespace = (report.get("metadata") or {}).get("namespace")
    name = quote(str(report["metadata"]["name"]))
    if namespace:
        return f"{REPORTS}/namespaces/{quote(str(namespace))}/policyreports/{name}"
    return f"{REPORTS}/clusterpolicyreports/{name}"


def apply_reports(client: KubeClient, reports: list[dict[str, Any]]) -> tuple[int, int]:
    """Apply every report, then delete sigwarden's reports the run no longer has; (applied, pruned)."""
    wanted = set()
    for report in reports:
        path = report_path(report)
        client.apply(path, report, MANAGER)
        wanted.add(path)
    stale = [report_path(existing)
             for plural, kind in (("policyreports", "PolicyReport"), ("clusterpolicyreports", "ClusterPolicyReport"))
             for existing in list_all(client, f"{REPORTS}/{plural}", kind, "wgpolicyk8s.io/v1alpha2",
                                      MANAGED_SELECTOR)]
    pruned = 0
    for path in stale:
        if path not in wanted:
            try:
                client.request("DELETE", path)
                pruned += 1
            except KubeError as exc:
                if exc.status != 404:  # already gone is what pruning wants
                    raise
    return len(wanted), pruned


# --- credentials ---------------------------------------------------------------------------------------------

class KubeconfigError(ValueError):
    """A kubeconfig sigwarden cannot use; says which file and field."""


def client_from_environment(scratch: Path) -> KubeClient:
    """KUBECONFIG's current context when KUBECONFIG is set (or ~/.kube/config exists outside a pod), else the pod's
    ServiceAccount. Inline `*-data` fields are written to files in `scratch` (the caller's temporary directory)."""
    named = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    default = Path.home() / ".kube" / "config"
    if named or (not os.environ.get("KUBERNETES_SERVICE_HOST") and default.is_file()):
        return from_kubeconfig(Path(named) if named else default, scratch)
    return KubeClient.in_cluster()


def _entry(document: dict[str, Any], section: str, name: str, source: Path) -> dict[str, Any]:
    for entry in document.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return dict(entry.get(section.rstrip("s")) or {})
    raise KubeconfigError(f"{source}: {section}: no entry named {name!r} (from the current context)")


def _file(value: dict[str, Any], key: str, source: Path, scratch: Path) -> str:
    """`key` as a path (relative to the kubeconfig) or `key-data` (base64) written to `scratch`; "" if neither."""
    if value.get(f"{key}-data"):
        try:
            data = base64.b64decode(str(value[f"{key}-data"]), validate=True)
        except ValueError:
            raise KubeconfigError(f"{source}: {key}-data is not base64") from None
        handle, name = tempfile.mkstemp(dir=scratch)
        os.write(handle, data)
        os.close(handle)
        return name
    if value.get(key):
        return str((source.parent / str(value[key])).resolve())
    return ""


def from_kubeconfig(source: Path, scratch: Path) -> KubeClient:
    try:
        document = yaml.safe_load(source.read_text())
    except OSError as exc:
        raise KubeconfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError):
        raise KubeconfigError(f"{source}: not a kubeconfig (YAML)") from None
    if not isinstance(document, dict) or not document.get("current-context"):
        raise KubeconfigError(f"{source}: no current-context")
    context = _entry(document, "contexts", str(document["current-context"]), source)
    cluster = _entry(document, "clusters", str(context.get("cluster", "")), source)
    user = _entry(document, "users", str(context.get("user", "")), source)
    if cluster.get("insecure-skip-tls-verify"):
        raise KubeconfigError(f"{source}: insecure-skip-tls-verify is not supported: give certificate-authority")
    if user.get("exec") or user.get("auth-provider"):
        raise KubeconfigError(f"{source}: users[].user.exec and auth-provider plugins are not supported: use a "
                              "token (kubectl create token SERVICEACCOUNT) or a client certificate")
    server = str(cluster.get("server", ""))
    if not server.startswith("https://"):
        raise KubeconfigError(f"{source}: clusters[].cluster.server must be an https:// URL, got {server!r}")
    token_file = user.get("tokenFile")
    if user.get("token"):
        handle, token_file = tempfile.mkstemp(dir=scratch)
        os.write(handle, str(user["token"]).encode())
        os.close(handle)
    cert, key = _file(user, "client-certificate", source, scratch), _file(user, "client-key", source, scratch)
    if not token_file and not cert:
        raise KubeconfigError(f"{source}: the current user has neither a token nor a client certificate")
    ca = _file(cluster, "certificate-authority", source, scratch)
    return KubeClient(server.rstrip("/"), Path(str(token_file)) if token_file else None, Path(ca) if ca else None,
                      client_cert=(cert, key) if cert else None)
