"""Import from Ratify: its custom resources → a sigwarden config, constraints, and a migration report.

Verifiers become authorities (notation: trust stores + the trust policy verbatim; cosign: one authority per
trust policy), certificate and key sources become files, `oras` stores become registry stores, and the
constraints reproduce Ratify's default `RatifyVerification` constraint with the shipped K8sSignedImages
template. A NamespacedVerifier is trusted only by a constraint matched to its namespace: sigwarden authorities
are scoped by image, not by namespace, so it is left out of the cluster-wide constraint.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from provider.importers.model import DEFAULT_ENFORCEMENT_ACTION, POD_KINDS, Conversion, label, name_of
from provider.importers.ratify_material import MATERIAL_KINDS, MaterialIndex, convert_material, scope_of
from provider.importers.ratify_scopes import WILDCARD, translate, validate_scopes
from provider.importers.ratify_stores import convert_store
from provider.verifiers.notation.trustpolicy import TrustPolicyError, parse_trust_policy

GROUP = "config.ratify.deislabs.io"
VERSIONS = ("v1beta1", "v1alpha1")
NOTARY_SIGNATURE = "application/vnd.cncf.notary.signature"
COSIGN_SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
# Verifier types Ratify ships that check something other than a signature.
NOT_SIGNATURES = {
    "sbom": "SBOM contents (licences, packages)",
    "vulnerabilityreport": "vulnerability scan reports",
    "licensechecker": "SBOM licences",
    "schemavalidator": "JSON schemas of attached artifacts",
}
SYSTEM_NAMESPACES = ["kube-system", "gatekeeper-system"]
TRUSTED_ROOT_TODO = (
    "path of a Sigstore trusted_root.json (Fulcio roots and Rekor keys) for authority {name}: for the public-good "
    "instance, the trusted_root.json target of Sigstore's TUF repository (what cosign and sigstore-python cache "
    "under ~/.sigstore); for a private instance, `cosign trusted-root create`")
PROVIDER_URL = "https://sigwarden.sigwarden-system.svc:8443/ratify/gatekeeper/v1/verify"


@dataclass(frozen=True)
class RatifyOptions:
    ratify_provider: bool = False  # also emit a Provider named ratify-provider for existing Ratify templates


def _authority_name(text: str) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")[:63].rstrip("-._")
    return name or "ratify"


def _certificate_paths(out: Conversion, doc: dict[str, Any], where: str, refs: Any,
                       index: MaterialIndex) -> list[str]:
    paths: list[str] = []
    for ref in refs if isinstance(refs, list) else [refs]:
        material = index.find(str(ref), scope_of(doc))
        if material is None:
            paths.append(out.todo(where, f"path of the PEM certificates of {ref} (no CertificateStore or "
                                         f"KeyManagementProvider named {ref} was in the input)"))
        elif not material.certificates:
            out.attention(where, f"{ref} holds keys, not certificates: a notation trust store needs CA certificates")
        else:
            paths.extend(material.certificates)
    return paths


def _trust_stores(out: Conversion, doc: dict[str, Any], index: MaterialIndex) -> dict[str, list[str]]:
    """`verificationCertStores` in both shapes: `{store: [refs]}` (type ca) and `{type: {store: [refs]}}`."""
    parameters = (doc.get("spec") or {}).get("parameters") or {}
    stores: dict[str, list[str]] = {}
    for key, value in (parameters.get("verificationCertStores") or {}).items():
        where = f"{label(doc)}: spec.parameters.verificationCertStores.{key}"
        if isinstance(value, dict) and key in ("ca", "tsa", "signingAuthority"):
            for store, refs in value.items():
                stores[f"{key}:{store}"] = _certificate_paths(out, doc, f"{where}.{store}", refs, index)
        else:
            stores[f"ca:{key}"] = _certificate_paths(out, doc, where, value, index)
    return stores


def _notation(out: Conversion, doc: dict[str, Any], name: str, index: MaterialIndex) -> dict[str, Any] | None:
    parameters = (doc.get("spec") or {}).get("parameters") or {}
    policy = parameters.get("trustPolicyDoc")
    where = label(doc)
    if not isinstance(policy, dict):
        out.attention(f"{where}: spec.parameters.trustPolicyDoc", "missing: a notation verifier needs its trust "
                                                                  "policy document; no authority created")
        return None
    stores = _trust_stores(out, doc, index)
    out.done(f"{where}: spec.parameters.verificationCertStores", f"authorities[{name}].notation.trustStores "
                                                                 f"{sorted(stores)}")
    try:
        document = parse_trust_policy(policy, known_stores=tuple(stores))
        out.done(f"{where}: spec.parameters.trustPolicyDoc", f"authorities[{name}].notation.trustPolicy.inline "
                                                             "(verbatim)")
        for statement in document.policies:
            source = f"{where}: trustPolicyDoc {statement.name}: signatureVerification.level {statement.level}"
            if statement.level == "audit":
                out.attention(source, "kept: at this level a signature from any CA verifies (authenticity is only "
                                      "logged), as in Ratify; use strict to enforce the trust store")
            elif statement.level == "skip":
                out.attention(source, f"kept, and the images of {list(statement.registry_scopes)} stay unverified: "
                                      "notation checks nothing there and Ratify admitted none of them (no verifier "
                                      "report); K8sSignedImages admits them only with acceptSkipLevel: true, which "
                                      "this import never sets (admitting them would widen what Ratify admitted)")
    except TrustPolicyError as exc:
        out.attention(f"{where}: spec.parameters.trustPolicyDoc", f"copied verbatim, but notation rejects it and so "
                                                                  f"will `config check`: {exc}")
    for key in set(parameters) - {"verificationCertStores", "trustPolicyDoc"}:
        out.attention(f"{where}: spec.parameters.{key}", "no sigwarden equivalent, dropped")
    return {"name": name, "notation": {"trustStores": stores, "trustPolicy": {"inline": policy}}}


def _identity(keyless: dict[str, Any]) -> dict[str, str]:
    pairs = {"certificateIdentity": "subject", "certificateIdentityRegExp": "subjectRegExp",
             "certificateOIDCIssuer": "issuer", "certificateOIDCIssuerRegExp": "issuerRegExp"}
    identity = {ours: str(keyless[theirs]) for theirs, ours in pairs.items() if keyless.get(theirs)}
    for exact in ("subject", "issuer"):  # cosign CheckCertificatePolicy: a regexp, when given, wins
        if f"{exact}RegExp" in identity:
            identity.pop(exact, None)
    return identity


def _cosign_policy(out: Conversion, doc: dict[str, Any], policy: dict[str, Any], name: str,
                   index: MaterialIndex) -> dict[str, Any] | None:
    where = f"{label(doc)}: spec.parameters.trustPolicies[{policy.get('name')}]"
    scopes = _scopes(out, where, name, [str(s) for s in policy.get("scopes") or []])
    if scopes is None:
        return None
    cosign: dict[str, Any] = {}
    for key in policy.get("keys") or []:
        material = index.find(str(key.get("provider")), scope_of(doc)) if isinstance(key, dict) else None
        if material is None or not material.keys:
            cosign.setdefault("publicKeys", []).append(out.todo(
                f"{where}.keys", f"path of the PEM public key of {key} (no KeyManagementProvider with keys of "
                                 "that name was in the input)"))
        else:
            cosign.setdefault("publicKeys", []).extend(material.keys)
            out.done(f"{where}.keys {key.get('provider')}", f"authorities[{name}].cosign.publicKeys")
    keyless = policy.get("keyless")
    if isinstance(keyless, dict):
        identity = _identity(keyless)
        if not (identity.get("subject") or identity.get("subjectRegExp")):
            out.attention(f"{where}.keyless", "no certificateIdentity: sigwarden refuses keyless trust without one "
                                              "(any signer would pass); no authority created")
            return None
        cosign["keyless"] = {"trustedRoot": out.todo(f"{where}.keyless", TRUSTED_ROOT_TODO.format(name=name)),
                             "identities": [identity]}
        out.done(f"{where}.keyless", f"authorities[{name}].cosign.keyless.identities {identity}")
    if not cosign:
        out.attention(where, "neither keys nor keyless: no authority created")
        return None
    if policy.get("tLogVerify", True):
        cosign["tlog"] = "required"
        if "publicKeys" in cosign and "keyless" not in cosign:
            cosign["rekorKeys"] = [out.todo(f"{where}.tLogVerify", "path of the Rekor public key (PEM) that signs "
                                                                   "the log entries (from the trusted root's tlogs)")]
        out.done(f"{where}.tLogVerify", "cosign.tlog: required (the Rekor bundle is checked offline)")
    else:
        out.done(f"{where}.tLogVerify false", "cosign.tlog: optional")
    if policy.get("rekorURL"):
        out.done(f"{where}.rekorURL", "not contacted: the bundle cosign attached is checked with rekorKeys, offline")
    for key in set(policy) - {"name", "scopes", "keys", "keyless", "tLogVerify", "rekorURL", "ctLogVerify"}:
        out.attention(f"{where}.{key}", "no sigwarden equivalent, dropped")
    authority: dict[str, Any] = {"name": name}
    if scopes:
        authority["scopes"] = scopes
    return {**authority, "cosign": cosign}


def _scopes(out: Conversion, where: str, name: str, scopes: list[str]) -> list[str] | None:
    """A policy's scopes as authority scopes: [] for Ratify's `*` policy, None when Ratify never selects it."""
    if scopes == [WILDCARD]:
        return []
    patterns: list[str] = []
    for scope in scopes:
        translation = translate(scope)
        if translation.kind == "repository":
            patterns.append(translation.pattern)
        elif translation.kind == "never":
            out.done(f"{where}.scopes {scope}", f"dropped: {translation.why}")
        else:
            patterns.append(out.todo(f"{where}.scopes {scope}", (
                f"the repository pattern authority {name} covers in place of the Ratify scope {scope}: "
                f"{translation.why}, and sigwarden selects trust per repository, never per tag or digest. "
                f"{translation.pattern} trusts this authority for every tag of it and takes that repository from "
                "the `*` policy's authority (which widens what Ratify admitted for its other tags). To leave it "
                "to the `*` policy instead, delete this entry, or, when it is the only one, the whole authority "
                "and its name in yieldTo: an authority without scopes covers every image")))
    if not patterns:
        out.done(f"{where}.scopes", "no scope Ratify can select: no authority created")
        return None
    copied = [translate(scope).pattern for scope in scopes if translate(scope).kind == "repository"]
    if copied:
        out.done(f"{where}.scopes", f"authorities[{name}].scopes {copied}")
    return patterns


def _cosign(out: Conversion, doc: dict[str, Any], name: str, index: MaterialIndex) -> list[dict[str, Any]]:
    """One authority per trust policy; the `*` policy's authority yields to the others where they apply, as
    Ratify applies the `*` policy only to images no other policy's scope matches (GetScopedPolicy)."""
    parameters = (doc.get("spec") or {}).get("parameters") or {}
    policies = [p for p in parameters.get("trustPolicies") or [] if isinstance(p, dict)]
    if not policies:
        out.attention(f"{label(doc)}: spec.parameters", "no trustPolicies (legacy `key:` file inside Ratify's pod?): "
                                                        "copy the key and add an authority with cosign.publicKeys")
        return []
    problem = validate_scopes([(str(p.get("name")), [str(s) for s in p.get("scopes") or []]) for p in policies])
    if problem:
        out.attention(f"{label(doc)}: spec.parameters.trustPolicies", f"Ratify refuses these trust policies "
                      f"({problem}), so it verified no cosign signature with them: no authority created")
        return []
    found, fallback, lost = [], None, []
    for policy in policies:
        authority = _cosign_policy(out, doc, policy, _authority_name(f"{name}-{policy.get('name', 'policy')}"),
                                   index)
        scopes = [str(s) for s in policy.get("scopes") or []]
        if authority and scopes == [WILDCARD]:
            fallback = authority
        elif authority:
            found.append(authority)
        elif any(translate(s).kind != "never" for s in scopes if s != WILDCARD):
            lost.append(str(policy.get("name")))
    if fallback is not None and lost:
        # Without the scoped authority, the fallback would take over the images Ratify gave that policy.
        out.attention(f"{label(doc)}: spec.parameters.trustPolicies[{fallback['name']}] scopes *",
                      f"no authority created: it would also cover the images of {lost}, which were not converted")
        fallback = None
    others = [a["name"] for a in found]
    found += [fallback] if fallback is not None else []
    if fallback is not None:
        out.done(f"{label(doc)}: spec.parameters.trustPolicies[{fallback['name']}] scopes *",
                 f"authorities[{fallback['name']}]: every image" + (
                     f", except where the scopes of {others} apply (yieldTo)" if others else ""))
        if others:
            fallback["yieldTo"] = others
    return found


