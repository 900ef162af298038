"""Import from kritis: AttestationAuthority → authority, GenericAttestationPolicy → K8sSignedImages constraint,
ImageSecurityPolicy → K8sImageContent constraint.

kritis read attestations from Grafeas; sigwarden reads GPG simple signatures from a containers-image lookaside,
so every authority with a PGP key needs one: `--lookaside URL`, or a `TODO:` placeholder that `config check`
refuses until it is filled.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provider.importers.model import POD_KINDS, Conversion, label, name_of, namespace_of

BREAKGLASS = "kritis.grafeas.io/breakglass"
LOOKASIDE_TODO = ("attestation.lookaside of authority {name}: the https://, http:// or file:// base where its GPG "
                  "simple signatures are (what `skopeo copy --sign-by` wrote; registries.d `lookaside:`)")


@dataclass(frozen=True)
class KritisOptions:
    lookaside: str = ""  # for every authority with PGP keys


@dataclass(frozen=True)
class Source:
    """A kritis document, the file it came from (file key references are relative to it) and the input it was
    found in (a directory given on the command line, else the file's own directory): key files must lie inside."""

    doc: dict[str, Any]
    path: Path
    root: Path | None = None


def _is_pgp(spec: dict[str, Any]) -> bool:
    if any(isinstance(k, dict) and k.get("keyType") == "PGP" for k in spec.get("publicKeys") or []):
        return True
    try:
        return b"PGP PUBLIC KEY" in base64.b64decode(str(spec.get("publicKeyData") or ""), validate=True)
    except ValueError:  # not base64, or not ASCII
        return "PGP PUBLIC KEY" in str(spec.get("publicKeyData"))


def _keys(out: Conversion, source: Source, name: str) -> list[dict[str, Any]]:
    """v1beta1 `publicKeys[]`; a `file:` key is copied next to the config so the output is self-contained.
    Only files inside the input's own directory are read: the input may be a cluster dump with tenant-written
    objects, and a path out of it (absolute, `..`, a symlink) would copy any file of the importing machine."""
    keys = []
    base = (source.root or source.path.parent).resolve()
    for index, key in enumerate(source.doc["spec"].get("publicKeys") or []):
        if isinstance(key, dict) and key.get("file"):
            path = (source.path.parent / str(key["file"])).resolve()
            if not path.is_relative_to(base):
                out.attention(f"{label(source.doc)}: spec.publicKeys[{index}].file",
                              f"{key['file']!r} is outside the input directory {base.name or base}; key files "
                              "are read only from there: copy the key into it (or give it inline as "
                              "asciiArmoredPgpPublicKey / pkixPublicKey) and import again")
                continue
            try:
                content = path.read_bytes()
            except OSError as exc:
                raise ValueError(f"{source.path}: {label(source.doc)}: spec.publicKeys[{index}].file: cannot read "
                                 f"{path}: {exc.strerror}") from None
            key = {**key, "file": out.add_file(f"keys/{name}-{index}{path.suffix or '.key'}", content)}
            out.done(f"{label(source.doc)}: spec.publicKeys[{index}].file", f"key file {key['file']}")
        keys.append(key)
    return keys


def convert_authority(out: Conversion, source: Source, name: str, options: KritisOptions) -> None:
    doc, spec = source.doc, source.doc.get("spec") or {}
    where = label(doc)
    attestation: dict[str, Any] = {k: spec[k] for k in ("publicKeyData", "publicKeyId") if spec.get(k)}
    if spec.get("publicKeys"):
        attestation["publicKeys"] = _keys(out, source, name)
    if not attestation.get("publicKeyData") and not attestation.get("publicKeys"):
        secret = spec.get("privateKeySecretName", "")
        where_key = f" (kritis kept its key pair in the Secret {secret})" if secret else ""
        out.attention(where, f"the document has no public key{where_key}; add an authority `{name}` with "
                             "attestation.publicKeyData (base64 of the PEM or armoured PGP public key)")
        return
    if _is_pgp(spec):
        attestation["lookaside"] = options.lookaside or out.todo(f"{where}: (Grafeas)",
                                                                 LOOKASIDE_TODO.format(name=name))
        if options.lookaside:
            out.done(f"{where}: (Grafeas)", f"attestation.lookaside {options.lookaside} (--lookaside)")
    # kritis signs `docker-reference` as the bare repository and compares it with the image's repository
    # (pkg/attestlib checkAuthenticatedAttestation): containers/image's matchRepository, not its default.
    attestation["signedIdentity"] = {"type": "matchRepository"}
    out.config.setdefault("authorities", []).append({"name": name, "attestation": attestation})
    out.done(f"{where}: spec.publicKeys / publicKeyData", f"authorities[{name}].attestation")
    if spec.get("noteReference"):
        out.done(f"{where}: spec.noteReference", "not needed: signatures are read from the lookaside or the "
                                                 "registry, not from Grafeas notes")


def allowlist_patterns(out: Conversion, doc: dict[str, Any]) -> list[str]:
    """A GenericAttestationPolicy's `admissionAllowlistPatterns[].namePattern` values; an empty one is reported
    (kritis stops at it with an error and allowlists nothing)."""
    patterns = []
    for index, entry in enumerate((doc.get("spec") or {}).get("admissionAllowlistPatterns") or []):
        pattern = entry.get("namePattern") if isinstance(entry, dict) else None
        if isinstance(pattern, str) and pattern:
            patterns.append(pattern)
        else:
            out.attention(f"{label(doc)}: spec.admissionAllowlistPatterns[{index}].namePattern",
                          "empty or not a string: kritis refused every image it reviewed with it; dropped")
    return patterns


def namespace_allowlists(out: Conversion, docs: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """kritis (pkg/kritis/review/review.go, generateGapAllowlist) exempts an image allowlisted by any policy of
    the pod's namespace from every policy of that namespace, so each constraint gets the namespace's union."""
    allowlists: dict[str, list[str]] = {}
    for doc in docs:
        patterns = allowlists.setdefault(namespace_of(doc) or "default", [])
        patterns.extend(p for p in allowlist_patterns(out, doc) if p not in patterns)
    return allowlists


def convert_policy(out: Conversion, doc: dict[str, Any], names: dict[tuple[str, str], str],
                   exempt: list[str]) -> None:
    namespace = namespace_of(doc) or "default"
    spec = doc.get("spec") or {}
    authorities = [names.get((namespace, str(n)), str(n)) for n in spec.get("attestationAuthorityNames") or []]
    out.kubernetes.append({
        "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSignedImages",
        "metadata": {"name": name_of(doc) if name_of(doc) != "unnamed" else "kritis-policy"},
        "spec": {
            "enforcementAction": "deny",
            "match": {"namespaces": [namespace], "kinds": POD_KINDS},
            "parameters": {"authorities": authorities, "requireAll": True, "exemptImageNamePatterns": exempt,
                           "breakglassAnnotation": BREAKGLASS},
        },
    })
    out.done(f"{label(doc)}: spec.attestationAuthorityNames", f"K8sSignedImages {name_of(doc)}: parameters."
                                                              f"authorities {authorities} (requireAll)")
    if exempt:
        out.done(f"{label(doc)}: spec.admissionAllowlistPatterns", "parameters.exemptImageNamePatterns (matched "
                                                                  "as kritis does, with the patterns of every "
                                                                  f"policy of namespace {namespace})")


ISP_LEVELS = ("LOW", "MEDIUM", "HIGH", "CRITICAL", "BLOCK_ALL", "ALLOW_ALL")
GRAFEAS_NOTE_PREFIX = "providers/goog-vulnz/notes/"


def isp_allowlist(out: Conversion, doc: dict[str, Any]) -> list[str]:
    """kritis (pkg/kritis/crd/securitypolicy/securitypolicy.go, imageInAllowlist) compares `imageAllowlist`
    entries with the image string for equality. As name patterns they mean the same unless they end in "*",
    which would become a wildcard; such an entry equals no pullable image, so it is dropped and reported."""
    entries = []
    for index, entry in enumerate((doc.get("spec") or {}).get("imageAllowlist") or []):
        if isinstance(entry, str) and entry and not entry.endswith("*"):
            entries.append(entry)
        else:
            out.attention(f"{label(doc)}: spec.imageAllowlist[{index}]",
                          f"{entry!r} can equal no image reference (kritis compared entries literally, so a "
                          "trailing '*' is no wildcard there); dropped")
    return entries


def convert_isp(out: Conversion, doc: dict[str, Any]) -> None:
    """ImageSecurityPolicy → K8sImageContent: kritis' `maximumSeverity` is the limit for fixable
    vulnerabilities (default CRITICAL), `maximumFixUnavailableSeverity` the one for unfixable ones (default
    ALLOW_ALL); allowlisted CVEs are Grafeas note names, whose last part is the CVE id."""
    where = label(doc)
    spec = doc.get("spec") or {}
    requirements = spec.get("packageVulnerabilityRequirements") or {}
    fixable = str(requirements.get("maximumSeverity") or "CRITICAL")
    unfixable = str(requirements.get("maximumFixUnavailableSeverity") or "ALLOW_ALL")
    for key, value in (("maximumSeverity", fixable), ("maximumFixUnavailableSeverity", unfixable)):
        if value not in ISP_LEVELS:
            out.attention(f"{where}: spec.packageVulnerabilityRequirements.{key}",
                          f"{value!r} is not a kritis severity ({', '.join(ISP_LEVELS)}); the policy was not "
                          "converted")
            return
    cves = [str(c) for c in requirements.get("allowlistCVEs") or []]
    allowlist = [c.removeprefix(GRAFEAS_NOTE_PREFIX) for c in cves]
    exempt = isp_allowlist(out, doc)
    name = name_of(doc) if name_of(doc) != "unnamed" else "kritis-isp"
    out.kubernetes.append({
        "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sImageContent",
        "metadata": {"name": name},
        "spec": {
            "enforcementAction": "deny",
            "match": {"namespaces": [namespace_of(doc) or "default"], "kinds": POD_KINDS},
            "parameters": {"requireVulnerabilityReport": True, "maximumFixableSeverity": fixable,
                           "maximumUnfixableSeverity": unfixable, "allowlistCVEs": allowlist,
                           "exemptImageNamePatterns": exempt},
        },
    })
    requirement = f"{where}: spec.packageVulnerabilityRequirements"
    out.done(f"{requirement}.maximumSeverity", f"K8sImageContent {name}: parameters.maximumFixableSeverity {fixable}")
    out.done(f"{requirement}.maximumFixUnavailableSeverity",
             f"K8sImageContent {name}: parameters.maximumUnfixableSeverity {unfixable}")
    if cves:
        out.done(f"{requirement}.allowlistCVEs", f"parameters.allowlistCVEs {allowlist} (Grafeas note names "
                                                 "reduced to their CVE ids)")
    if exempt:
        out.done(f"{where}: spec.imageAllowlist", "parameters.exemptImageNamePatterns (exact image strings, as "
                                                  "kritis compared them)")
    out.attention(f"{where}: (Grafeas)", "kritis read scan results from Grafeas; sigwarden reads signed "
                                         "vulnerability reports attached to the image (cosign vuln attestations): "
                                         "give your scanner's key an authority with purposes: "
                                         "[vulnerability-report] and attest its reports, or every image is denied "
                                         "for want of a report (requireVulnerabilityReport)")
    if spec.get("attestationAuthorityName"):
        out.done(f"{where}: spec.attestationAuthorityName", "not needed: kritis signed the images it admitted; "
                                                            "sigwarden decides at admission from the signed report")


def _authority_names(authorities: list[Source], out: Conversion) -> dict[tuple[str, str], str]:
    """sigwarden names are cluster-wide: a name used in two namespaces is qualified with the namespace."""
    counts = Counter(name_of(s.doc) for s in authorities)
    names = {}
    for source in authorities:
        name, namespace = name_of(source.doc), namespace_of(source.doc) or "default"
        names[(namespace, name)] = f"{namespace}-{name}" if counts[name] > 1 else name
        if counts[name] > 1:
            out.attention(label(source.doc), f"the name {name!r} is used in {counts[name]} namespaces and sigwarden "
                                             f"authority names are cluster-wide: renamed to {names[(namespace, name)]}"
                                             f", and the policies of namespace {namespace} refer to that name")
    return names


def convert(sources: Iterable[Source], options: KritisOptions | None = None) -> Conversion:
    options = options or KritisOptions()
    out = Conversion(origin="kritis", config={"authorities": []})
    sources = list(sources)
    authorities = [s for s in sources if s.doc.get("kind") == "AttestationAuthority"]
    names = _authority_names(authorities, out)
    allowlists = namespace_allowlists(out, [s.doc for s in sources if s.doc.get("kind") == "GenericAttestationPolicy"])
    for source in authorities:
        convert_authority(out, source, names[(namespace_of(source.doc) or "default", name_of(source.doc))], options)
    for source in sources:
        kind = source.doc.get("kind")
        if kind == "GenericAttestationPolicy":
            convert_policy(out, source.doc, names, allowlists[namespace_of(source.doc) or "default"])
        elif kind == "ImageSecurityPolicy":
            convert_isp(out, source.doc)
        elif kind != "AttestationAuthority":
            out.attention(label(source.doc), "not a kritis resource, skipped")
    return out


def load(paths: Iterable[Path]) -> list[Source]:
    """Files or directories; multi-document YAML and `kind: List` are unrolled; each document keeps its input."""
    from provider.policy.gatekeeper import load_documents

    return [Source(doc, Path(origin), path if path.is_dir() else path.parent)
            for path in paths for doc, origin in load_documents([path])]
