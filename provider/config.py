"""Load and validate sigwarden's YAML configuration into frozen dataclasses.

Every error names the file and the dotted field it is about, so a user can fix it without reading code.
File references (keys, certificates, trust policies) are resolved relative to the file that names them and
are read here, once, so a config that loads is a config whose trust material parses.
"""

from __future__ import annotations

import base64
import binascii
import glob
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from provider.verifiers.notation.trustpolicy import TrustPolicyDocument, TrustPolicyError, parse_trust_policy


class ConfigError(Exception):
    """A configuration problem, with the file and field it concerns."""

    def __init__(self, source: Path | str, field_path: str, problem: str) -> None:
        self.source = str(source)
        self.field_path = field_path
        self.problem = problem
        where = f"{self.source}: {field_path}" if field_path else self.source
        super().__init__(f"{where}: {problem}")


# --- durations -------------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Parse `2.5s`, `300ms`, `5m` or `1h` into seconds."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"expected a duration such as 2.5s, 300ms or 5m, got {text!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


# --- the configuration model -----------------------------------------------------------------------------

@dataclass(frozen=True)
class TLSConfig:
    cert: Path | None = None
    key: Path | None = None
    client_ca: Path | None = None
    client_names: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.cert, self.key, self.client_ca) if p is not None)


@dataclass(frozen=True)
class ServerConfig:
    listen: str = "0.0.0.0:8443"
    metrics_listen: str = "0.0.0.0:9090"
    request_deadline: float = 2.5
    max_keys: int = 1024
    max_body_bytes: int = 1024 * 1024
    threads: int = 16
    reload_interval: float = 2.0
    tls: TLSConfig = field(default_factory=TLSConfig)


@dataclass(frozen=True)
class CacheConfig:
    ttl: float = 300.0
    unverified_ttl: float = 30.0
    error_ttl: float = 10.0
    max_entries: int = 100_000


@dataclass(frozen=True)
class VerificationConfig:
    concurrency: int = 32
    max_signatures: int = 16
    max_blob_bytes: int = 1024 * 1024
    max_predicate_bytes: int = 64 * 1024
    cache: CacheConfig = field(default_factory=CacheConfig)


@dataclass(frozen=True)
class MutationConfig:
    keep_tag: bool = True


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class RegistryAuth:
    docker_config: Path | None = None
    static: Mapping[str, Credentials] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreConfig:
    type: str
    match: tuple[str, ...]
    path: Path | None = None
    insecure: tuple[str, ...] = ()
    ca: Path | None = None
    auth: RegistryAuth = field(default_factory=RegistryAuth)


@dataclass(frozen=True)
class PublicKey:
    """A trusted public key and where it came from (for reasons and key IDs)."""

    origin: str
    key: PublicKeyTypes = field(repr=False)


@dataclass(frozen=True)
class Identity:
    """A certificate identity requirement, mirroring cosign's --certificate-identity flags (anchored)."""

    subject: str | None = None
    subject_regexp: re.Pattern[str] | None = None
    issuer: str | None = None
    issuer_regexp: re.Pattern[str] | None = None


@dataclass(frozen=True)
class KeylessConfig:
    trusted_root: Path | None
    roots: tuple[x509.Certificate, ...]  # Fulcio roots
    intermediates: tuple[x509.Certificate, ...]
    rekor_keys: tuple[PublicKey, ...]
    identities: tuple[Identity, ...]


@dataclass(frozen=True)
class PKIConfig:
    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]
    identities: tuple[Identity, ...]


@dataclass(frozen=True)
class CosignAuthority:
    public_keys: tuple[PublicKey, ...] = ()
    tlog: str = "optional"  # optional | required
    rekor_keys: tuple[PublicKey, ...] = ()
    docker_reference: str = "ignore"  # ignore | repository
    keyless: KeylessConfig | None = None
    pki: PKIConfig | None = None


