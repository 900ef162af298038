"""Authorities: cosign, notation and kritis-style trust material, read and checked once at load time."""

from __future__ import annotations

import base64
import glob
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from provider import yamlerrors
from provider.config.model import (
    PURPOSES,
    AttestationAuthority,
    AttestationKey,
    Authority,
    ConfigError,
    CosignAuthority,
    Identity,
    KeylessConfig,
    NotationAuthority,
    PKIConfig,
    PublicKey,
    SignedIdentity,
)
from provider.config.placeholders import reject_placeholders
from provider.config.reader import SCHEMA, FileReader, Node
from provider.config.signedidentity import signed_identity
from provider.config.trustedroot import RootMaterial, read_trusted_root
from provider.regexps import GoRegexp, RegexpError
from provider.verifiers.notation.trustpolicy import TrustPolicyError, parse_trust_policy


def _identities(node: Node, key: str) -> tuple[Identity, ...]:
    identities = []
    for where, item in node.items(key):
        entry = Node(item, where, node.source, SCHEMA["authorities[].cosign.keyless.identities[]"])
        if not (entry.has("subject") or entry.has("subjectRegExp")):
            raise ConfigError(node.source, where, "needs subject or subjectRegExp")
        for exact in ("subject", "issuer"):
            # cosign's CheckCertificatePolicy silently drops the exact value when a regexp is given too;
            # policy-controller (Identity.Validate) refuses the pair, and so do we.
            if entry.has(exact) and entry.has(f"{exact}RegExp"):
                raise entry.error(f"{exact}RegExp", f"give {exact} or {exact}RegExp, not both")
        identities.append(Identity(
            subject=entry.data.get("subject"),
            subject_regexp=_regexp(entry, "subjectRegExp"),
            issuer=entry.data.get("issuer"),
            issuer_regexp=_regexp(entry, "issuerRegExp"),
        ))
    return tuple(identities)


def _regexp(node: Node, key: str) -> GoRegexp | None:
    if not node.has(key):
        return None
    try:
        # cosign's meaning: Go regexp syntax, a search anywhere unless the pattern anchors itself.
        return GoRegexp.compile(node.string(key))
    except RegexpError as exc:
        raise node.error(key, str(exc)) from None


def _cosign(node: Node, reader: FileReader) -> CosignAuthority:
    tlog = node.string("tlog", "optional", choices=("optional", "required"))
    rekor_keys = reader.public_keys(node, "rekorKeys")
    keyless = _keyless(node.child("keyless", SCHEMA["authorities[].cosign.keyless"]), reader, rekor_keys) \
        if node.has("keyless") else None
    pki = None
    if node.has("pki"):
        pk = node.child("pki", SCHEMA["authorities[].cosign.pki"])
        pki = PKIConfig(reader.certificates(pk, "roots"), reader.certificates(pk, "intermediates"),
                        _identities(pk, "identities"))
        if not pki.roots:
            raise pk.error("roots", "pki needs at least one root certificate")
    authority = CosignAuthority(
        public_keys=reader.public_keys(node, "publicKeys"),
        tlog=tlog,
        rekor_keys=rekor_keys,
        docker_reference=node.string("dockerReference", "ignore", choices=("ignore", "repository")),
        keyless=keyless,
        pki=pki,
    )
    if not (authority.public_keys or keyless or pki):
        raise node.error("publicKeys", "a cosign authority needs publicKeys, keyless or pki")
    if tlog == "required" and not (rekor_keys or keyless):
        raise node.error("rekorKeys", "tlog: required needs rekorKeys to check the log entries")
    return authority


def _keyless(kl: Node, reader: FileReader, rekor_keys: tuple[PublicKey, ...]) -> KeylessConfig:
    if not kl.has("trustedRoot") and not kl.data.get("fulcioRoots"):
        raise kl.error("fulcioRoots", "keyless needs trustedRoot or fulcioRoots")
    trusted_root = kl.path("trustedRoot")
    material = read_trusted_root(kl, reader.json(kl, "trustedRoot", trusted_root)) if trusted_root else RootMaterial()
    ct_keys = reader.public_keys(kl, "ctLogKeys") + material.ct_keys
    # cosign and sigstore-go require an embedded SCT whenever CT log keys are known; without any, none can be
    # checked (config check warns).
    sct = kl.string("sct", "required" if ct_keys else "optional", choices=("required", "optional"))
    if sct == "required" and not ct_keys:
        raise kl.error("sct", "sct: required needs CT log keys (ctLogKeys, or ctlogs in the trustedRoot)")
    keyless = KeylessConfig(
        trusted_root=trusted_root,
        roots=reader.certificates(kl, "fulcioRoots"),
        intermediates=reader.certificates(kl, "fulcioIntermediates"),
        rekor_keys=(reader.public_keys(kl, "rekorKeys") or rekor_keys) + material.tlog_keys,
        identities=_identities(kl, "identities"),
        authorities=material.authorities,
        ct_keys=ct_keys,
        sct=sct,
        bundle_verifier=_bundle_verifier(kl, trusted_root) if trusted_root else None,
    )
    if not keyless.identities:
        raise kl.error("identities", "keyless needs at least one identity (any signer would pass)")
    return keyless


