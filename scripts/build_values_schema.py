"""Write helm/sigwarden/values.schema.json: the chart's own values plus, for `config` and `authorities`, a
schema generated from the loader's SCHEMA (provider/config/reader.py), so Helm rejects a misspelt or mistyped
authority with the field's path. `--check` exits 1 when the committed file differs (a test runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provider.config.model import PURPOSES, SIGNED_IDENTITY_TYPES  # noqa: E402
from provider.config.reader import SCHEMA  # noqa: E402
from provider.stores.cloud.keys import ALIBABA_REGION  # noqa: E402

OUTPUT = ROOT / "helm" / "sigwarden" / "values.schema.json"

STRING = {"type": "string", "minLength": 1}
STRINGS = {"type": "array", "items": STRING}
DURATION = {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)\s*$",
            "description": "a duration such as 300ms, 2.5s, 5m or 1h"}
ACTION = {"enum": ["dryrun", "warn", "deny"]}
WEBHOOK_MAX_SECONDS = 30  # the Kubernetes API server's limit on a webhook's timeoutSeconds


def _positive(minimum: int = 1) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum}


# Types of the loader's leaf keys (the loader's SCHEMA lists names only). A leaf written as
# {"section": NAME} or {"sections": NAME} reuses another SCHEMA section (one object or a list of them).
LEAVES: dict[str, dict[str, Any]] = {
    "verification.concurrency": _positive(),
    "verification.maxSignatures": _positive(),
    "verification.maxBlobBytes": _positive(1024),
    "verification.maxPredicateBytes": _positive(0),
    "verification.cache.ttl": DURATION,
    "verification.cache.unverifiedTtl": DURATION,
    "verification.cache.errorTtl": DURATION,
    "verification.cache.maxEntries": _positive(),
    "verification.vulnerabilityFloor": {"enum": ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]},
    "verification.cache.tagTtl": DURATION,
    "verification.cache.maxBytes": {"anyOf": [_positive(1024 * 1024),
                                               {"type": "string", "pattern": r"^\s*\d+\s*(KiB|MiB|GiB)?\s*$"}],
                                     "description": "bytes, or a size such as 64MiB"},
    "verification.cache.redis.url": {"type": "string", "pattern": "^rediss?://"},
    "verification.cache.redis.hmacKeyFile": STRING,
    "verification.cache.redis.passwordFile": STRING,
    "verification.cache.redis.ca": STRING,
    "verification.cache.redis.prefix": {"type": "string", "pattern": r"^[A-Za-z0-9._-]+$"},
    "verification.cache.redis.timeout": DURATION,
    "mutation.deadline": DURATION,
    "mutation.keepTag": {"type": "boolean"},
    "mutation.exemptImages": STRINGS,
    "stores[].type": {"enum": ["registry", "oci-layout"]},
    "stores[].match": STRINGS,
    "stores[].path": STRING,
    "stores[].singleLayout": {"type": "boolean"},
    "stores[].insecure": STRINGS,
    "stores[].ca": STRING,
    "stores[].allowNetworks": STRINGS,
    "stores[].denyNetworks": STRINGS,
    "stores[].wildcardDenyNetworks": STRINGS,
    "stores[].concurrencyPerAddress": _positive(),
    "stores[].concurrencyWildcard": _positive(),
    "stores[].auth.dockerConfig": STRING,
    "stores[].auth.tokenRealms": STRINGS,
    "stores[].auth.cloud.provider": {"enum": ["aws", "azure", "google", "alibaba"]},
    "stores[].auth.cloud.instanceId": STRING,
    "stores[].auth.cloud.instances": {"type": "object", "additionalProperties": STRING},
    "stores[].auth.cloud.nodeIdentity": {"type": "boolean"},
    "stores[].auth.kubernetesSecrets[].namespace": STRING,
    "stores[].auth.kubernetesSecrets[].name": STRING,
    "stores[].auth.kubernetesSecrets[].serviceAccount": STRING,
    "stores[].auth.static.<host>.username": {"type": "string"},
    "stores[].auth.static.<host>.password": {"type": "string"},
    "stores[].auth.static.<host>.identityToken": {"type": "string"},
    "authorities[].name": {"type": "string", "pattern": "^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$",
                           "description": "lowercase letters, digits, '.', '_' or '-' (at most 63)"},
    "authorities[].scopes": STRINGS,
    "authorities[].yieldTo": STRINGS,
    "authorities[].purposes": {"type": "array", "minItems": 1, "items": {"enum": list(PURPOSES)}},
    "authorities[].cosign.tlog": {"enum": ["optional", "required"]},
    "authorities[].cosign.rekorKeys": {"keys": "authorities[].cosign.publicKeys[]"},
    "authorities[].cosign.dockerReference": {"enum": ["ignore", "repository"]},
    "authorities[].cosign.publicKeys[].file": STRING,
    "authorities[].cosign.publicKeys[].pem": {"type": "string", "pattern": "-----BEGIN"},
    "authorities[].cosign.publicKeys[].kms": {"type": "string", "pattern": "^(awskms|azurekms|gcpkms|hashivault)://"},
    "authorities[].cosign.keyless.trustedRoot": STRING,
    "authorities[].cosign.keyless.fulcioRoots": STRINGS,
    "authorities[].cosign.keyless.fulcioIntermediates": STRINGS,
    "authorities[].cosign.keyless.rekorKeys": {"keys": "authorities[].cosign.publicKeys[]"},
    "authorities[].cosign.keyless.ctLogKeys": {"keys": "authorities[].cosign.publicKeys[]"},
    "authorities[].cosign.keyless.sct": {"enum": ["required", "optional"]},
    "authorities[].cosign.keyless.identities[].subject": STRING,
    "authorities[].cosign.keyless.identities[].subjectRegExp": STRING,
    "authorities[].cosign.keyless.identities[].issuer": STRING,
    "authorities[].cosign.keyless.identities[].issuerRegExp": STRING,
    "authorities[].cosign.pki.roots": STRINGS,
    "authorities[].cosign.pki.intermediates": STRINGS,
    "authorities[].cosign.pki.identities": {"sections": "authorities[].cosign.keyless.identities[]"},
    # patternProperties rather than propertyNames: Helm's errors then name the field.
    "authorities[].notation.trustStores": {"stores": "authorities[].notation.trustStores.<store>[]"},
    "authorities[].notation.trustStores.<store>[].keyVault.vaultURI": {"type": "string", "pattern": "^https://"},
    "authorities[].notation.trustStores.<store>[].keyVault.certificateName": STRING,
    "authorities[].notation.trustStores.<store>[].keyVault.version": STRING,
    "authorities[].notation.trustStores.<store>[].alibabaKms.certificateId": STRING,
    "authorities[].notation.trustStores.<store>[].alibabaKms.region": {"type": "string",
                                                                     "pattern": ALIBABA_REGION.pattern},
    "authorities[].notation.trustPolicy.file": STRING,
    "authorities[].notation.trustPolicy.inline": {"type": "object"},
    "authorities[].attestation.publicKeyData": STRING,
    "authorities[].attestation.publicKeyId": {"type": "string"},
    "authorities[].attestation.lookaside": {"type": "string"},
    "authorities[].attestation.dockerReference": {"enum": ["ignore", "repository"]},
    "authorities[].attestation.signedIdentity.type": {"enum": list(SIGNED_IDENTITY_TYPES)},
    "authorities[].attestation.signedIdentity.dockerReference": STRING,
    "authorities[].attestation.signedIdentity.dockerRepository": STRING,
    "authorities[].attestation.signedIdentity.prefix": STRING,
    "authorities[].attestation.signedIdentity.signedPrefix": STRING,
    "authorities[].attestation.publicKeys[].keyType": {"enum": ["PGP", "PKIX"]},
    "authorities[].attestation.publicKeys[].file": STRING,
    "authorities[].attestation.publicKeys[].keyId": {"type": "string"},
    "authorities[].attestation.publicKeys[].asciiArmoredPgpPublicKey": STRING,
    "authorities[].attestation.publicKeys[].pkixPublicKey.publicKeyPem": STRING,
    "authorities[].attestation.publicKeys[].pkixPublicKey.signatureAlgorithm": {"type": "string"},
}

# Rules across keys of one section, mirroring the loader's checks.
RULES: dict[str, dict[str, Any]] = {
    "stores[].auth.cloud": {"required": ["provider"]},
    "stores[].auth.kubernetesSecrets[]": {"required": ["namespace"],
                                          "oneOf": [{"required": ["name"]}, {"required": ["serviceAccount"]}]},
    "authorities[]": {"required": ["name"], "anyOf": [{"required": [k]} for k in ("cosign", "notation",
                                                                                   "attestation")]},
    "authorities[].cosign": {"anyOf": [{"required": [k]} for k in ("publicKeys", "keyless", "pki")]},
    "authorities[].cosign.publicKeys[]": {"oneOf": [{"required": ["file"]}, {"required": ["pem"]},
                                                    {"required": ["kms"]}]},
    "authorities[].notation.trustStores.<store>[]": {"oneOf": [{"required": ["keyVault"]},
                                                               {"required": ["alibabaKms"]}]},
    "authorities[].notation.trustStores.<store>[].alibabaKms": {"required": ["certificateId", "region"]},
    "authorities[].notation.trustStores.<store>[].keyVault": {"required": ["vaultURI", "certificateName"]},
    "authorities[].cosign.keyless": {"required": ["identities"],
                                     "anyOf": [{"required": ["trustedRoot"]}, {"required": ["fulcioRoots"]}]},
    "authorities[].cosign.keyless.identities[]": {"anyOf": [{"required": ["subject"]},
                                                            {"required": ["subjectRegExp"]}]},
    "authorities[].cosign.pki": {"required": ["roots"]},
    "authorities[].notation": {"required": ["trustStores", "trustPolicy"]},
    "authorities[].notation.trustPolicy": {"oneOf": [{"required": ["file"]}, {"required": ["inline"]}]},
    "authorities[].attestation.publicKeys[]": {"required": ["keyType"]},
}


def section(name: str) -> dict[str, Any]:
    """The schema of one SCHEMA section: its keys, nothing else (the loader refuses unknown keys too)."""
    properties = {}
    for key in sorted(SCHEMA[name]):
        path = f"{name}.{key}" if name else key
        if path in SCHEMA:
            properties[key] = section(path)
        elif f"{path}[]" in SCHEMA:
            properties[key] = {"type": "array", "items": section(f"{path}[]")}
        elif f"{path}.<host>" in SCHEMA:
            properties[key] = {"type": "object", "additionalProperties": section(f"{path}.<host>")}
        elif path in LEAVES:
            properties[key] = leaf(LEAVES[path])
        else:
            raise KeyError(f"{path}: a key of the loader's SCHEMA without a type in LEAVES; add one")
    return {"type": "object", "additionalProperties": False, "properties": properties, **RULES.get(name, {})}


def leaf(spec: dict[str, Any]) -> dict[str, Any]:
    if "stores" in spec:  # notation trust stores: certificate file paths or {keyVault|alibabaKms: …}, by store
        return {"type": "object", "minProperties": 1, "additionalProperties": False,
                "patternProperties": {"^(ca|signingAuthority|tsa):.+$": {
                    "type": "array", "minItems": 1, "items": {"anyOf": [STRING, section(spec["stores"])]}}}}
    if "sections" in spec:
        return {"type": "array", "items": section(spec["sections"])}
    if "keys" in spec:  # a key list: file paths or {file|pem} entries, like publicKeys
        return {"type": "array", "items": {"anyOf": [STRING, section(spec["keys"])]}}
    return spec


def config_schema() -> dict[str, Any]:
    """`config` in values: the loader's verification, mutation and stores (the chart writes `server`)."""
    stores = {"type": "array", "minItems": 1, "items": section("stores[]")}
    stores["items"]["required"] = ["match"]
    return {"type": "object", "additionalProperties": False, "properties": {
        "verification": section("verification"), "mutation": section("mutation"), "stores": stores}}


