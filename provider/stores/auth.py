"""Registry credentials and the token dance: docker config files, static credentials, Bearer and Basic.

Secrets stay in these objects (their reprs hide them) and never reach a log line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cachetools import LRUCache

from provider.config import Credentials, RegistryAuth
from provider.reference import InvalidReference, normalise_host
from provider.stores.egress import split_host

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
TOKEN_CACHE_BYTES = 8 * 1024 * 1024
TOKEN_ENTRY_OVERHEAD = 400
_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')
# Registries whose token service lives on another host, by the registry host of a reference: credentials for
# the registry may go to these realm hosts without the config naming them.
KNOWN_REALM_HOSTS = {"docker.io": ("auth.docker.io",)}


class CloudCredentials(Protocol):
    def get(self, host: str, deadline: float) -> Credentials: ...


class SecretCredentials(Protocol):
    def get(self, host: str, deadline: float) -> Credentials | None: ...


class CredentialError(ValueError):
    """A docker config file that cannot be used; says which entry and why."""


def _entry_credentials(host: str, entry: dict[str, object]) -> Credentials:
    if entry.get("identitytoken"):
        return Credentials(username=str(entry.get("username", "")), identity_token=str(entry["identitytoken"]))
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(str(entry["auth"]), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialError(f"auths[{host!r}].auth is not base64 of user:password") from None
        return Credentials(username=user, password=password)
    return Credentials(username=str(entry.get("username", "")), password=str(entry.get("password", "")))


def _host_of(key: str) -> str:
    host = re.sub(r"^https?://", "", key).split("/", 1)[0]
    if key in DOCKER_HUB_KEYS or host in DOCKER_HUB_KEYS:
        return "docker.io"
    try:
        return normalise_host(host)  # looked up with the normalised registry of a reference
    except InvalidReference:
        return host


def load_docker_config(path: Path) -> dict[str, Credentials]:
    """Credentials by registry host from a docker `config.json` or a `.dockerconfigjson` Secret key."""
    return parse_docker_config(json.loads(path.read_text()), str(path))


def parse_docker_config(data: object, where: str) -> dict[str, Credentials]:
    """Credentials by registry host from a docker config document (`{"auths": {…}}`, or the legacy
    `.dockercfg` form: the host mapping itself)."""
    auths = data.get("auths", data) if isinstance(data, dict) else None
    if not isinstance(auths, dict):
        raise CredentialError(f"{where}: expected an `auths` mapping")
    found = {}
    for key, entry in auths.items():
        if isinstance(entry, dict):
            found[_host_of(str(key))] = _entry_credentials(str(key), entry)
    return found


@dataclass(frozen=True)
class Challenge:
    scheme: str  # bearer | basic
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(header: str) -> Challenge | None:
    """Parse `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` (or Basic)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() not in ("bearer", "basic"):
        return None
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
              for m in _CHALLENGE_PARAM.finditer(rest)}
    return Challenge(scheme.lower(), params)


def identity_of(credentials: Credentials | None) -> str:
    """Which credentials a token was obtained with (user and a digest of the secret; anonymous is "")."""
    if credentials is None or not (credentials.username or credentials.identity_token):
        return ""
    secret = f"{credentials.password}\x00{credentials.identity_token}".encode()
    return f"{credentials.username}#{hashlib.sha256(secret).hexdigest()[:16]}"


class CredentialStore:
    """Who we are at each registry host; static credentials win over the docker config file.

    Credentials for a registry go to that registry's host and to a token realm on the same host name, or on
    a host named in `auth.tokenRealms` (or a known one, Docker Hub's `auth.docker.io`); never anywhere else.
    """

    def __init__(self, auth: RegistryAuth, cloud: CloudCredentials | None = None,
                 cloud_hosts: frozenset[str] = frozenset(), secrets: SecretCredentials | None = None) -> None:
        self._by_host: dict[str, Credentials] = {}
        # Credentials issued by the pod's cloud identity, for exactly the hosts the store names.
        self.cloud = cloud
        self.cloud_hosts = cloud_hosts
        # Docker config Secrets read through the Kubernetes API: after static credentials, before dockerConfig.
        self.secrets = secrets
        self._static = {_host_of(h): c for h, c in auth.static.items()}
        if auth.docker_config is not None:
            self._by_host.update(load_docker_config(auth.docker_config))
        self._by_host.update({_host_of(h): c for h, c in auth.static.items()})
        self.token_realms = frozenset(h.strip().lower() for h in auth.token_realms)

    def for_host(self, host: str, deadline: float | None = None) -> Credentials | None:
        """Who we are at `host`; a cloud credential is fetched (before `deadline`) when none is cached."""
        deadline = deadline if deadline is not None else time.monotonic() + 30
        if self.cloud is not None and host in self.cloud_hosts:
            return self.cloud.get(host, deadline)
        if host in self._static:
            return self._static[host]
        if self.secrets is not None:
            found = self.secrets.get(host, deadline)
            if found is not None:
                return found
        return self._by_host.get(host)

    def realm_allowed(self, host: str, api_host: str, realm_netloc: str) -> bool:
        """May the credentials for registry `host` (spoken to at `api_host`) go to a realm at `realm_netloc`?"""
        name, _ = split_host(realm_netloc)
        if name == split_host(api_host)[0] or name == split_host(host)[0]:
            return True
        named = self.token_realms | frozenset(KNOWN_REALM_HOSTS.get(host, ()))
        return realm_netloc.lower() in named or name in named


@dataclass(frozen=True)
class TokenKey:
    """What a token is good for: the registry host, the realm and service that issued it, the scope it was
    asked for and the credentials it was obtained with. A token from one realm is never shown to another."""

    host: str
    realm: str
    service: str
    scope: str
    identity: str


class TokenCache:
    """Bearer tokens (and Basic pairs) by TokenKey until shortly before they expire, least recently used
    first out when their total size passes `max_bytes` (registry tokens can be tens of KB each)."""

    def __init__(self, max_bytes: int = TOKEN_CACHE_BYTES) -> None:
        self._tokens: LRUCache[TokenKey, tuple[str, float, int]] = LRUCache(max_bytes, getsizeof=_token_size)
        self._lock = threading.Lock()

    def get(self, key: TokenKey) -> str | None:
        with self._lock:
            token, expires, _ = self._tokens.get(key, ("", 0.0, 0))
        return token if token and time.monotonic() < expires else None

    def put(self, key: TokenKey, token: str, expires_in: float) -> None:
        with self._lock:
            # Renew a little early so a token never expires mid-request.
            # The key's strings come from the registry's challenge: they count towards the bound too.
            key_chars = len(key.host) + len(key.realm) + len(key.service) + len(key.scope) + len(key.identity)
            entry = (token, time.monotonic() + max(expires_in - 10, 5), key_chars)
            if _token_size(entry) <= self._tokens.maxsize:
                self._tokens[key] = entry

    @property
    def max_bytes(self) -> int:
        return int(self._tokens.maxsize)

    @property
    def size_bytes(self) -> int:
        with self._lock:
            return int(self._tokens.currsize)


def _token_size(entry: tuple[str, float, int]) -> int:
    # The token and the key's strings dominate; the rest is the key object, tuple and float (rounded up).
    return len(entry[0]) + entry[2] + TOKEN_ENTRY_OVERHEAD