def _bundle_verifier(node: Node, trusted_root: Path) -> Any:
    """sigstore-python's offline verifier for Sigstore bundles, from the same trusted root."""
    # Imported here: sigstore takes a third of a second to import, and only a trustedRoot needs it.
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import TrustedRoot

    from provider.verifiers.bundle import LibraryVerifier

    try:
        return LibraryVerifier(trusted_root=TrustedRoot.from_file(str(trusted_root)))
    except (SigstoreError, ValueError, KeyError, TypeError, OSError) as exc:
        raise node.error("trustedRoot", f"sigstore cannot use this trusted root: {exc}") from None


def _notation(node: Node, reader: FileReader) -> NotationAuthority:
    stores_node = node.child("trustStores", set(node.data.get("trustStores") or {}))
    stores: dict[str, tuple[x509.Certificate, ...]] = {}
    for name in stores_node.data:
        store_type, _, store_name = str(name).partition(":")
        if store_type not in ("ca", "signingAuthority", "tsa") or not store_name:
            raise stores_node.error(str(name), "trust store names are <ca|signingAuthority|tsa>:<name>")
        stores[str(name)] = reader.certificates(stores_node, str(name))
        if not stores[str(name)]:
            raise stores_node.error(str(name), "trust store has no certificates")
    if not stores:
        raise node.error("trustStores", "a notation authority needs at least one trust store")
    policy_node = node.child("trustPolicy", SCHEMA["authorities[].notation.trustPolicy"])
    if policy_node.has("file") == policy_node.has("inline"):
        raise node.error("trustPolicy", "give exactly one of file or inline")
    if policy_node.has("file"):
        path = policy_node.path("file")
        assert path is not None
        policy = reader.json(policy_node, "file", path)
    else:
        policy = policy_node.data["inline"]
    if not isinstance(policy, dict):
        raise node.error("trustPolicy", "not a notation trust policy document (a JSON object)")
    try:
        document = parse_trust_policy(policy, known_stores=tuple(stores))
    except TrustPolicyError as exc:
        raise node.error("trustPolicy", str(exc)) from None
    return NotationAuthority(trust_stores=stores, trust_policy=document)


LOOKASIDE_HINT = ("GPG simple signatures are only read from a lookaside (the https://, http:// or file:// base "
                  "that `skopeo copy --sign-by` wrote to, as in registries.d `lookaside:`)")


def _attestation(node: Node, reader: FileReader) -> AttestationAuthority:
    keys = _attestation_keys(node, reader)
    lookaside = node.string("lookaside") if node.has("lookaside") else ""
    if not lookaside and any(k.kind == "pgp" for k in keys):
        # Without one, a GPG-only authority finds no signatures at all: fail here, not at admission time.
        raise node.error("lookaside", f"is required for PGP keys: {LOOKASIDE_HINT}")
    return AttestationAuthority(keys=keys, lookaside=lookaside, signed_identity=signed_identity(node))


