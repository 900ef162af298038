"""Ratify `Store` objects (type `oras`) → sigwarden registry stores and their credentials.

Cloud credentials (Azure workload identity, AWS IRSA, Alibaba RRSA) have no sigwarden equivalent: they become
a store of their own whose `match` must list the registry hosts exactly, so a token is never offered to
another registry (Ratify once sent tokens to hosts that merely contained the registry's name).
"""

from __future__ import annotations

from typing import Any

from provider.importers.model import Conversion, label

# Ratify auth provider → (what sigwarden lacks, the anchored host suffix its registries end with).
CLOUD_PROVIDERS = {
    "azureWorkloadIdentity": ("Azure workload identity token exchange", ".azurecr.io"),
    "azureManagedIdentity": ("Azure managed identity token exchange", ".azurecr.io"),
    "awsEcrBasic": ("AWS IRSA token exchange for ECR", ".amazonaws.com"),
    "alibabacloudAcrBasic": ("Alibaba Cloud RRSA token exchange for ACR", ".aliyuncs.com"),
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


def _auth(out: Conversion, doc: dict[str, Any], auth: dict[str, Any]) -> dict[str, Any] | None:
    """Credentials for the catch-all store, or None when the provider needs a host-bound store of its own."""
    where = f"{label(doc)}: spec.parameters.authProvider"
    name = str(auth.get("name") or "")
    if name == "dockerConfig":
        path = auth.get("configPath") or "~/.docker/config.json in Ratify's pod"
        return {"dockerConfig": out.todo(where, f"path of the docker config file Ratify read ({path}), as mounted "
                                                "into sigwarden's pod")}
    if name == "k8Secrets":
        secrets = [f"{s.get('secretName')}" + (f" in namespace {s['namespace']}" if s.get("namespace") else "")
                   for s in auth.get("secrets") or [] if isinstance(s, dict)]
        account = auth.get("serviceAccountName")
        what = ", ".join(secrets) or (f"the imagePullSecrets of ServiceAccount {account}" if account else
                                      "your registry Secret")
        return {"dockerConfig": out.todo(where, f"path of the .dockerconfigjson of Secret {what}, mounted into "
                                                "sigwarden's pod (sigwarden reads files, not the Kubernetes API)")}
    out.attention(where, f"auth provider {name or '(none named)'} has no sigwarden equivalent, see the next line")
    return None


def _cloud_store(out: Conversion, doc: dict[str, Any], auth: dict[str, Any]) -> dict[str, Any]:
    where = f"{label(doc)}: spec.parameters.authProvider"
    name = str(auth.get("name") or "")
    lacking, suffix = CLOUD_PROVIDERS.get(name, (f"the {name} auth provider", ""))
    hosts = [str(i.get("instanceName")) for i in auth.get("acrInstancesConfig") or []
             if isinstance(i, dict) and i.get("instanceName")]
    hint = (f"the {suffix} registry hosts these credentials are for, each exactly as `host/*`"
            if suffix else "the registry hosts these credentials are for, each exactly as `host/*`")
    if hosts:
        hint += f" (ACR instances {', '.join(hosts)}: <instance>-registry.<region>{suffix})"
    return {
        "type": "registry",
        "match": [out.todo(f"{where}: (registry hosts)", hint + "; never a wildcard host")],
        "auth": {"dockerConfig": out.todo(where, f"path of a docker config with a registry token for those hosts, "
                                                 f"refreshed outside sigwarden (sigwarden has no {lacking})")},
    }


def convert_store(out: Conversion, doc: dict[str, Any]) -> list[dict[str, Any]]:
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
        if credentials is not None:
            store["auth"] = credentials
        else:
            stores.insert(0, _cloud_store(out, doc, auth))
    return stores
