"""Migration from kritis: AttestationAuthority → authority config, GenericAttestationPolicy → constraint.

`sigwarden import kritis FILE…` prints YAML: one document with the `authorities:` to add to the config,
then one K8sSignedImages constraint per GenericAttestationPolicy. What cannot be converted is said in
comments that name what is missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

POD_KINDS = [{"apiGroups": [""], "kinds": ["Pod", "ReplicationController"]},
             {"apiGroups": ["apps"], "kinds": ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"]},
             {"apiGroups": ["batch"], "kinds": ["Job", "CronJob"]}]
BREAKGLASS = "kritis.grafeas.io/breakglass"


def convert_authority(doc: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    name = (doc.get("metadata") or {}).get("name", "")
    spec = doc.get("spec") or {}
    attestation = {k: spec[k] for k in ("publicKeyData", "publicKeyId", "publicKeys") if spec.get(k)}
    if not attestation.get("publicKeyData") and not attestation.get("publicKeys"):
        secret = spec.get("privateKeySecretName", "")
        where = f" (kritis kept its key pair in the Secret {secret})" if secret else ""
        return None, (f"AttestationAuthority {name}: the document has no public key{where}; add an authority "
                      f"`{name}` with attestation.publicKeyData (base64 of the PEM or armoured PGP public key)")
    return {"name": name, "attestation": attestation}, ""


def convert_policy(doc: dict[str, Any]) -> dict[str, Any]:
    metadata = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    patterns = spec.get("admissionAllowlistPatterns") or []
    exempt = [entry["namePattern"] for entry in patterns if entry.get("namePattern")]
    return {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSignedImages",
        "metadata": {"name": metadata.get("name", "kritis-policy")},
        "spec": {
            "enforcementAction": "deny",
            "match": {"namespaces": [metadata.get("namespace", "default")], "kinds": POD_KINDS},
            "parameters": {"authorities": list(spec.get("attestationAuthorityNames") or []), "requireAll": True,
                           "exemptImages": exempt, "breakglassAnnotation": BREAKGLASS},
        },
    }


def unsupported_isp(doc: dict[str, Any]) -> str:
    name = (doc.get("metadata") or {}).get("name", "")
    spec = doc.get("spec") or {}
    missing = [key for key in ("packageVulnerabilityRequirements", "imageAllowlist") if spec.get(key)]
    return (f"ImageSecurityPolicy {name}: not supported yet — it admits images by vulnerability scan results "
            f"({', '.join(missing) or 'packageVulnerabilityRequirements'}), and sigwarden has no vulnerability "
            "source; verify a scanner's attestations with K8sSignedImages and read attestations[] in Rego instead")


def convert(documents: Iterable[dict[str, Any]]) -> str:
    authorities: list[dict[str, Any]] = []
    constraints: list[dict[str, Any]] = []
    notes: list[str] = []
    for doc in documents:
        kind = doc.get("kind")
        if kind == "AttestationAuthority":
            authority, note = convert_authority(doc)
            if authority:
                authorities.append(authority)
            if note:
                notes.append(note)
        elif kind == "GenericAttestationPolicy":
            constraints.append(convert_policy(doc))
        elif kind == "ImageSecurityPolicy":
            notes.append(unsupported_isp(doc))
        else:
            notes.append(f"{kind or 'a document without kind'}: not a kritis resource, skipped")
    out = "".join(f"# NOTE: {note}\n" for note in notes)
    out += "# Add to the sigwarden config:\n" + yaml.safe_dump({"authorities": authorities}, sort_keys=False)
    for constraint in constraints:
        out += "---\n" + yaml.safe_dump(constraint, sort_keys=False)
    return out


def load(paths: Iterable[Path]) -> list[dict[str, Any]]:
    documents = []
    for path in paths:
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict))
    return documents