def _attestation_keys(node: Node, reader: FileReader) -> tuple[AttestationKey, ...]:
    """Keys in kritis' shapes: `publicKeyData` (+ `publicKeyId`) and/or v1beta1 `publicKeys[]`."""
    keys: list[AttestationKey] = []
    if node.has("publicKeyData"):
        raw = node.string("publicKeyData")
        try:
            material = base64.b64decode(raw, validate=True).decode()
        except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 text
            raise node.error("publicKeyData", "expected base64 of a PEM public key or an armoured PGP key") from None
        keys.append(_attestation_key(node, "publicKeyData", str(node.data.get("publicKeyId", "")), material, ""))
    for where, item in node.items("publicKeys"):
        entry = Node(item, where, node.source, SCHEMA["authorities[].attestation.publicKeys[]"])
        key_id = str(entry.data.get("keyId", ""))
        if entry.has("file"):
            keys.extend(_attestation_key_file(entry, reader, key_id))
        elif entry.string("keyType", choices=("PGP", "PKIX")) == "PGP":
            keys.append(_attestation_key(entry, "asciiArmoredPgpPublicKey", key_id,
                                         entry.string("asciiArmoredPgpPublicKey"), ""))
        else:
            pkix = entry.child("pkixPublicKey", SCHEMA["authorities[].attestation.publicKeys[].pkixPublicKey"])
            keys.append(_attestation_key(pkix, "publicKeyPem", key_id, pkix.string("publicKeyPem"),
                                         pkix.data.get("signatureAlgorithm", "")))
    if not keys:
        raise node.error("publicKeys", "an attestation authority needs publicKeyData or publicKeys")
    return tuple(keys)


def _attestation_key_file(entry: Node, reader: FileReader, key_id: str) -> list[AttestationKey]:
    """`{file: …}`: a PEM public key, or OpenPGP keys armoured or binary (a keyring may hold several)."""
    if entry.has("asciiArmoredPgpPublicKey") or entry.has("pkixPublicKey"):
        raise entry.error("file", "give the key either in the file or inline, not both")
    path = entry.path("file")
    assert path is not None
    data = reader.read(entry, "file", path)
    key_type = entry.string("keyType", "PKIX" if b"BEGIN PUBLIC KEY" in data else "PGP", choices=("PGP", "PKIX"))
    if key_type == "PKIX":
        return [_attestation_key(entry, "file", key_id, data.decode(errors="replace"), "")]
    import pysequoia

    try:
        certs = pysequoia.Cert.split_bytes(data)
    except Exception as exc:  # pysequoia raises RuntimeError with a Rust backtrace appended
        raise entry.error("file", f"{path.name}: not an OpenPGP key or keyring: {str(exc).splitlines()[0]}") from None
    if not certs:
        raise entry.error("file", f"{path.name}: holds no OpenPGP key")
    if key_id and len(certs) > 1:
        raise entry.error("keyId", f"{path.name} holds {len(certs)} keys: one keyId cannot name them all")
    return [AttestationKey(key_id=key_id or cert.fingerprint.upper(), kind="pgp", pgp=cert) for cert in certs]


def _attestation_key(node: Node, key: str, key_id: str, material: str, algorithm: str) -> AttestationKey:
    if "-----BEGIN" not in material:
        # kritis stores armour and PEM base64-encoded in its CRDs.
        try:
            material = base64.b64decode(material, validate=True).decode()
        except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 text
            raise node.error(key, "neither PEM/armoured text nor base64 of it") from None
    if "BEGIN PGP PUBLIC KEY BLOCK" in material:
        import pysequoia

        try:
            cert = pysequoia.Cert.from_bytes(material.encode())
        except Exception as exc:  # pysequoia raises RuntimeError with a Rust backtrace appended
            raise node.error(key, f"corrupt OpenPGP public key: {str(exc).splitlines()[0]}") from None
        return AttestationKey(key_id=key_id or cert.fingerprint.upper(), kind="pgp", pgp=cert)
    if "BEGIN PUBLIC KEY" in material:
        try:
            public = load_pem_public_key(material.encode())
        except ValueError as exc:
            raise node.error(key, f"unparsable PEM public key: {exc}") from None
        return AttestationKey(key_id=key_id, kind="pkix", pkix=PublicKey(key_id or "pkix", public),
                              signature_algorithm=algorithm)
    raise node.error(key, "neither a PEM public key nor an ASCII-armoured PGP public key")


def parse_authority(where: str, data: Any, source: Path, reader: FileReader) -> Authority:
    node = Node(data, where, source, SCHEMA["authorities[]"])
    name = node.string("name")
    if not re.fullmatch(r"[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?", name):
        raise node.error("name", f"{name!r}: use lowercase letters, digits, '.', '_' or '-' (max 63)")
    sections = [k for k in ("cosign", "notation", "attestation") if node.has(k)]
    if not sections:
        raise ConfigError(source, where, f"authority {name!r} needs a cosign, notation or attestation section")
    purposes = node.strings("purposes", PURPOSES)
    unknown = [p for p in purposes if p not in PURPOSES]
    if unknown or not purposes:
        raise node.error("purposes", f"unknown purpose {unknown[0]!r}: use {', '.join(PURPOSES)}" if unknown
                         else f"must name at least one of {', '.join(PURPOSES)}")
    return Authority(
        name=name,
        scopes=node.patterns("scopes"),
        yield_to=tuple(dict.fromkeys(node.strings("yieldTo"))),
        purposes=tuple(dict.fromkeys(purposes)),
        cosign=_cosign(node.child("cosign", SCHEMA["authorities[].cosign"]), reader) if node.has("cosign") else None,
        notation=_notation(node.child("notation", SCHEMA["authorities[].notation"]), reader)
        if node.has("notation") else None,
        attestation=_attestation(node.child("attestation", SCHEMA["authorities[].attestation"]), reader)
        if node.has("attestation") else None,
    )


