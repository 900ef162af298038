"""The configuration model: frozen dataclasses that the loader fills and the engine reads."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from provider.regexps import GoRegexp
from provider.verifiers.notation.trustpolicy import TrustPolicyDocument


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
    # 500 ms inside the 2 s Provider timeout, itself one second inside Gatekeeper's 3 s validating webhook.
    request_deadline: float = 1.5
    max_keys: int = 1024
    max_body_bytes: int = 1024 * 1024
    threads: int = 16
    # Worker processes; 0 = one per CPU of the container's cgroup quota (provider.server.cpus).
    workers: int = 0
    reload_interval: float = 2.0
    tls: TLSConfig = field(default_factory=TLSConfig)
    # The connection front door: slow or idle clients are cut off by these, never by a worker thread.
    handshake_timeout: float = 5.0
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    idle_timeout: float = 30.0
    max_connections: int = 4096
    max_header_bytes: int = 16 * 1024


@dataclass(frozen=True)
class RedisConfig:
    """The shared cache: results shared between workers and replicas, authenticated with an HMAC key."""

    url: str
    hmac_key_file: Path
    password_file: Path | None = None
    ca: Path | None = None
    prefix: str = "sigwarden"
    timeout: float = 0.2


@dataclass(frozen=True)
class CacheConfig:
    ttl: float = 300.0
    unverified_ttl: float = 30.0
    error_ttl: float = 10.0
    tag_ttl: float = 5.0
    max_entries: int = 100_000
    max_bytes: int = 64 * 1024 * 1024
    redis: RedisConfig | None = None


@dataclass(frozen=True)
class VerificationConfig:
    concurrency: int = 32
    max_signatures: int = 16
    max_blob_bytes: int = 1024 * 1024
    max_predicate_bytes: int = 64 * 1024
    # Vulnerability ids at or over this severity are listed in content facts (all are counted).
    vulnerability_floor: str = "LOW"
    cache: CacheConfig = field(default_factory=CacheConfig)


@dataclass(frozen=True)
class MutationConfig:
    keep_tag: bool = True
    # Gatekeeper's mutating webhook times out after 1 s by default (the mutation Provider's timeout then is
    # 1 s too): answer 500 ms before it, leaving Gatekeeper the rest.
    deadline: float = 0.5
    # The constraints' exemptImages: answered unchanged, never resolved (the registry may be unreachable).
    exempt_images: tuple[str, ...] = ()


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class CloudAuth:
    """A registry credential obtained from the pod's cloud workload identity (`auth.cloud`)."""

    provider: str  # aws | azure | google | alibaba
    # Alibaba ACR Enterprise Edition: the instance id by instance name, and the id for names not listed.
    instance_id: str = ""
    instances: Mapping[str, str] = field(default_factory=dict)
    # Fall back to the node's identity (instance metadata) when the pod has none of its own.
    node_identity: bool = False


@dataclass(frozen=True)
class SecretRef:
    """A docker config Secret (`name`), or a ServiceAccount whose imagePullSecrets are read (`service_account`)."""

    namespace: str
    name: str = ""
    service_account: str = ""


@dataclass(frozen=True)
class RegistryAuth:
    docker_config: Path | None = None
    static: Mapping[str, Credentials] = field(default_factory=dict)
    # Hosts (or host:port) of token services on another host than their registry that may receive credentials.
    token_realms: tuple[str, ...] = ()
    cloud: CloudAuth | None = None
    kube_docker_configs: tuple[SecretRef, ...] = ()


@dataclass(frozen=True)
class StoreConfig:
    type: str
    match: tuple[str, ...]
    path: Path | None = None
    # oci-layout: `path` is one repository's layout, read for every reference the store matches.
    single_layout: bool = False
    insecure: tuple[str, ...] = ()
    ca: Path | None = None
    auth: RegistryAuth = field(default_factory=RegistryAuth)
    allow_networks: tuple[str, ...] = ()
    deny_networks: tuple[str, ...] = ()
    wildcard_deny_networks: tuple[str, ...] = ()
    concurrency_per_address: int = 32
    concurrency_wildcard: int = 64


@dataclass(frozen=True)
class PublicKey:
    """A trusted public key and where it came from (for reasons and key IDs)."""

    origin: str
    key: PublicKeyTypes = field(repr=False)
    # A trusted root's `validFor`: the key counts only for entries made inside it (None: open-ended).
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def valid_at(self, moment: datetime) -> bool:
        return within(moment, self.valid_from, self.valid_until)