@dataclass(frozen=True)
class NotationAuthority:
    trust_stores: Mapping[str, tuple[x509.Certificate, ...]]
    trust_policy: TrustPolicyDocument


@dataclass(frozen=True)
class AttestationKey:
    """A kritis-style key: an OpenPGP certificate (pysequoia) or a PKIX public key."""

    key_id: str
    kind: str  # pgp | pkix
    pgp: Any = field(default=None, repr=False)
    pkix: PublicKey | None = field(default=None, repr=False)
    signature_algorithm: str = ""


@dataclass(frozen=True)
class AttestationAuthority:
    keys: tuple[AttestationKey, ...]
    lookaside: str = ""
    docker_reference: str = "repository"


@dataclass(frozen=True)
class Authority:
    name: str
    scopes: tuple[str, ...] = ()
    cosign: CosignAuthority | None = None
    notation: NotationAuthority | None = None
    attestation: AttestationAuthority | None = None

    def covers(self, reference: str) -> bool:
        """True when `reference` (normalised) falls in this authority's scopes; no scopes = every image."""
        return not self.scopes or any(pattern_matches(p, reference) for p in self.scopes)


@dataclass(frozen=True)
class Config:
    path: Path
    server: ServerConfig
    verification: VerificationConfig
    mutation: MutationConfig
    stores: tuple[StoreConfig, ...]
    authorities: tuple[Authority, ...]
    # Every file this config was built from, so a change to any of them triggers a reload.
    sources: tuple[Path, ...] = ()


def pattern_matches(pattern: str, reference: str) -> bool:
    """Glob-like match used by `scopes` and store `match`: `*` alone matches all, trailing `*` is a prefix."""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return reference.startswith(pattern[:-1])
    return reference == pattern or reference.startswith(pattern + ":") or reference.startswith(pattern + "@")


# Every key the loader accepts, by section ("[]" = each list item, "<host>" = any map key). The loader uses
# these sets, and docs/configuration.md is checked against them so the reference cannot drift.
SCHEMA: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    "": {"server", "verification", "mutation", "stores", "authorities", "include"},
    "server": {"listen", "metricsListen", "requestDeadline", "maxKeys", "maxBodyBytes", "threads",
               "reloadInterval", "tls"},
    "server.tls": {"cert", "key", "clientCA", "clientNames"},
    "verification": {"concurrency", "maxSignatures", "maxBlobBytes", "maxPredicateBytes", "cache"},
    "verification.cache": {"ttl", "unverifiedTtl", "errorTtl", "maxEntries"},
    "mutation": {"keepTag"},
    "stores[]": {"type", "match", "path", "insecure", "ca", "auth"},
    "stores[].auth": {"dockerConfig", "static"},
    "stores[].auth.static.<host>": {"username", "password", "identityToken"},
    "authorities[]": {"name", "scopes", "cosign", "notation", "attestation"},
    "authorities[].cosign": {"publicKeys", "tlog", "rekorKeys", "dockerReference", "keyless", "pki"},
    "authorities[].cosign.publicKeys[]": {"file", "pem"},
    "authorities[].cosign.keyless": {"trustedRoot", "fulcioRoots", "fulcioIntermediates", "rekorKeys",
                                     "identities"},
    "authorities[].cosign.keyless.identities[]": {"subject", "subjectRegExp", "issuer", "issuerRegExp"},
    "authorities[].cosign.pki": {"roots", "intermediates", "identities"},
    "authorities[].notation": {"trustStores", "trustPolicy"},
    "authorities[].notation.trustPolicy": {"file", "inline"},
    "authorities[].attestation": {"publicKeyData", "publicKeyId", "publicKeys", "lookaside", "dockerReference"},
    "authorities[].attestation.publicKeys[]": {"keyType", "keyId", "asciiArmoredPgpPublicKey", "pkixPublicKey"},
    "authorities[].attestation.publicKeys[].pkixPublicKey": {"publicKeyPem", "signatureAlgorithm"},
}.items()}