def convert_verifier(out: Conversion, doc: dict[str, Any], name: str, index: MaterialIndex) -> list[dict[str, Any]]:
    spec = doc.get("spec") or {}
    verifier_type = str(spec.get("type") or spec.get("name") or "")
    artifact_types = str(spec.get("artifactTypes") or "")
    if verifier_type == "notation":
        authority = _notation(out, doc, name, index)
        found = [authority] if authority else []
        expected = NOTARY_SIGNATURE
    elif verifier_type == "cosign":
        found, expected = _cosign(out, doc, name, index), COSIGN_SIGNATURE
    else:
        what = NOT_SIGNATURES.get(verifier_type, "something sigwarden does not know")
        out.attention(f"{label(doc)}: spec.name {verifier_type or '(none)'}",
                      f"not converted: the {verifier_type or 'unnamed'} verifier checks {what}; sigwarden verifies "
                      "signatures and signed attestations only (sign the report as an in-toto attestation and read "
                      "attestations[] in a template instead)")
        return []
    extra = [t.strip() for t in artifact_types.split(",") if t.strip() and t.strip() != expected]
    if found and not extra:
        out.done(f"{label(doc)}: spec.artifactTypes", f"{verifier_type} signatures ({expected}) are what the "
                                                      "authority checks")
    if extra:
        out.attention(f"{label(doc)}: spec.artifactTypes", f"{', '.join(extra)} not read: sigwarden reads "
                                                           f"{verifier_type} signatures as {expected}")
    return found


