"""Ratify `Store` objects (type `oras`) → sigwarden registry stores and their credentials.

Ratify's cloud auth providers become `auth.cloud` (Azure workload or managed identity, AWS ECR, Alibaba ACR EE
with its instance ids), `k8Secrets` becomes `auth.kubernetesSecrets`. A cloud credential goes only to hosts a
store names exactly: Ratify's default Azure `endpoints` are wildcards (and Ratify once sent tokens to hosts
that merely contained the registry's name), so the import lists the registry hosts of that cloud that the
input names (in scopes and trust policies) and flags the store when there are none.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from provider.importers.model import Conversion, label
from provider.stores.cloud.hosts import host_problem

# Ratify auth provider → (sigwarden provider, whether it borrows the node's identity, what it is).
CLOUD_PROVIDERS = {
    "azureWorkloadIdentity": ("azure", False, "Azure workload identity"),
    "azureManagedIdentity": ("azure", True, "Azure managed identity (IMDS)"),
    "awsEcrBasic": ("aws", False, "AWS IRSA or EKS Pod Identity"),
    "alibabacloudAcrBasic": ("alibaba", False, "Alibaba Cloud RRSA"),
}
DONE_PARAMETERS = {
    "cosignEnabled": "always on: cosign signatures (sha256-<digest>.sig tags) are read next to OCI referrers",
    "cacheEnabled": "verification.cache (always on; ttl 5m for verified results by default)",
    "ttl": "verification.cache.ttl (default 5m; set it if you relied on Ratify's value)",
    "capacity": "verification.cache.maxEntries",
    "keys": "not needed: the cache has no per-key limit setting",
    "localCachePath": "not needed: nothing is cached on disk",
    "sizeBytes": "verification.cache.maxEntries (entries, not bytes)",
    "useHttp": "",  # handled below
    "authProvider": "",
}
# Where Ratify runs by default: a k8Secrets secret without a namespace is read from there.
RATIFY_NAMESPACE = "gatekeeper-system"


def _auth(out: Conversion, doc: dict[str, Any], auth: dict[str, Any]) -> dict[str, Any] | None:
    """Credentials for the catch-all store, or None when the provider needs a host-bound store of its own."""
    where = f"{label(doc)}: spec.parameters.authProvider"
    name = str(auth.get("name") or "")
    if name == "dockerConfig":
        path = auth.get("configPath") or "~/.docker/config.json in Ratify's pod"
        return {"dockerConfig": out.todo(where, f"path of the docker config file Ratify read ({path}), as mounted "
                                                "into sigwarden's pod")}
    if name == "k8Secrets":
        refs: list[dict[str, str]] = []
        for secret in auth.get("secrets") or []:
            if isinstance(secret, dict) and secret.get("secretName"):
                namespace = str(secret.get("namespace") or "")
                if not namespace:
                    namespace = RATIFY_NAMESPACE
                    out.attention(f"{where}.secrets {secret['secretName']}", f"no namespace: Ratify read it from its "
                                                                             f"own; {RATIFY_NAMESPACE} assumed")
                refs.append({"namespace": namespace, "name": str(secret["secretName"])})
        account = auth.get("serviceAccountName")
        if account:
            refs.append({"namespace": RATIFY_NAMESPACE, "serviceAccount": str(account)})
            out.attention(f"{where}.serviceAccountName", f"its imagePullSecrets are read from {RATIFY_NAMESPACE}; "
                                                         "the chart grants get only on named objects, so list those "
                                                         "Secrets in kubernetesSecrets too")
        if not refs:
            out.attention(where, "k8Secrets names no Secret or ServiceAccount: no credentials")
            return {}
        out.done(where, f"auth.kubernetesSecrets {refs} (read through the API; the chart grants get on exactly "
                        "these)")
        return {"kubernetesSecrets": refs}
    if name not in CLOUD_PROVIDERS:
        supported = ", ".join(["dockerConfig", "k8Secrets", *CLOUD_PROVIDERS])
        given = f"the auth provider {name!r} is not one" if name else "no auth provider name is given; it must be one"
        out.attention(where, f"{given} the import converts ({supported}), so this store gets no credentials and "
                             "pulls anonymously")
        return {}
    return None


def _cloud_store(out: Conversion, doc: dict[str, Any], auth: dict[str, Any],
                 named_hosts: frozenset[str]) -> dict[str, Any] | None:
    """A store with `auth.cloud` for the registry hosts of that cloud the input names; None (flagged) if none."""
    where = f"{label(doc)}: spec.parameters.authProvider"
    name = str(auth.get("name") or "")
    provider, node, what = CLOUD_PROVIDERS[name]
    hosts = sorted(h for h in named_hosts if not host_problem(provider, h))
    endpoints = [str(e).lower() for e in auth.get("endpoints") or []]
    if endpoints:
        # Exact endpoints are taken as they are; wildcard ones only cover the hosts the input names.
        exact = [e for e in endpoints if "*" not in e and not host_problem(provider, e)]
        hosts = sorted(set(exact) | {h for h in hosts if any(fnmatch.fnmatch(h, e) for e in endpoints if "*" in e)})
    cloud: dict[str, Any] = {"provider": provider}
    if node:
        cloud["nodeIdentity"] = True
        out.attention(f"{where} {name}", "the node's managed identity (IMDS) is borrowed: nodeIdentity: true; "
                                         "prefer workload identity (azureWorkloadIdentity)")
    if name == "alibabacloudAcrBasic":
        if auth.get("defaultInstanceId"):
            cloud["instanceId"] = str(auth["defaultInstanceId"])
        instances = {str(i["instanceName"]): str(i["instanceId"]) for i in auth.get("acrInstancesConfig") or []
                     if isinstance(i, dict) and i.get("instanceName") and i.get("instanceId")}
        if instances:
            cloud["instances"] = instances
    if auth.get("clientID"):
        out.done(f"{where}.clientID", f"the pod's Azure identity: chart value cloudIdentity.azure.clientId "
                                      f"{auth['clientID']}")
    if not hosts:
        out.attention(where, f"{name}: the input names no {provider} registry host exactly (wildcard endpoints are "
                             f"not expanded to unnamed hosts); add a store {{match: [<host>/*], auth: {{cloud: "
                             f"{cloud}}}}} for each registry")
        return None
    out.done(where, f"{name} → store for {hosts} with auth.cloud {cloud} ({what})")
    return {"type": "registry", "match": [f"{h}/*" for h in hosts], "auth": {"cloud": cloud}}


def convert_store(out: Conversion, doc: dict[str, Any],
                  named_hosts: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """One Ratify Store → sigwarden stores (a host-bound store first when the credentials are a cloud's)."""
    spec = doc.get("spec") or {}
    store_type = str(spec.get("type") or spec.get("name") or "")
    if store_type != "oras":
        out.attention(f"{label(doc)}: spec.name", f"store type {store_type or '(none)'} is not supported: only "
                                                   "oras (OCI registries) maps to sigwarden's registry store")
        return []
    parameters = spec.get("parameters") or {}
    store: dict[str, Any] = {"type": "registry", "match": ["*"]}
    stores = [store]
    out.done(f"{label(doc)}: spec.name oras", "stores[]: type registry, match * (OCI referrers and cosign tags)")
    if parameters.get("useHttp"):
        store["insecure"] = [out.todo(f"{label(doc)}: spec.parameters.useHttp",
                                      "the registry hosts to reach over plain HTTP (sigwarden names them one by "
                                      "one instead of turning HTTPS off for all)")]
    for key, value in parameters.items():
        if DONE_PARAMETERS.get(key):
            out.done(f"{label(doc)}: spec.parameters.{key}", DONE_PARAMETERS[key])
        elif key not in DONE_PARAMETERS:
            out.attention(f"{label(doc)}: spec.parameters.{key}", f"no sigwarden equivalent; value {value!r} dropped")
    auth = parameters.get("authProvider")
    if isinstance(auth, dict):
        credentials = _auth(out, doc, auth)
        if credentials:
            store["auth"] = credentials
        elif credentials is None:
            cloud = _cloud_store(out, doc, auth, named_hosts)
            if cloud is not None:
                stores.insert(0, cloud)
    return stores