def accepted_keys() -> list[str]:
    """Dotted paths of every accepted key, e.g. `server.tls.clientCA`."""
    return sorted(f"{section}.{key}" if section else key for section, keys in SCHEMA.items() for key in keys)


# --- reading YAML with precise errors --------------------------------------------------------------------

class _Node:
    """A mapping from the YAML plus where it lives, so every error can name file and field."""

    def __init__(self, data: Any, where: str, source: Path, allowed: set[str] | frozenset[str]) -> None:
        if not isinstance(data, dict):
            raise ConfigError(source, where, f"expected a mapping, got {_kind(data)}")
        unknown = sorted(str(k) for k in data if k not in allowed)
        if unknown:
            raise ConfigError(source, _join(where, unknown[0]),
                              f"unknown key (accepted here: {', '.join(sorted(allowed))})")
        self.data = data
        self.where = where
        self.source = source

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.source, _join(self.where, key), problem)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def child(self, key: str, allowed: set[str] | frozenset[str]) -> _Node:
        return _Node(self.data.get(key) or {}, _join(self.where, key), self.source, allowed)

    def string(self, key: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = self.data.get(key, default)
        if value is None:
            raise self.error(key, "is required")
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {_kind(value)}")
        if choices and value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def integer(self, key: str, default: int, minimum: int = 1) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {_kind(value)}")
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_kind(value)}")
        return value

    def duration(self, key: str, default: float) -> float:
        if key not in self.data:
            return default
        try:
            seconds = parse_duration(self.data[key])
        except ValueError as exc:
            raise self.error(key, str(exc)) from None
        if seconds <= 0:
            raise self.error(key, "must be greater than zero")
        return seconds

    def strings(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, "expected a list of non-empty strings")
        return tuple(value)

    def path(self, key: str, must_exist: bool = True) -> Path | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a file path, got {_kind(value)}")
        resolved = (self.source.parent / value).resolve()
        if must_exist and not resolved.exists():
            raise self.error(key, f"file not found: {resolved}")
        return resolved

    def items(self, key: str) -> Iterator[tuple[str, Any]]:
        value = self.data.get(key) or []
        if not isinstance(value, list):
            raise self.error(key, f"expected a list, got {_kind(value)}")
        for index, item in enumerate(value):
            yield f"{_join(self.where, key)}[{index}]", item


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            type(None): "nothing"}.get(type(value), type(value).__name__)


# --- trust material --------------------------------------------------------------------------------------

class _Reader:
    """Reads referenced files once and records them as config sources."""

    def __init__(self) -> None:
        self.sources: list[Path] = []

    def read(self, node: _Node, key: str, path: Path) -> bytes:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise node.error(key, f"cannot read {path}: {exc.strerror}") from None
        self.sources.append(path)
        return data

    def public_key(self, node: _Node, key: str, pem: bytes, origin: str) -> PublicKey:
        try:
            return PublicKey(origin=origin, key=load_pem_public_key(pem))
        except (ValueError, TypeError) as exc:
            raise node.error(key, f"not a PEM public key ({origin}): {exc}") from None

    def public_keys(self, node: _Node, key: str) -> tuple[PublicKey, ...]:
        """A list of `{file: …}` or `{pem: …}` entries, or plain file paths."""
        keys = []
        for where, item in node.items(key):
            if isinstance(item, str):
                item = {"file": item}
            entry = _Node(item, where, node.source, SCHEMA["authorities[].cosign.publicKeys[]"])
            if entry.has("file") == entry.has("pem"):
                raise ConfigError(node.source, where, "give exactly one of file or pem")
            if entry.has("file"):
                path = entry.path("file")
                assert path is not None
                keys.append(self.public_key(entry, "file", self.read(entry, "file", path), path.name))
            else:
                keys.append(self.public_key(entry, "pem", entry.string("pem").encode(), f"{where}.pem"))
        return tuple(keys)

    def certificates(self, node: _Node, key: str) -> tuple[x509.Certificate, ...]:
        certs: list[x509.Certificate] = []
        for where, item in node.items(key):
            if not isinstance(item, str):
                raise ConfigError(node.source, where, "expected a certificate file path")
            path = (node.source.parent / item).resolve()
            certs.extend(self.certificate_file(node, where, path))
        return tuple(certs)

    def certificate_file(self, node: _Node, where: str, path: Path) -> list[x509.Certificate]:
        if not path.exists():
            raise ConfigError(node.source, where, f"file not found: {path}")
        data = path.read_bytes()
        self.sources.append(path)
        try:
            if b"-----BEGIN" in data:
                return x509.load_pem_x509_certificates(data)
            return [x509.load_der_x509_certificate(data)]
        except ValueError as exc:
            raise ConfigError(node.source, where, f"{path.name} is not a PEM or DER certificate: {exc}") from None