def convert_policy(out: Conversion, doc: dict[str, Any]) -> None:
    spec = doc.get("spec") or {}
    policy_type = str(spec.get("type") or spec.get("name") or "").replace("-", "")
    parameters = spec.get("parameters") or {}
    where = label(doc)
    if policy_type == "regopolicy":
        out.attention(f"{where}: spec.parameters.policy", "not converted: Rego over Ratify's verifier reports; "
                                                          "write it as a ConstraintTemplate over the facts (see "
                                                          "docs/writing-policies.md)")
        return
    if policy_type != "configpolicy":
        out.attention(f"{where}: spec.type {policy_type or '(none)'}", "unknown policy type, not converted")
        return
    if "passthroughEnabled" in parameters:
        out.done(f"{where}: spec.parameters.passthroughEnabled", "not needed: sigwarden always answers facts and "
                                                                 "the constraints decide")
    for artifact_type, rule in (parameters.get("artifactVerificationPolicies") or {}).items():
        source = f"{where}: spec.parameters.artifactVerificationPolicies.{artifact_type}: {rule}"
        if rule == "any":
            out.done(source, "the constraints' default: an image passes when one signature from a listed authority "
                             "verifies")
        else:
            out.attention(source, "not reproduced exactly: sigwarden admits an image when one signature from a "
                                  "listed authority verifies, and an extra failing signature does not deny it; to "
                                  "require several signers, list them with requireAll: true")