def within(moment: datetime, start: datetime | None, end: datetime | None) -> bool:
    """True when `moment` lies in [start, end]; a missing bound is open."""
    return (start is None or moment >= start) and (end is None or moment <= end)


@dataclass(frozen=True)
class TrustedCA:
    """One certificate authority of a Sigstore trusted root: its chain and its `validFor` window."""

    root: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    valid_from: datetime | None = None
    valid_until: datetime | None = None


@dataclass(frozen=True)
class Identity:
    """A certificate identity requirement with cosign's meaning (`CheckCertificatePolicy`): the subject (exact or
    an unanchored RE2 search) against every SAN of the certificate, the issuer against the Fulcio issuer."""

    subject: str | None = None
    subject_regexp: GoRegexp | None = None
    issuer: str | None = None
    issuer_regexp: GoRegexp | None = None


@dataclass(frozen=True)
class KeylessConfig:
    trusted_root: Path | None
    roots: tuple[x509.Certificate, ...]  # Fulcio roots
    intermediates: tuple[x509.Certificate, ...]
    rekor_keys: tuple[PublicKey, ...]
    identities: tuple[Identity, ...]
    # The trusted root's CAs, each with its own intermediates and window (sigstore-go's FulcioCertificateAuthority).
    authorities: tuple[TrustedCA, ...] = ()
    ct_keys: tuple[PublicKey, ...] = ()  # CT logs whose SCTs Fulcio certificates carry
    sct: str = "required"  # required | optional
    # sigstore-python's verifier over `trusted_root`, built when the config is loaded so that a request never
    # reads trust material from disk: a changed file takes effect with the next config generation.
    bundle_verifier: Any = field(default=None, repr=False, compare=False)


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


# containers/image policy.json `signedIdentity` types (signature/policy_types.go), and `ignore`.
SIGNED_IDENTITY_TYPES = ("matchRepoDigestOrExact", "matchExact", "matchRepository", "exactReference",
                         "exactRepository", "remapIdentity", "ignore")


@dataclass(frozen=True)
class SignedIdentity:
    """Which `docker-reference` a simple-signing payload may name for an image (containers/image's rule)."""

    type: str = "matchRepoDigestOrExact"
    docker_reference: str = ""  # exactReference
    docker_repository: str = ""  # exactRepository
    prefix: str = ""  # remapIdentity
    signed_prefix: str = ""


@dataclass(frozen=True)
class AttestationAuthority:
    keys: tuple[AttestationKey, ...]
    lookaside: str = ""
    signed_identity: SignedIdentity = SignedIdentity()


# Purposes an authority can be limited to (`authorities[].purposes`); all of them by default.
PURPOSES = ("image", "vulnerability-report", "sbom", "vex")


@dataclass(frozen=True)
class Authority:
    name: str
    scopes: tuple[str, ...] = ()
    # What this authority may vouch for: signing images, vulnerability reports, SBOMs, VEX statements.
    purposes: tuple[str, ...] = PURPOSES
    cosign: CosignAuthority | None = None
    notation: NotationAuthority | None = None
    attestation: AttestationAuthority | None = None
    # `yieldTo`: authorities that take precedence where their scopes apply (a fallback, like Ratify's `*`
    # cosign trust policy); `yield_scopes` are their scopes, resolved when the config is loaded.
    yield_to: tuple[str, ...] = ()
    yield_scopes: tuple[str, ...] = ()

    def serves(self, purpose: str) -> bool:
        return purpose in self.purposes

    def covers(self, reference: str) -> bool:
        """True when `reference` (normalised) falls in this authority's scopes (no scopes = every image) and
        in none of the scopes of the authorities it yields to."""
        if self.scopes and not any(pattern_matches(p, reference) for p in self.scopes):
            return False
        return not any(pattern_matches(p, reference) for p in self.yield_scopes)


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
    # Which protective keys the file wrote out (dotted paths, see provider.config.guard): a reload may only
    # drop authorities, stores or client-certificate checks that the new file removes explicitly.
    declared: frozenset[str] = frozenset()
    # SHA-256 of every section but `server` (listen addresses and timeouts do not change what is trusted):
    # with the trust files' contents it keys shared-cache entries to one trust-configuration generation.
    trust_digest: str = ""


def pattern_matches(pattern: str, reference: str) -> bool:
    """Glob-like match used by `scopes` and store `match`: `*` alone matches all, trailing `*` is a prefix."""
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return reference.startswith(pattern[:-1])
    return reference == pattern or reference.startswith(pattern + ":") or reference.startswith(pattern + "@")
