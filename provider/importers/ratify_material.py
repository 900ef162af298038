"""Ratify's certificate and key sources: CertificateStore and (Namespaced)KeyManagementProvider objects.

Inline material is written to files next to the config. Azure Key Vault (`azurekeyvault`) becomes sigwarden's
own Key Vault references: certificates as notation trust store entries `{keyVault: …}`, keys as cosign KMS URIs
`azurekms://…`, read by the pod's workload identity. Ratify ships no other provider types (none for Alibaba
Cloud), so any other type is a plug-in sigwarden cannot read: its entries become `TODO:` placeholders naming what
to export.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from provider.importers.model import Conversion, label, name_of, namespace_of

MATERIAL_KINDS = ("CertificateStore", "KeyManagementProvider", "NamespacedKeyManagementProvider")


@dataclass(frozen=True)
class Material:
    """Where one Ratify certificate/key source ended up: file paths, or placeholders to fill."""

    certificates: tuple[Any, ...] = ()  # file paths, or {keyVault: …} entries
    keys: tuple[Any, ...] = ()  # file paths, or {kms: …} entries


def _provider_type(doc: dict[str, Any]) -> str:
    spec = doc.get("spec") or {}
    # CertificateStore names its provider in spec.provider, KeyManagementProvider in spec.type.
    return str(spec.get("provider") if doc.get("kind") == "CertificateStore" else spec.get("type") or "")


def _pem_blocks(value: str, kind: str) -> bool:
    try:
        if kind == "certificate":
            return bool(x509.load_pem_x509_certificates(value.encode()))
        load_pem_public_key(value.encode())
        return True
    except ValueError:
        return False


def _inline(out: Conversion, doc: dict[str, Any], stem: str) -> Material:
    parameters = (doc.get("spec") or {}).get("parameters") or {}
    value = str(parameters.get("value") or "")
    # CertificateStore inline holds certificates only; a KeyManagementProvider says which in contentType.
    kind = str(parameters.get("contentType") or "certificate")
    where = f"{label(doc)}: spec.parameters.value"
    if kind not in ("certificate", "key"):
        return _placeholder(out, doc, stem, f"contentType {kind!r} is neither certificate nor key")
    if not _pem_blocks(value, kind):
        what = "PEM certificate(s)" if kind == "certificate" else "a PEM public key"
        return _placeholder(out, doc, stem, f"its inline value is not {what}")
    path = out.add_file(f"{'certs' if kind == 'certificate' else 'keys'}/{stem}.pem", value.encode())
    out.done(where, f"{kind} file {path}")
    return Material(certificates=(path,)) if kind == "certificate" else Material(keys=(path,))


def _placeholder(out: Conversion, doc: dict[str, Any], stem: str, why: str) -> Material:
    parameters = (doc.get("spec") or {}).get("parameters") or {}
    provider = _provider_type(doc)
    has_keys = bool(parameters.get("keys")) or parameters.get("contentType") == "key"
    entries = _entry_names(parameters.get("certificates")) + _entry_names(parameters.get("keys"))
    what = ", ".join(entries) or ("the public key" if has_keys else "the CA certificate(s)")
    vault = parameters.get("vaultURI") or parameters.get("instanceId") or ""
    origin = f" exported from {provider}{' ' + str(vault) if vault else ''}" if provider != "inline" else ""
    text = out.todo(f"{label(doc)}: spec.parameters",
                    f"path of a PEM file with {what} of {label(doc)}{origin} ({why}; suggested name {stem}.pem)")
    return Material(keys=(text,)) if has_keys else Material(certificates=(text,))


def _entry_names(value: Any) -> list[str]:
    """Certificate or key names: a list of objects, or (CertificateStore azurekeyvault) a YAML string of them."""
    if isinstance(value, str):
        return re.findall(r"(?:certificateName|keyName|name):\s*[\"']?([^\s\"']+)", value)
    if not isinstance(value, list):
        return []
    names = (item.get("name") or item.get("certificateName") or item.get("keyName") for item in value
             if isinstance(item, dict))
    return [str(name) for name in names if name]


def scope_of(doc: dict[str, Any]) -> str:
    """The namespace a Namespaced* object is limited to; "" for cluster-wide ones (whatever their metadata says)."""
    return namespace_of(doc) if str(doc.get("kind", "")).startswith("Namespaced") else ""


def _key_vault_entries(value: Any) -> list[tuple[str, str]]:
    """(name, version) of each certificate or key: a list of objects (KeyManagementProvider), or a YAML string
    of `certificateName` / `certificateVersion` pairs (CertificateStore)."""
    if isinstance(value, str):
        entries = []
        for block in re.split(r"\n\s*-\s*\|?", value):
            name = re.search(r"(?:certificateName|keyName):\s*[\"']?([^\s\"']+)", block)
            version = re.search(r"(?:certificateVersion|keyVersion):\s*[\"']?([^\s\"']+)", block)
            if name:
                entries.append((name.group(1), version.group(1) if version else ""))
        return entries
    if not isinstance(value, list):
        return []
    return [(str(item.get("name") or item.get("certificateName") or item.get("keyName")),
             str(item.get("version") or item.get("certificateVersion") or item.get("keyVersion") or ""))
            for item in value if isinstance(item, dict)
            and (item.get("name") or item.get("certificateName") or item.get("keyName"))]


def _key_vault(out: Conversion, doc: dict[str, Any], stem: str) -> Material:
    """Ratify's azurekeyvault provider → Key Vault references sigwarden reads itself (pinned versions kept)."""
    parameters = (doc.get("spec") or {}).get("parameters") or {}
    vault = str(parameters.get("vaultURI") or "").rstrip("/")
    host = urlparse(vault).netloc.lower()
    if not host.endswith((".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net")):
        return _placeholder(out, doc, stem, f"vaultURI {vault or '(none)'} is not an Azure Key Vault URI")
    where = f"{label(doc)}: spec.parameters"
    certificates = []
    for name, version in _key_vault_entries(parameters.get("certificates")):
        entry: dict[str, str] = {"vaultURI": f"https://{host}", "certificateName": name}
        if version:
            entry["version"] = version
        certificates.append({"keyVault": entry})
        out.done(f"{where}.certificates {name}", f"trust store entry keyVault {entry} (current and previous "
                                                 "version while valid, unless pinned)")
    keys = []
    for name, version in _key_vault_entries(parameters.get("keys")):
        uri = f"azurekms://{host}/{name}" + (f"/{version}" if version else "")
        keys.append({"kms": uri})
        out.done(f"{where}.keys {name}", f"cosign publicKeys kms {uri}")
    if not certificates and not keys:
        return _placeholder(out, doc, stem, "it names no certificates or keys")
    client = parameters.get("clientID")
    if client:
        out.done(f"{where}.clientID", f"the pod's Azure workload identity: chart value cloudIdentity.azure.clientId "
                                      f"{client} (the identity needs keys/get, certificates/get and secrets/get)")
    if parameters.get("tenantID"):
        out.done(f"{where}.tenantID", "not needed: the workload identity webhook injects AZURE_TENANT_ID")
    return Material(certificates=tuple(certificates), keys=tuple(keys))


def convert_material(out: Conversion, doc: dict[str, Any]) -> Material:
    """One CertificateStore / KeyManagementProvider object → the files (or placeholders) it becomes."""
    namespace = scope_of(doc)
    stem = f"{namespace + '-' if namespace else ''}{name_of(doc)}"
    provider = _provider_type(doc)
    if provider == "inline":
        return _inline(out, doc, stem)
    if provider == "azurekeyvault":
        return _key_vault(out, doc, stem)
    if not provider:
        return _placeholder(out, doc, stem, "no provider type given")
    return _placeholder(out, doc, stem, f"{provider} cannot be read offline")


class MaterialIndex:
    """Look up sources by name as Ratify does: the verifier's namespace first, then cluster-wide ones."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], Material] = {}

    def add(self, doc: dict[str, Any], material: Material) -> None:
        self._by_key[(scope_of(doc), name_of(doc))] = material

    def find(self, name: str, namespace: str) -> Material | None:
        return self._by_key.get((namespace, name)) or self._by_key.get(("", name))