def _constraint(name: str, authorities: list[str], match: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSignedImages",
            "metadata": {"name": name},
            "spec": {"enforcementAction": DEFAULT_ENFORCEMENT_ACTION, "match": {"kinds": POD_KINDS, **match},
                     "parameters": {"authorities": authorities}}}


# The constraints of Ratify's Gatekeeper library that admit on its verification result (library/default,
# library/notation-validation, library/multi-tenancy-validation).
VERIFICATION_CONSTRAINTS = ("RatifyVerification", "notationvalidation", "NotationValidation")
# Library constraints over other verifier reports, with what they checked.
REPORT_CONSTRAINTS = {
    "NotationIssuerValidation": "the issuer of the notation signing certificate (parameters.issuer): pin it in "
                                "the trust policy's trustedIdentities, or read signatures[].signer.issuer in a "
                                "template",
    "NotationNestedValidation": "notation signatures on nested artifacts (SBOMs, reports): sign them and read "
                                "content[] with K8sImageContent",
    "SbomValidation": "SBOM verifier reports: K8sImageContent over signed SBOMs (content.sboms)",
    "VulnerabilityReportValidation": "vulnerability report verifier reports: K8sImageContent (maximum severities, "
                                     "maximumReportAge) over signed reports",
}
MATCH_KEYS = ("namespaces", "excludedNamespaces", "labelSelector", "namespaceSelector", "scope", "name")


def _is_ratify_constraint(doc: dict[str, Any]) -> bool:
    return str(doc.get("apiVersion", "")).startswith("constraints.gatekeeper.sh/") and (
        doc.get("kind") in VERIFICATION_CONSTRAINTS or doc.get("kind") in REPORT_CONSTRAINTS)


