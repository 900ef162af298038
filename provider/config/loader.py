"""Load a config file: the server, verification, mutation and store sections, and the authorities."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from provider import yamlerrors
from provider.config.authorities import included_authorities, parse_authority, resolve_precedence
from provider.config.guard import declared_keys
from provider.config.model import (
    CacheConfig,
    CloudAuth,
    Config,
    ConfigError,
    Credentials,
    MutationConfig,
    RedisConfig,
    RegistryAuth,
    SecretRef,
    ServerConfig,
    StoreConfig,
    TLSConfig,
    VerificationConfig,
)
from provider.config.placeholders import reject_placeholders
from provider.config.reader import SCHEMA, FileReader, Node
from provider.reference import InvalidReference, normalise_host


def _server(root: Node) -> ServerConfig:
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
        workers=_workers(node),
        reload_interval=node.duration("reloadInterval", defaults.reload_interval),
        tls=tls_config,
        handshake_timeout=node.duration("handshakeTimeout", defaults.handshake_timeout),
        header_timeout=node.duration("headerTimeout", defaults.header_timeout),
        body_timeout=node.duration("bodyTimeout", defaults.body_timeout),
        idle_timeout=node.duration("idleTimeout", defaults.idle_timeout),
        max_connections=node.integer("maxConnections", defaults.max_connections, minimum=16),
        max_header_bytes=node.integer("maxHeaderBytes", defaults.max_header_bytes, minimum=1024),
    )


MAX_WORKERS = 64


def _workers(node: Node) -> int:
    """`auto` (the default) is 0: one worker per CPU of the cgroup quota, decided when the server starts."""
    if node.data.get("workers", "auto") == "auto":
        return 0
    workers = node.integer("workers", 1)
    if workers > MAX_WORKERS:
        raise node.error("workers", f"at most {MAX_WORKERS} worker processes, got {workers}")
    return workers


def _address(node: Node, key: str, default: str) -> str:
    value = node.string(key, default)
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise node.error(key, f"expected host:port, got {value!r}")
    return value


def _verification(root: Node) -> VerificationConfig:
    node = root.child("verification", SCHEMA["verification"])
    cache = node.child("cache", SCHEMA["verification.cache"])
    d = CacheConfig()
    defaults = VerificationConfig()
    return VerificationConfig(
        concurrency=node.integer("concurrency", defaults.concurrency),
        max_signatures=node.integer("maxSignatures", defaults.max_signatures),
        max_blob_bytes=node.integer("maxBlobBytes", defaults.max_blob_bytes, minimum=1024),
        max_predicate_bytes=node.integer("maxPredicateBytes", defaults.max_predicate_bytes, minimum=0),
        vulnerability_floor=node.string("vulnerabilityFloor", defaults.vulnerability_floor,
                                        choices=("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")),
        cache=CacheConfig(
            ttl=cache.duration("ttl", d.ttl),
            unverified_ttl=cache.duration("unverifiedTtl", d.unverified_ttl),
            error_ttl=cache.duration("errorTtl", d.error_ttl),
            tag_ttl=cache.duration("tagTtl", d.tag_ttl),
            max_entries=cache.integer("maxEntries", d.max_entries),
            max_bytes=_size(cache, "maxBytes", d.max_bytes, minimum=1024 * 1024),
            redis=_redis(cache),
        ),
    )


def _redis(cache: Node) -> RedisConfig | None:
    from provider.sharedcache import read_hmac_key  # imports redis only when a shared cache is configured

    if "redis" not in cache.data:
        return None
    node = cache.child("redis", SCHEMA["verification.cache.redis"])
    url = node.string("url")
    if not url.startswith(("redis://", "rediss://")):
        raise node.error("url", f"expected a redis:// or rediss:// URL, got {url[:80]!r}")
    hmac_key_file = node.path("hmacKeyFile")
    if hmac_key_file is None:
        raise node.error("hmacKeyFile", "a shared cache needs an HMAC key file (entries without it could be "
                                        "forged by anyone who can write to Redis)")
    try:
        read_hmac_key(hmac_key_file)
    except ValueError as exc:
        raise node.error("hmacKeyFile", str(exc)) from None
    ca = node.path("ca")
    if ca is not None and not url.startswith("rediss://"):
        raise node.error("ca", "a CA is only used with a rediss:// (TLS) URL")
    prefix = node.string("prefix", "sigwarden")
    if not prefix or not prefix.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise node.error("prefix", f"expected letters, digits, '-', '_' or '.', got {prefix[:80]!r}")
    return RedisConfig(url=url, hmac_key_file=hmac_key_file, password_file=node.path("passwordFile"), ca=ca,
                       prefix=prefix, timeout=node.duration("timeout", 0.2))


def _trust_digest(data: Any) -> str:
    """A digest of every section but `server`, the same for replicas that differ only in where they listen."""
    trusted = {key: value for key, value in data.items() if key != "server"}
    return hashlib.sha256(json.dumps(trusted, sort_keys=True, default=str).encode()).hexdigest()


def _stores(root: Node, reader: FileReader) -> tuple[StoreConfig, ...]:
    stores = []
    for where, item in root.items("stores"):
        node = Node(item, where, root.source, SCHEMA["stores[]"])
        store_type = node.string("type", choices=("registry", "oci-layout"))
        match = node.patterns("match", ("*",))
        if store_type == "oci-layout":
            path = node.path("path")
            if path is None:
                raise node.error("path", "an oci-layout store needs a path")
            if not path.is_dir():
                raise node.error("path", f"not a directory: {path}")
            single = node.boolean("singleLayout", False)
            if single and not (path / "index.json").is_file():
                raise node.error("path", f"singleLayout: {path} is not an OCI image layout (no index.json)")
            stores.append(StoreConfig(type=store_type, match=match, path=path, single_layout=single))
            continue
        auth = node.child("auth", SCHEMA["stores[].auth"])
        docker_config = auth.path("dockerConfig")
        if docker_config is not None:
            reader.json(auth, "dockerConfig", docker_config)
        static = {}
        for host in (auth.data.get("static") or {}):
            cred = auth.child("static", set(auth.data["static"])).child(
                str(host), SCHEMA["stores[].auth.static.<host>"])
            static[str(host)] = Credentials(cred.data.get("username", ""), cred.data.get("password", ""),
                                            cred.data.get("identityToken", ""))
        ca = node.path("ca")
        if ca is not None:
            reader.certificate_file(node, f"{where}.ca", ca)
        try:
            insecure = tuple(normalise_host(host) for host in node.strings("insecure"))
        except InvalidReference as exc:
            raise node.error("insecure", str(exc)) from None
        defaults = StoreConfig(type=store_type, match=match)
        stores.append(StoreConfig(type=store_type, match=match, insecure=insecure, ca=ca,
                                  auth=RegistryAuth(docker_config=docker_config, static=static,
                                                    token_realms=_realm_hosts(auth),
                                                    cloud=_cloud_auth(node, auth, match, insecure),
                                                    kube_docker_configs=_secret_refs(auth)),
                                  allow_networks=_networks(node, "allowNetworks"),
                                  deny_networks=_networks(node, "denyNetworks"),
                                  wildcard_deny_networks=_networks(node, "wildcardDenyNetworks"),
                                  concurrency_per_address=node.integer("concurrencyPerAddress",
                                                                       defaults.concurrency_per_address),
                                  concurrency_wildcard=node.integer("concurrencyWildcard",
                                                                    defaults.concurrency_wildcard)))
    return tuple(stores)


def _cloud_auth(store: Node, auth: Node, match: tuple[str, ...], insecure: tuple[str, ...]) -> CloudAuth | None:
    """`auth.cloud`: the provider's SDK must be installed and every `match` pattern must name one of its
    registry hosts exactly, since its tokens go to those hosts and nowhere else."""
    if not auth.has("cloud"):
        return None
    from provider.stores.cloud import PROVIDERS, missing_extra  # provider.stores imports this package
    from provider.stores.cloud.hosts import host_problem, match_hosts

    node = auth.child("cloud", SCHEMA["stores[].auth.cloud"])
    provider = node.string("provider", choices=PROVIDERS)
    missing = missing_extra(provider)
    if missing:
        raise node.error("provider", missing)
    for index, (pattern, host) in enumerate(match_hosts(match)):
        if not host:
            raise store.error(f"match[{index}]", f"{pattern!r} does not name a registry host exactly; a store with "
                                                 "auth.cloud sends its token only to hosts it names, so list "
                                                 "each one (host/*)")
        problem = host_problem(provider, host)
        if problem:
            raise store.error(f"match[{index}]", f"{problem}; auth.cloud.provider is {provider}")
        if host in insecure:
            raise store.error("insecure", f"{host} is listed as insecure: cloud tokens are only sent over TLS")
    instances = node.data.get("instances") or {}
    if not isinstance(instances, dict) or not all(isinstance(k, str) and isinstance(v, str) and v
                                                  for k, v in instances.items()):
        raise node.error("instances", "expected a mapping of ACR instance name to instance id (cri-…)")
    if (instances or node.has("instanceId")) and provider != "alibaba":
        raise node.error("instanceId" if node.has("instanceId") else "instances",
                         "only the alibaba provider has ACR instances")
    return CloudAuth(provider=provider, instance_id=node.string("instanceId", "") if node.has("instanceId") else "",
                     instances=dict(instances), node_identity=node.boolean("nodeIdentity", False))


def _secret_refs(auth: Node) -> tuple[SecretRef, ...]:
    """`auth.kubernetesSecrets`: each a Secret (`namespace`, `name`) or a ServiceAccount whose
    imagePullSecrets are read (`namespace`, `serviceAccount`)."""
    refs = []
    for where, item in auth.items("kubernetesSecrets"):
        node = Node(item, where, auth.source, SCHEMA["stores[].auth.kubernetesSecrets[]"])
        namespace = node.string("namespace")
        if node.has("name") == node.has("serviceAccount"):
            raise node.error("name", "give either name (a docker config Secret) or serviceAccount (whose "
                                     "imagePullSecrets are read)")
        for key in ("namespace", "name", "serviceAccount"):
            value = node.data.get(key)
            if value is not None and not (isinstance(value, str) and re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?",
                                                                                  value)):
                raise node.error(key, f"{value!r} is not a Kubernetes object name")
        refs.append(SecretRef(namespace, node.string("name", "") if node.has("name") else "",
                              node.string("serviceAccount", "") if node.has("serviceAccount") else ""))
    return tuple(refs)


def _realm_hosts(auth: Node) -> tuple[str, ...]:
    """`auth.tokenRealms`: bare hosts (`auth.example` or `auth.example:8443`), not URLs."""
    hosts = auth.strings("tokenRealms")
    for host in hosts:
        if "/" in host or "@" in host or not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", host):
            raise auth.error("tokenRealms", f"{host!r} is not a host name such as auth.example or auth.example:8443")
    return tuple(h.lower() for h in hosts)


def _networks(node: Node, key: str) -> tuple[str, ...]:
    from provider.stores.egress import parse_networks  # provider.stores imports this package

    values = node.strings(key)
    try:
        parse_networks(values)
    except ValueError as exc:
        raise node.error(key, str(exc)) from None
    return values


_SIZE = re.compile(r"^\s*(\d+)\s*(KiB|MiB|GiB)?\s*$")
_SIZE_UNITS = {None: 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}


def _size(node: Node, key: str, default: int, minimum: int) -> int:
    """A byte size: an integer or a string such as `128MiB`."""
    value = node.data.get(key, default)
    if isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise node.error(key, f"expected a size such as 134217728 or 128MiB, got {value!r}")
        value = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
    if isinstance(value, bool) or not isinstance(value, int):
        raise node.error(key, f"expected a size such as 134217728 or 128MiB, got {type(value).__name__}")
    if value < minimum:
        raise node.error(key, f"must be at least {minimum} bytes, got {value}")
    return value


def load_config(path: str | Path) -> Config:
    """Load, validate and resolve a config file. Raises ConfigError naming file and field."""
    source = Path(path).resolve()
    try:
        text = FileReader().parsed(source, source.read_text)
    except OSError as exc:
        raise ConfigError(source, "", f"cannot read config: {exc.strerror}") from None
    try:
        data = FileReader().parsed(source, lambda: yaml.safe_load(text))
    except yaml.YAMLError as exc:
        raise ConfigError(source, "", yamlerrors.problem(exc)) from None
    if data is None:
        # An empty or comment-only file is what a truncated write or an unfilled ConfigMap looks like.
        raise ConfigError(source, "", "the config file is empty; write `{}` to run with every default")
    return build_config(data, source)


def build_config(data: Any, source: Path) -> Config:
    """Validate an already-parsed config mapping as if it was read from `source`."""
    root = Node(data, "", source, SCHEMA[""])
    reject_placeholders(data, source)
    reader = FileReader()
    authorities = [parse_authority(w, item, source, reader) for w, item in root.items("authorities")]
    authorities.extend(reader.parsed(source, lambda: included_authorities(root, reader)))
    names = [a.name for a in authorities]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(source, "authorities", f"duplicate authority name {duplicates[0]!r}")
    authorities = resolve_precedence(authorities, source)
    server = _server(root)
    mutation = root.child("mutation", SCHEMA["mutation"])
    stores = _stores(root, reader)
    return Config(
        path=source,
        server=server,
        verification=_verification(root),
        mutation=MutationConfig(keep_tag=mutation.boolean("keepTag", True),
                                deadline=mutation.duration("deadline", MutationConfig().deadline),
                                exempt_images=mutation.strings("exemptImages")),
        stores=stores or (StoreConfig(type="registry", match=("*",)),),
        authorities=tuple(authorities),
        sources=tuple(dict.fromkeys([source, *reader.sources])),
        declared=declared_keys(data),
        trust_digest=_trust_digest(data),
    )
