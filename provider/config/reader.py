"""Reading YAML with errors that name the file and the field, and reading the files a config references."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from provider.config.model import ConfigError, PublicKey, parse_duration
from provider.reference import normalise_pattern, pattern_defect
from provider.verifiers.certparse import check_serial_numbers

# Every key the loader accepts, by section ("[]" = each list item, "<host>" = any map key). The loader uses
# these sets, and docs/configuration.md is checked against them so the reference cannot drift.
SCHEMA: dict[str, frozenset[str]] = {k: frozenset(v) for k, v in {
    "": {"server", "verification", "mutation", "stores", "authorities", "include"},
    "include[]": {"path", "lookaside"},
    "server": {"listen", "metricsListen", "requestDeadline", "maxKeys", "maxBodyBytes", "threads",
               "workers", "reloadInterval", "tls",
               "handshakeTimeout", "headerTimeout", "bodyTimeout", "idleTimeout", "maxConnections", "maxHeaderBytes"},
    "server.tls": {"cert", "key", "clientCA", "clientNames"},
    "verification": {"concurrency", "maxSignatures", "maxBlobBytes", "maxPredicateBytes", "vulnerabilityFloor",
                     "cache"},
    "verification.cache": {"ttl", "unverifiedTtl", "errorTtl", "tagTtl", "maxEntries", "maxBytes", "redis"},
    "verification.cache.redis": {"url", "passwordFile", "hmacKeyFile", "prefix", "timeout", "ca"},
    "mutation": {"keepTag", "deadline", "exemptImages"},
    "stores[]": {"type", "match", "path", "singleLayout", "insecure", "ca", "auth", "allowNetworks", "denyNetworks",
                 "wildcardDenyNetworks", "concurrencyPerAddress", "concurrencyWildcard"},
    "stores[].auth": {"dockerConfig", "static", "tokenRealms", "cloud", "kubernetesSecrets"},
    "stores[].auth.kubernetesSecrets[]": {"namespace", "name", "serviceAccount"},
    "stores[].auth.cloud": {"provider", "instanceId", "instances", "nodeIdentity"},
    "stores[].auth.static.<host>": {"username", "password", "identityToken"},
    "authorities[]": {"name", "scopes", "yieldTo", "purposes", "cosign", "notation", "attestation"},
    "authorities[].cosign": {"publicKeys", "tlog", "rekorKeys", "dockerReference", "keyless", "pki"},
    "authorities[].cosign.publicKeys[]": {"file", "pem", "kms"},
    "authorities[].cosign.keyless": {"trustedRoot", "fulcioRoots", "fulcioIntermediates", "rekorKeys",
                                     "ctLogKeys", "sct", "identities"},
    "authorities[].cosign.keyless.identities[]": {"subject", "subjectRegExp", "issuer", "issuerRegExp"},
    "authorities[].cosign.pki": {"roots", "intermediates", "identities"},
    "authorities[].notation": {"trustStores", "trustPolicy"},
    "authorities[].notation.trustStores.<store>[]": {"keyVault", "alibabaKms"},
    "authorities[].notation.trustStores.<store>[].alibabaKms": {"certificateId", "region"},
    "authorities[].notation.trustStores.<store>[].keyVault": {"vaultURI", "certificateName", "version"},
    "authorities[].notation.trustPolicy": {"file", "inline"},
    "authorities[].attestation": {"publicKeyData", "publicKeyId", "publicKeys", "lookaside", "dockerReference",
                                   "signedIdentity"},
    "authorities[].attestation.signedIdentity": {"type", "dockerReference", "dockerRepository", "prefix",
                                                 "signedPrefix"},
    "authorities[].attestation.publicKeys[]": {"keyType", "keyId", "asciiArmoredPgpPublicKey", "pkixPublicKey",
                                               "file"},
    "authorities[].attestation.publicKeys[].pkixPublicKey": {"publicKeyPem", "signatureAlgorithm"},
}.items()}


def accepted_keys() -> list[str]:
    """Dotted paths of every accepted key, e.g. `server.tls.clientCA`."""
    return sorted(f"{section}.{key}" if section else key for section, keys in SCHEMA.items() for key in keys)


class Node:
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

    def child(self, key: str, allowed: set[str] | frozenset[str]) -> Node:
        return Node(self.data.get(key) or {}, _join(self.where, key), self.source, allowed)

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

    def patterns(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        """Image patterns (`scopes`, store `match`), normalised; one that can never match is an error."""
        patterns = self.strings(key, default)
        for index, pattern in enumerate(patterns):
            defect = pattern_defect(pattern)
            if defect:
                raise self.error(f"{key}[{index}]", f"{pattern!r} can never match an image: {defect}")
        return tuple(normalise_pattern(p) for p in patterns)

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


class FileReader:
    """Reads referenced files once and records them as config sources."""

    def __init__(self) -> None:
        self.sources: list[Path] = []
        # Remote trust material, all from one snapshot of the process's cache (see provider.config.remote).
        self._remote: dict[Any, tuple[bytes, ...]] | None = None

    def remote(self, node: Node, key: str, ref: Any) -> tuple[bytes, ...]:
        """The material of a KMS key or Key Vault certificate; a fetch that fails is a config error."""
        from provider.config.remote import LOAD_BUDGET, REMOTE_TRUST
        from provider.stores.cloud.keys import TrustFetchError

        if self._remote is None:
            self._remote = REMOTE_TRUST.snapshot()
        if ref not in self._remote:
            try:
                self._remote[ref] = REMOTE_TRUST.fetch(ref, time.monotonic() + LOAD_BUDGET)
            except TrustFetchError as exc:
                raise node.error(key, str(exc)) from None
        return self._remote[ref]

    def read(self, node: Node, key: str, path: Path) -> bytes:
        return self._load(path, lambda problem: node.error(key, problem))

    def _load(self, path: Path, error: Callable[[str], ConfigError]) -> bytes:
        """Read a referenced file and record it as a source (a change to it triggers a reload)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise error(f"file not found: {path}") from None
        except OSError as exc:
            raise error(f"cannot read {path}: {exc.strerror}") from None
        self.sources.append(path)
        return data

    def public_key(self, node: Node, key: str, pem: bytes, origin: str) -> PublicKey:
        try:
            return PublicKey(origin=origin, key=load_pem_public_key(pem))
        except (ValueError, TypeError) as exc:
            raise node.error(key, f"not a PEM public key ({origin}): {exc}") from None

    def public_keys(self, node: Node, key: str) -> tuple[PublicKey, ...]:
        """A list of `{file: …}` or `{pem: …}` entries, or plain file paths."""
        keys = []
        for where, item in node.items(key):
            if isinstance(item, str):
                item = {"file": item}
            entry = Node(item, where, node.source, SCHEMA["authorities[].cosign.publicKeys[]"])
            if sum(entry.has(k) for k in ("file", "pem", "kms")) != 1:
                raise ConfigError(node.source, where, "give exactly one of file, pem or kms")
            if entry.has("kms"):
                uri = entry.string("kms")
                from provider.config.remote import RemoteRef
                from provider.stores.cloud.keys import kms_problem

                problem = kms_problem(uri)
                if problem:
                    raise entry.error("kms", problem)
                (pem,) = self.remote(entry, "kms", RemoteRef("kms", uri))
                keys.append(self.public_key(entry, "kms", pem, uri))
            elif entry.has("file"):
                path = entry.path("file")
                assert path is not None
                keys.append(self.public_key(entry, "file", self.read(entry, "file", path), path.name))
            else:
                keys.append(self.public_key(entry, "pem", entry.string("pem").encode(), f"{where}.pem"))
        return tuple(keys)

    def certificates(self, node: Node, key: str) -> tuple[x509.Certificate, ...]:
        certs: list[x509.Certificate] = []
        for where, item in node.items(key):
            if isinstance(item, dict):
                entry = Node(item, where, node.source, SCHEMA["authorities[].notation.trustStores.<store>[]"])
                if sum(entry.has(k) for k in ("keyVault", "alibabaKms")) != 1:
                    raise ConfigError(node.source, where, "give exactly one of keyVault or alibabaKms")
                certs.extend(self._key_vault_certificates(entry) if entry.has("keyVault")
                             else self._alibaba_kms_certificates(entry))
                continue
            if not isinstance(item, str):
                raise ConfigError(node.source, where,
                                  "expected a certificate file path, {keyVault: …} or {alibabaKms: …}")
            path = (node.source.parent / item).resolve()
            certs.extend(self.certificate_file(node, where, path))
        return tuple(certs)

    def _key_vault_certificates(self, entry: Node) -> list[x509.Certificate]:
        """`{keyVault: {vaultURI, certificateName, version}}`: Ratify's azurekeyvault key management provider."""
        from provider.config.remote import RemoteRef
        from provider.stores.cloud import missing_extra

        vault = entry.child("keyVault", SCHEMA["authorities[].notation.trustStores.<store>[].keyVault"])
        missing = missing_extra("azure")
        if missing:
            raise entry.error("keyVault", missing)
        ref = RemoteRef("keyVault", vault.string("vaultURI"), vault.string("certificateName"),
                        vault.string("version", "") if vault.has("version") else "")
        certs = []
        for chain in self.remote(entry, "keyVault", ref):
            certs.extend(x509.load_pem_x509_certificates(chain))
        return _parsed_as_go_would(certs, lambda problem: entry.error("keyVault", problem))

    def _alibaba_kms_certificates(self, entry: Node) -> list[x509.Certificate]:
        """`{alibabaKms: {certificateId, region}}`: a certificate kept in Alibaba Cloud KMS Certificates Manager."""
        from provider.config.remote import RemoteRef
        from provider.stores.cloud import missing_extra

        kms = entry.child("alibabaKms", SCHEMA["authorities[].notation.trustStores.<store>[].alibabaKms"])
        missing = missing_extra("alibaba")
        if missing:
            raise entry.error("alibabaKms", missing)
        ref = RemoteRef("alibabaKms", kms.string("region"), kms.string("certificateId"))
        certs = []
        for chain in self.remote(entry, "alibabaKms", ref):
            certs.extend(x509.load_pem_x509_certificates(chain))
        return _parsed_as_go_would(certs, lambda problem: entry.error("alibabaKms", problem))

    def certificate_file(self, node: Node, where: str, path: Path) -> list[x509.Certificate]:
        data = self._load(path, lambda problem: ConfigError(node.source, where, problem))
        try:
            certificates = (x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data
                            else [x509.load_der_x509_certificate(data)])
        except ValueError as exc:
            raise ConfigError(node.source, where, f"{path.name} is not a PEM or DER certificate: {exc}") from None
        return _parsed_as_go_would(certificates, lambda problem: ConfigError(node.source, where,
                                                                             f"{path.name}: {problem}"))

    def json(self, node: Node, key: str, path: Path) -> Any:
        """Read and parse a referenced JSON file (trust roots, trust policies, docker config)."""
        try:
            return json.loads(self.read(node, key, path))
        except UnicodeDecodeError:  # json.loads guesses UTF-8/16/32 from the first bytes
            raise node.error(key, f"{path.name} is not valid JSON: the file is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise node.error(key, f"{path.name} is not valid JSON: {exc}") from None
        except RecursionError:
            raise node.error(key, f"{path.name} is not valid JSON: it nests too deeply") from None

    def parsed(self, source: Path, parse: Callable[[], Any]) -> Any:
        """Run `parse`; text that is not UTF-8, or nests deeper than the parser can recurse, is a ConfigError.

        It names the file this reader read last (an included file), else `source`.
        """
        try:
            return parse()
        except UnicodeDecodeError:
            problem = "cannot read YAML: the file is not UTF-8 text"
        except RecursionError:
            problem = "cannot read YAML: it nests too deeply"
        raise ConfigError(self.sources[-1] if self.sources else source, "", problem)


def _parsed_as_go_would(certificates: list[x509.Certificate],
                        error: Callable[[str], ConfigError]) -> list[x509.Certificate]:
    """Trust material notation and cosign could not load (Go's crypto/x509 refuses it) is a config error."""
    try:
        check_serial_numbers(*certificates)
    except ValueError as exc:
        raise error(f"a certificate's {exc}; Go's crypto/x509, which cosign and notation use, refuses it") from None
    return certificates