def _constraints(out: Conversion, cluster: list[str], namespaced: dict[str, list[str]],
                 sources: list[dict[str, Any]]) -> None:
    """The cluster-wide verifiers' constraint — Ratify's default one, or each RatifyVerification in the input
    with its match — and one per namespace with namespaced verifiers."""
    given = [d for d in sources if d.get("kind") in VERIFICATION_CONSTRAINTS]
    for doc in sources:
        if doc.get("kind") in REPORT_CONSTRAINTS:
            out.attention(label(doc), f"not converted: it checked {REPORT_CONSTRAINTS[str(doc.get('kind'))]}")
    if cluster:
        for doc in given or [{}]:
            with _isolated(out, doc):
                _cluster_constraint(out, doc, cluster, namespaced)
    elif out.authority_names():
        out.attention("cluster-wide Verifiers", "none converted: no cluster-wide constraint was written (an empty "
                                                "authority list would admit namespaced authorities everywhere)")
    covered = [d["spec"]["match"] for d in given if isinstance(d.get("spec"), dict)
               and isinstance(d["spec"].get("match"), dict)]
    for namespace, names in sorted(namespaced.items()):
        if covered and not any(_matches_namespace(match, namespace) for match in covered):
            out.attention(f"Namespaced verifiers of {namespace}", "no constraint written: no Ratify constraint in "
                                                                  f"the input applied to namespace {namespace}")
            continue
        out.kubernetes.append(_constraint(_authority_name(f"ratify-constraint-{namespace}"), names,
                                          {"namespaces": [namespace]}))
        out.done(f"Namespaced verifiers of {namespace}", f"K8sSignedImages ratify-constraint-{namespace}: only "
                                                         f"namespace {namespace}, authorities {names} (left out of "
                                                         "the cluster-wide constraint)")


def _matches_namespace(match: dict[str, Any], namespace: str) -> bool:
    listed = match.get("namespaces")
    return (not listed or namespace in listed or "*" in listed) and namespace not in (
        match.get("excludedNamespaces") or [])


def _cluster_constraint(out: Conversion, doc: dict[str, Any], cluster: list[str],
                        namespaced: dict[str, list[str]]) -> None:
    """Ratify's default constraint (`doc` empty) or a RatifyVerification from the input, as K8sSignedImages."""
    match = {k: v for k, v in ((doc.get("spec") or {}).get("match") or {}).items() if k in MATCH_KEYS}
    if not doc:
        match = {"excludedNamespaces": SYSTEM_NAMESPACES}
    if not match.get("namespaces") and namespaced:
        # Namespaced verifiers get constraints of their own there.
        match["excludedNamespaces"] = sorted({*match.get("excludedNamespaces", []), *namespaced})
    name = name_of(doc) if doc else "ratify-constraint"
    out.kubernetes.append(_constraint(name, cluster, match))
    source = label(doc) if doc else "RatifyVerification ratify-constraint (Ratify's default)"
    out.done(source, f"K8sSignedImages {name}: every image verified by one of {cluster}, match {match} (it names "
                     "the authorities; Ratify's isSuccess would accept any of them, namespaced ones included)")
    if doc:
        kinds = ((doc.get("spec") or {}).get("match") or {}).get("kinds")
        out.done(f"{label(doc)}: spec.match.kinds", "all Pod-creating kinds (Pods, and the workloads that "
                                                    f"create them, so a Deployment is refused at apply time); "
                                                    f"the input had {kinds}")
        action = (doc.get("spec") or {}).get("enforcementAction")
        if action:
            out.done(f"{label(doc)}: spec.enforcementAction {action}", "see (enforcement action) below")
    for key in set((doc.get("spec") or {}).get("match") or {}) - {*MATCH_KEYS, "kinds"}:
        out.attention(f"{label(doc)}: spec.match.{key}", "not a Gatekeeper match field sigwarden knows, dropped")


def _ratify_provider(out: Conversion) -> None:
    out.kubernetes.append({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "Provider",
                           "metadata": {"name": "ratify-provider"},
                           "spec": {"url": PROVIDER_URL, "timeout": 3,
                                    "caBundle": "REPLACE_WITH_BASE64_PEM_CA_BUNDLE"}})
    out.attention("Provider ratify-provider", "written so Ratify's templates keep working during the switch: fill "
                                              "caBundle (the Helm chart's CA); they admit on any sigwarden "
                                              "authority (isSuccess), without the namespace scoping above")