def resolve_precedence(authorities: list[Authority], source: Path) -> list[Authority]:
    """Give each authority with `yieldTo` the scopes of the authorities it yields to (an unscoped one: `*`)."""
    by_name = {a.name: a for a in authorities}
    resolved = []
    for index, authority in enumerate(authorities):
        scopes: list[str] = []
        for name in authority.yield_to:
            other = by_name.get(name)
            if other is None or other is authority:
                problem = "an authority cannot yield to itself" if other is authority else (
                    f"no authority is named {name!r}")
                raise ConfigError(source, f"authorities[{index}] ({authority.name}).yieldTo", problem)
            scopes.extend(other.scopes or ("*",))
        resolved.append(replace(authority, yield_scopes=tuple(dict.fromkeys(scopes))) if scopes else authority)
    return resolved


def _kritis_authority(where: str, doc: dict[str, Any], source: Path, reader: FileReader,
                      include: Node) -> Authority:
    """A kritis `AttestationAuthority` document, in the v1beta1 `publicKeys` or the `publicKeyData` shape."""
    meta = Node(doc.get("metadata") or {}, f"{where}.metadata", source, set(doc.get("metadata") or {}))
    spec = Node(doc.get("spec") or {}, f"{where}.spec", source, set(doc.get("spec") or {}))
    name = meta.string("name")
    keys = _attestation_keys(spec, reader)
    lookaside = include.string("lookaside") if include.has("lookaside") else ""
    if not lookaside and any(k.kind == "pgp" for k in keys):
        raise include.error("lookaside", f"AttestationAuthority {name!r} in {source.name} has PGP keys: "
                            f"{LOOKASIDE_HINT}; include it as {{path: …, lookaside: …}}")
    # kritis signs the bare repository as `docker-reference` and compares it with the image's repository
    # (pkg/attestlib checkAuthenticatedAttestation): matchRepository.
    return Authority(name=name, attestation=AttestationAuthority(keys=keys, lookaside=lookaside,
                                                                 signed_identity=SignedIdentity("matchRepository")))


def included_authorities(root: Node, reader: FileReader) -> list[Authority]:
    """`include:` entries: a file glob, or `{path: glob, lookaside: URL}` for kritis files with GPG keys."""
    authorities: list[Authority] = []
    for where, entry in root.items("include"):
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict):
            raise ConfigError(root.source, where, "expected a file glob or {path: glob, lookaside: URL}")
        include = Node(entry, where, root.source, SCHEMA["include[]"])
        pattern = include.string("path")
        matches = sorted(glob.glob(str(root.source.parent / pattern)))
        if not matches and not any(ch in pattern for ch in "*?["):
            raise ConfigError(root.source, where, f"file not found: {root.source.parent / pattern}")
        for file_name in matches:
            path = Path(file_name).resolve()
            reader.sources.append(path)
            authorities.extend(_authorities_from_file(path, reader, include))
    return authorities


def _authorities_from_file(path: Path, reader: FileReader, include: Node) -> list[Authority]:
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, "", yamlerrors.problem(exc)) from None
    reject_placeholders(documents, path, "document")
    found: list[Authority] = []
    for index, doc in enumerate(documents):
        where = f"document[{index}]"
        if isinstance(doc, dict) and doc.get("kind") == "AttestationAuthority":
            found.append(_kritis_authority(where, doc, path, reader, include))
        elif isinstance(doc, dict) and "authorities" in doc and len(doc) == 1:
            node = Node(doc, "", path, {"authorities"})
            found.extend(parse_authority(w, item, path, reader) for w, item in node.items("authorities"))
        else:
            raise ConfigError(path, where, "expected kind: AttestationAuthority or an `authorities:` list")
    return found