def _object(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties, **extra}


def chart_schema() -> dict[str, Any]:
    """The whole values schema: the chart's own settings plus the generated config parts."""
    port = {"type": "integer", "minimum": 1, "maximum": 65535}
    boolean = {"type": "boolean"}
    mapping = {"type": "object"}
    labels = {"type": "object", "additionalProperties": {"type": "string"}}
    resources = {"type": "object"}
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "description": "Generated by scripts/build_values_schema.py; edit that script, not this file.",
        **_object({
            "replicaCount": {"type": "integer", "minimum": 1},
            "image": _object({"repository": STRING, "tag": {"type": "string"},
                              "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]}}),
            "imagePullSecrets": {"type": "array"},
            "resources": resources, "certsResources": resources,
            "nodeSelector": mapping, "tolerations": {"type": "array"}, "affinity": mapping,
            "podAnnotations": labels, "priorityClassName": {"type": "string"},
            "service": _object({"port": port, "metricsPort": port}),
            "gatekeeper": _object({
                "namespace": STRING, "validatingWebhookConfiguration": STRING,
                "validatingWebhookTimeoutSeconds": {"type": "integer", "minimum": 2, "maximum": WEBHOOK_MAX_SECONDS,
                                                    "description": "Gatekeeper's; the Provider needs one second "
                                                                   "less, so at least 2."},
                "mutatingWebhookTimeoutSeconds": {"type": "integer", "minimum": 1, "maximum": WEBHOOK_MAX_SECONDS}}),
            "provider": _object({
                "timeout": {"type": "integer", "minimum": 1, "maximum": WEBHOOK_MAX_SECONDS - 1, "description":
                            "Whole seconds; at most gatekeeper.validatingWebhookTimeoutSeconds minus one."},
                "threads": {"type": "integer", "minimum": 1}, "annotations": labels,
                "server": _object({"handshakeTimeout": DURATION, "headerTimeout": DURATION,
                                   "bodyTimeout": DURATION, "idleTimeout": DURATION,
                                   "maxConnections": {"type": "integer", "minimum": 16},
                                   "maxHeaderBytes": {"type": "integer", "minimum": 1024},
                                   "workers": {"anyOf": [{"const": "auto"},
                                                         {"type": "integer", "minimum": 1, "maximum": 64}]}})}),
            "tls": _object({
                "mode": {"enum": ["pod", "certManager", "existingSecret"]},
                "existingSecret": {"type": "string"},
                "caBundle": {"type": "string", "pattern": "^([A-Za-z0-9+/=]+)?$",
                             "description": "base64 of the PEM CA certificate(s)"},
                "certManager": _object({"issuerRef": _object({"name": STRING, "kind": STRING, "group": STRING})}),
                "renewInterval": {"type": "integer", "minimum": 5}},
                allOf=[{"if": {"properties": {"mode": {"const": "existingSecret"}}, "required": ["mode"]},
                        "then": {"properties": {"existingSecret": STRING}}}]),
            "mtls": _object({
                "enabled": boolean,
                "clientCA": _object({"source": {"enum": ["webhook", "value"]}, "pem": {"type": "string"}}),
                "clientNames": STRINGS}),
            "config": config_schema(),
            "egress": _object({
                "wildcardDenyNetworks": {"type": "array", "items": {
                    "type": "string", "pattern": r"^[0-9A-Fa-f:.]+(/\d{1,3})?$",
                    "description": "a CIDR such as 10.0.0.0/8 or fc00::/7"}},
                "inClusterRegistries": {"type": "array", "items": {
                    "type": "string", "pattern": r"^[A-Za-z0-9.-]+(:\d{1,5})?$",
                    "description": "a registry host as images name it, such as registry.registry.svc:5000"}}}),
            "authorities": {"type": "array", "items": section("authorities[]")},
            "sharedCache": _object({
                "enabled": boolean, "url": {"type": "string", "pattern": "^(rediss?://.*)?$"},
                "existingSecret": {"type": "string"}, "generateSecret": boolean,
                "hmacKeyKey": STRING, "passwordKey": {"type": "string"},
                "prefix": {"type": "string", "pattern": r"^[A-Za-z0-9._-]+$"}, "timeout": DURATION,
                "redis": _object({"enabled": boolean, "image": STRING, "resources": resources,
                                  "maxMemory": STRING})}),
            "trustMaterial": _object({"inline": {"type": "object", "additionalProperties": {"type": "string"}},
                                      "existingSecrets": STRINGS}),
            "registryCredentials": _object({"existingSecret": {"type": "string"}}),
            "cloudIdentity": _object({
                "azure": _object({"clientId": {"type": "string"}}), "aws": _object({"roleArn": {"type": "string"}}),
                "alibaba": _object({"roleName": {"type": "string"}}),
                "google": _object({"serviceAccount": {"type": "string"}})}),
            "policy": _object({
                "enabled": boolean,
                "delivery": {"enum": ["job", "manifests", "none"]},
                "enforcementAction": {"enum": ["dryrun", "warn", "deny", "scoped"]},
                "authorities": STRINGS, "requireAll": boolean, "exemptImages": STRINGS, "allowOnError": boolean,
                "breakglassAnnotation": {"type": "string"}, "excludedNamespaces": STRINGS,
                "namespaceOverrides": {"type": "object", "additionalProperties": ACTION},
                "namespaceLabel": _object({
                    "key": {"type": "string", "pattern": r"^(([a-z0-9]([-a-z0-9.]*[a-z0-9])?)/)?[A-Za-z0-9]"
                                                         r"([-A-Za-z0-9_.]*[A-Za-z0-9])?$|^$"},
                    "actions": {"type": "object", "additionalProperties": ACTION},
                    "guard": _object({"enabled": boolean, "allowedGroups": {**STRINGS, "minItems": 1}})}),
                "digestPinning": _object({"enabled": boolean, "enforcementAction": ACTION})}),
            "mutation": _object({"enabled": boolean, "failurePolicy": {"enum": ["Fail", "Ignore"]}}),
            "networkPolicy": _object({"enabled": boolean, "metricsNamespaces": STRINGS}),
            "autoscaling": _object({"enabled": boolean, "minReplicas": {"type": "integer", "minimum": 1},
                                    "maxReplicas": {"type": "integer", "minimum": 1},
                                    "targetCPUUtilizationPercentage": {"type": "integer", "minimum": 1,
                                                                       "maximum": 100}}),
            "podDisruptionBudget": _object({"minAvailable": {"type": ["integer", "string"]}}),
            "serviceMonitor": _object({"enabled": boolean, "interval": DURATION}),
            "prometheusRule": _object({"enabled": boolean, "labels": labels,
                                       "errorRatio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                                       "certificateExpiryDays": {"type": "integer", "minimum": 1},
                                       "trustMaterialExpiryDays": {"type": "integer", "minimum": 1}}),
            "grafanaDashboard": _object({"enabled": boolean, "labels": labels}),
            "audit": _object({"cronJob": _object({"enabled": boolean, "schedule": STRING,
                                                  "resources": {"type": "object"}}),
                              "policyReports": _object({"installCRDs": boolean})}),
        }, allOf=provider_timeout_rules()),
    }


def provider_timeout_rules() -> list[dict[str, Any]]:
    """provider.timeout at most gatekeeper.validatingWebhookTimeoutSeconds minus one. JSON Schema compares a
    value with constants only, so there is one rule per possible webhook timeout."""
    return [{"if": {"properties": {"gatekeeper": {"properties": {"validatingWebhookTimeoutSeconds": {"const": w}},
                                                  "required": ["validatingWebhookTimeoutSeconds"]}},
                    "required": ["gatekeeper"]},
             "then": {"properties": {"provider": {"properties": {"timeout": {"maximum": w - 1}}}}}}
            for w in range(2, WEBHOOK_MAX_SECONDS + 1)]


def render() -> str:
    return json.dumps(chart_schema(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed file is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run python scripts/build_values_schema.py",
                  file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(OUTPUT.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