def _supported(out: Conversion, doc: dict[str, Any]) -> bool:
    if _is_ratify_constraint(doc):
        return False  # read by _constraints
    library = {kind.lower() for kind in (*VERIFICATION_CONSTRAINTS, *REPORT_CONSTRAINTS)}
    if doc.get("kind") == "ConstraintTemplate" and name_of(doc).lower() in library:
        out.done(label(doc), "not needed: the shipped templates (K8sSignedImages, K8sImageContent) replace it")
        return False
    group, _, version = str(doc.get("apiVersion") or "").partition("/")
    if group != GROUP:
        out.attention(label(doc), f"apiVersion {doc.get('apiVersion')!r} is not a Ratify resource, skipped")
        return False
    if version not in VERSIONS:
        out.attention(label(doc), f"Ratify API version {version} is not supported ({', '.join(VERSIONS)}), skipped")
        return False
    return True


def convert(documents: Iterable[dict[str, Any]], options: RatifyOptions | None = None) -> Conversion:
    options = options or RatifyOptions()
    out = Conversion(origin="ratify", config={"stores": [], "authorities": []})
    documents = list(documents)
    constraints = [d for d in documents if _is_ratify_constraint(d)]
    documents = [d for d in documents if _supported(out, d)]
    index = MaterialIndex()
    for doc in documents:
        if doc.get("kind") in MATERIAL_KINDS:
            with _isolated(out, doc):
                index.add(doc, convert_material(out, doc))
    cluster: list[str] = []
    namespaced: dict[str, list[str]] = {}
    hosts = named_hosts(documents)
    for doc in documents:
        with _isolated(out, doc):
            _convert_one(out, doc, index, cluster, namespaced, hosts)
    _constraints(out, cluster, namespaced, constraints)
    if options.ratify_provider:
        _ratify_provider(out)
    if not out.config["stores"]:
        del out.config["stores"]
    return out


def named_hosts(documents: Iterable[Any]) -> frozenset[str]:
    """Registry hosts the input names exactly: the host part of every string in it that looks like an image
    scope (`host/…` with a dot in the host and no wildcard), e.g. in trust policies' registryScopes."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and "/" in value and " " not in value and "://" not in value:
            host = value.split("/", 1)[0].lower()
            if "." in host and "*" not in host and re.fullmatch(r"[a-z0-9.\-]+(:\d+)?", host):
                found.add(host)

    walk(list(documents))
    return frozenset(found)


def _convert_one(out: Conversion, doc: dict[str, Any], index: MaterialIndex, cluster: list[str],
                 namespaced: dict[str, list[str]], hosts: frozenset[str] = frozenset()) -> None:
    kind = doc.get("kind")
    if kind in ("Verifier", "NamespacedVerifier"):
        namespace = scope_of(doc)
        name = _authority_name(name_of(doc))
        if name in out.authority_names():
            name = _authority_name(f"{namespace or 'cluster'}-{name}")
        for authority in convert_verifier(out, doc, name, index):
            out.config["authorities"].append(authority)
            (namespaced.setdefault(namespace, []) if namespace else cluster).append(authority["name"])
    elif kind in ("Store", "NamespacedStore"):
        _add_stores(out, doc, convert_store(out, doc, hosts))
    elif kind in ("Policy", "NamespacedPolicy"):
        convert_policy(out, doc)
    elif kind not in MATERIAL_KINDS:
        out.attention(label(doc), "not a Ratify kind this import knows, skipped")


@contextmanager
def _isolated(out: Conversion, doc: dict[str, Any]) -> Iterator[None]:
    """One malformed object is a report line, never the end of the import."""
    try:
        yield
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        out.attention(label(doc), f"malformed, skipped ({type(exc).__name__}: {exc}); check it against Ratify's "
                                  "CRD for this kind")


def _add_stores(out: Conversion, doc: dict[str, Any], stores: list[dict[str, Any]]) -> None:
    """Stores are tried in order and `*` matches all: host-bound stores go before it, a second one is unused."""
    for store in stores:
        existing: list[dict[str, Any]] = out.config["stores"]
        catch_all = next((s for s in existing if s["match"] == ["*"]), None)
        if catch_all is None:
            existing.append(store)
        elif store["match"] != ["*"]:
            existing.insert(existing.index(catch_all), store)
        elif store != catch_all:
            out.attention(label(doc), "a second store for all registries is never used (the first one matching "
                                      "wins): merge its settings into the first by hand")