def _identities(node: _Node, key: str) -> tuple[Identity, ...]:
    identities = []
    for where, item in node.items(key):
        entry = _Node(item, where, node.source, SCHEMA["authorities[].cosign.keyless.identities[]"])
        if not (entry.has("subject") or entry.has("subjectRegExp")):
            raise ConfigError(node.source, where, "needs subject or subjectRegExp")
        identities.append(Identity(
            subject=entry.data.get("subject"),
            subject_regexp=_regexp(entry, "subjectRegExp"),
            issuer=entry.data.get("issuer"),
            issuer_regexp=_regexp(entry, "issuerRegExp"),
        ))
    return tuple(identities)


def _regexp(node: _Node, key: str) -> re.Pattern[str] | None:
    if not node.has(key):
        return None
    text = node.string(key)
    try:
        # Anchored like cosign: a pattern never matches a longer string by accident.
        return re.compile(rf"(?:{text})\Z")
    except re.error as exc:
        raise node.error(key, f"invalid regular expression: {exc}") from None


def _cosign(node: _Node, reader: _Reader) -> CosignAuthority:
    tlog = node.string("tlog", "optional", choices=("optional", "required"))
    rekor_keys = reader.public_keys(node, "rekorKeys")
    keyless = None
    if node.has("keyless"):
        kl = node.child("keyless", SCHEMA["authorities[].cosign.keyless"])
        if not kl.has("trustedRoot") and not kl.data.get("fulcioRoots"):
            raise kl.error("fulcioRoots", "keyless needs trustedRoot or fulcioRoots")
        trusted_root = kl.path("trustedRoot")
        root_roots, root_intermediates, root_keys = (
            _trusted_root(kl, _load_json(kl, "trustedRoot", trusted_root, reader)) if trusted_root else ((), (), ()))
        keyless = KeylessConfig(
            trusted_root=trusted_root,
            roots=reader.certificates(kl, "fulcioRoots") + root_roots,
            intermediates=reader.certificates(kl, "fulcioIntermediates") + root_intermediates,
            rekor_keys=(reader.public_keys(kl, "rekorKeys") or rekor_keys) + root_keys,
            identities=_identities(kl, "identities"),
        )
        if not keyless.identities:
            raise kl.error("identities", "keyless needs at least one identity (any signer would pass)")
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


def _trusted_root(node: _Node, data: Any) -> tuple[tuple[x509.Certificate, ...], tuple[x509.Certificate, ...],
                                                  tuple[PublicKey, ...]]:
    """Fulcio roots, intermediates and Rekor keys from a Sigstore `trusted_root.json`."""
    roots: list[x509.Certificate] = []
    intermediates: list[x509.Certificate] = []
    keys: list[PublicKey] = []
    try:
        for authority in data.get("certificateAuthorities", []):
            chain = [x509.load_der_x509_certificate(base64.b64decode(c["rawBytes"]))
                     for c in authority.get("certChain", {}).get("certificates", [])]
            if chain:  # leaf-most first: the last certificate is the root
                roots.append(chain[-1])
                intermediates.extend(chain[:-1])
        for index, log in enumerate(data.get("tlogs", [])):
            raw = base64.b64decode(log["publicKey"]["rawBytes"])
            keys.append(PublicKey(origin=f"trustedRoot.tlogs[{index}]", key=load_der_public_key(raw)))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise node.error("trustedRoot", f"not a Sigstore trusted root: {exc}") from None
    if not roots:
        raise node.error("trustedRoot", "the trusted root lists no certificate authorities")
    return tuple(roots), tuple(intermediates), tuple(keys)


def _load_json(node: _Node, key: str, path: Path, reader: _Reader) -> Any:
    try:
        return json.loads(reader.read(node, key, path))
    except json.JSONDecodeError as exc:
        raise node.error(key, f"{path.name} is not valid JSON: {exc}") from None


def _notation(node: _Node, reader: _Reader) -> NotationAuthority:
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
        policy = _load_json(policy_node, "file", path, reader)
    else:
        policy = policy_node.data["inline"]
    if not isinstance(policy, dict):
        raise node.error("trustPolicy", "not a notation trust policy document (a JSON object)")
    try:
        document = parse_trust_policy(policy, known_stores=tuple(stores))
    except TrustPolicyError as exc:
        raise node.error("trustPolicy", str(exc)) from None
    return NotationAuthority(trust_stores=stores, trust_policy=document)


def _attestation(node: _Node) -> AttestationAuthority:
    return AttestationAuthority(
        keys=_attestation_keys(node),
        lookaside=node.data.get("lookaside", ""),
        docker_reference=node.string("dockerReference", "repository", choices=("ignore", "repository")),
    )


def _attestation_keys(node: _Node) -> tuple[AttestationKey, ...]:
    """Keys in kritis' shapes: `publicKeyData` (+ `publicKeyId`) and/or v1beta1 `publicKeys[]`."""
    keys: list[AttestationKey] = []
    if node.has("publicKeyData"):
        raw = node.string("publicKeyData")
        try:
            material = base64.b64decode(raw, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise node.error("publicKeyData", "expected base64 of a PEM public key or an armoured PGP key") from None
        keys.append(_attestation_key(node, "publicKeyData", str(node.data.get("publicKeyId", "")), material, ""))
    for where, item in node.items("publicKeys"):
        entry = _Node(item, where, node.source, SCHEMA["authorities[].attestation.publicKeys[]"])
        key_id = str(entry.data.get("keyId", ""))
        if entry.string("keyType", choices=("PGP", "PKIX")) == "PGP":
            keys.append(_attestation_key(entry, "asciiArmoredPgpPublicKey", key_id,
                                         entry.string("asciiArmoredPgpPublicKey"), ""))
        else:
            pkix = entry.child("pkixPublicKey", SCHEMA["authorities[].attestation.publicKeys[].pkixPublicKey"])
            keys.append(_attestation_key(pkix, "publicKeyPem", key_id, pkix.string("publicKeyPem"),
                                         pkix.data.get("signatureAlgorithm", "")))
    if not keys:
        raise node.error("publicKeys", "an attestation authority needs publicKeyData or publicKeys")
    return tuple(keys)


def _attestation_key(node: _Node, key: str, key_id: str, material: str, algorithm: str) -> AttestationKey:
    if "-----BEGIN" not in material:
        # kritis stores armour and PEM base64-encoded in its CRDs.
        try:
            material = base64.b64decode(material, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
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




def _authority(where: str, data: Any, source: Path, reader: _Reader) -> Authority:
    node = _Node(data, where, source, SCHEMA["authorities[]"])
    name = node.string("name")
    if not re.fullmatch(r"[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?", name):
        raise node.error("name", f"{name!r}: use lowercase letters, digits, '.', '_' or '-' (max 63)")
    sections = [k for k in ("cosign", "notation", "attestation") if node.has(k)]
    if not sections:
        raise ConfigError(source, where, f"authority {name!r} needs a cosign, notation or attestation section")
    return Authority(
        name=name,
        scopes=node.strings("scopes"),
        cosign=_cosign(node.child("cosign", SCHEMA["authorities[].cosign"]), reader) if node.has("cosign") else None,
        notation=_notation(node.child("notation", SCHEMA["authorities[].notation"]), reader)
        if node.has("notation") else None,
        attestation=_attestation(node.child("attestation", SCHEMA["authorities[].attestation"]))
        if node.has("attestation") else None,
    )


def _kritis_authority(where: str, doc: dict[str, Any], source: Path) -> Authority:
    """A kritis `AttestationAuthority` document, in the v1beta1 `publicKeys` or the `publicKeyData` shape."""
    meta = _Node(doc.get("metadata") or {}, f"{where}.metadata", source, set(doc.get("metadata") or {}))
    spec = _Node(doc.get("spec") or {}, f"{where}.spec", source, set(doc.get("spec") or {}))
    keys = _attestation_keys(spec)
    return Authority(name=meta.string("name"), attestation=AttestationAuthority(keys=keys))


def _included_authorities(root: _Node, reader: _Reader) -> list[Authority]:
    authorities: list[Authority] = []
    for where, pattern in root.items("include"):
        if not isinstance(pattern, str):
            raise ConfigError(root.source, where, "expected a file glob")
        matches = sorted(glob.glob(str(root.source.parent / pattern)))
        if not matches and not any(ch in pattern for ch in "*?["):
            raise ConfigError(root.source, where, f"file not found: {root.source.parent / pattern}")
        for file_name in matches:
            path = Path(file_name).resolve()
            reader.sources.append(path)
            authorities.extend(_authorities_from_file(path, reader))
    return authorities


def _authorities_from_file(path: Path, reader: _Reader) -> list[Authority]:
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(path, "", f"cannot read YAML: {exc}") from None
    found: list[Authority] = []
    for index, doc in enumerate(documents):
        where = f"document[{index}]"
        if isinstance(doc, dict) and doc.get("kind") == "AttestationAuthority":
            found.append(_kritis_authority(where, doc, path))
        elif isinstance(doc, dict) and "authorities" in doc and len(doc) == 1:
            node = _Node(doc, "", path, {"authorities"})
            found.extend(_authority(w, item, path, reader) for w, item in node.items("authorities"))
        else:
            raise ConfigError(path, where, "expected kind: AttestationAuthority or an `authorities:` list")
    return found


# --- top level -------------------------------------------------------------------------------------------



def _server(root: _Node) -> ServerConfig:
    node = root.child("server", SCHEMA["server"])
    tls = node.child("tls", SCHEMA["server.tls"])
    tls_config = TLSConfig(cert=tls.path("cert"), key=tls.path("key"), client_ca=tls.path("clientCA"),
                           client_names=tls.strings("clientNames"))
    if (tls_config.cert is None) != (tls_config.key is None):
        raise tls.error("key" if tls_config.cert else "cert", "cert and key go together")
    if tls_config.client_names and tls_config.client_ca is None:
        raise tls.error("clientNames", "pinning client names needs clientCA (client certificates)")
    if tls_config.client_ca is not None:
        # Checked here so an empty or broken CA file stops `serve` with a clear message (fail closed).
        try:
            if not x509.load_pem_x509_certificates(tls_config.client_ca.read_bytes()):
                raise ValueError("no certificates")
        except (ValueError, OSError) as exc:
            raise tls.error("clientCA", f"{tls_config.client_ca} holds no PEM certificate: {exc}") from None
    defaults = ServerConfig()
    return ServerConfig(
        listen=_address(node, "listen", defaults.listen),
        metrics_listen=_address(node, "metricsListen", defaults.metrics_listen),
        request_deadline=node.duration("requestDeadline", defaults.request_deadline),
        max_keys=node.integer("maxKeys", defaults.max_keys),
        max_body_bytes=node.integer("maxBodyBytes", defaults.max_body_bytes, minimum=1024),
        threads=node.integer("threads", defaults.threads),
        reload_interval=node.duration("reloadInterval", defaults.reload_interval),
        tls=tls_config,
    )


def _address(node: _Node, key: str, default: str) -> str:
    value = node.string(key, default)
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise node.error(key, f"expected host:port, got {value!r}")
    return value


def _verification(root: _Node) -> VerificationConfig:
    node = root.child("verification", SCHEMA["verification"])
    cache = node.child("cache", SCHEMA["verification.cache"])
    d = CacheConfig()
    defaults = VerificationConfig()
    return VerificationConfig(
        concurrency=node.integer("concurrency", defaults.concurrency),
        max_signatures=node.integer("maxSignatures", defaults.max_signatures),
        max_blob_bytes=node.integer("maxBlobBytes", defaults.max_blob_bytes, minimum=1024),
        max_predicate_bytes=node.integer("maxPredicateBytes", defaults.max_predicate_bytes, minimum=0),
        cache=CacheConfig(
            ttl=cache.duration("ttl", d.ttl),
            unverified_ttl=cache.duration("unverifiedTtl", d.unverified_ttl),
            error_ttl=cache.duration("errorTtl", d.error_ttl),
            max_entries=cache.integer("maxEntries", d.max_entries),
        ),
    )


def _stores(root: _Node, reader: _Reader) -> tuple[StoreConfig, ...]:
    stores = []
    for where, item in root.items("stores"):
        node = _Node(item, where, root.source, SCHEMA["stores[]"])
        store_type = node.string("type", choices=("registry", "oci-layout"))
        match = node.strings("match", ("*",))
        if store_type == "oci-layout":
            path = node.path("path")
            if path is None:
                raise node.error("path", "an oci-layout store needs a path")
            if not path.is_dir():
                raise node.error("path", f"not a directory: {path}")
            stores.append(StoreConfig(type=store_type, match=match, path=path))
            continue
        auth = node.child("auth", SCHEMA["stores[].auth"])
        docker_config = auth.path("dockerConfig")
        if docker_config is not None:
            _load_json(auth, "dockerConfig", docker_config, reader)
        static = {}
        for host in (auth.data.get("static") or {}):
            cred = auth.child("static", set(auth.data["static"])).child(
                str(host), SCHEMA["stores[].auth.static.<host>"])
            static[str(host)] = Credentials(cred.data.get("username", ""), cred.data.get("password", ""),
                                            cred.data.get("identityToken", ""))
        ca = node.path("ca")
        if ca is not None:
            reader.certificate_file(node, f"{where}.ca", ca)
        stores.append(StoreConfig(type=store_type, match=match, insecure=node.strings("insecure"), ca=ca,
                                  auth=RegistryAuth(docker_config=docker_config, static=static)))
    return tuple(stores)


def load_config(path: str | Path) -> Config:
    """Load, validate and resolve a config file. Raises ConfigError naming file and field."""
    source = Path(path).resolve()
    try:
        text = source.read_text()
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read config: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, "", f"not valid YAML: {exc}") from None
    return build_config(data if data is not None else {}, source)


def build_config(data: Any, source: Path) -> Config:
    """Validate an already-parsed config mapping as if it was read from `source`."""
    root = _Node(data, "", source, SCHEMA[""])
    reader = _Reader()
    authorities = [_authority(w, item, source, reader) for w, item in root.items("authorities")]
    authorities.extend(_included_authorities(root, reader))
    names = [a.name for a in authorities]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(source, "authorities", f"duplicate authority name {duplicates[0]!r}")
    server = _server(root)
    mutation = root.child("mutation", SCHEMA["mutation"])
    stores = _stores(root, reader)
    return Config(
        path=source,
        server=server,
        verification=_verification(root),
        mutation=MutationConfig(keep_tag=mutation.boolean("keepTag", True)),
        stores=stores or (StoreConfig(type="registry", match=("*",)),),
        authorities=tuple(authorities),
        sources=tuple(dict.fromkeys([source, *reader.sources])),
    )
