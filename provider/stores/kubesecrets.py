"""Registry credentials from docker config Secrets, read through the Kubernetes API (Ratify's k8Secrets auth
provider): `kubernetes.io/dockerconfigjson` and legacy `kubernetes.io/dockercfg` Secrets named in the config,
and the imagePullSecrets of a named ServiceAccount.

The Secrets are read when first needed, under that job's deadline, then re-read in the background every
`REREAD` seconds so a rotated Secret takes effect without a restart; a failed re-read keeps the last good
credentials and is counted. Every read goes through the store's egress policy with the API server named.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from provider.config import Credentials, SecretRef
from provider.errors import ErrorCode, ItemError
from provider.metrics import Metrics
from provider.stores.auth import CredentialError, parse_docker_config
from provider.stores.fetch import Outbound

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
REREAD = 60.0
REREAD_BUDGET = 10.0
MAX_OBJECT_BYTES = 1024 * 1024
SECRET_KEYS = {"kubernetes.io/dockerconfigjson": ".dockerconfigjson", "kubernetes.io/dockercfg": ".dockercfg"}


@dataclass
class _Read:
    by_host: dict[str, Credentials]
    at: float


class KubernetesSecrets:
    """Credentials by registry host from the Secrets `refs` name; the first Secret naming a host wins."""

    def __init__(self, refs: tuple[SecretRef, ...], outbound: Outbound, metrics: Metrics | None = None,
                 account_dir: Path = SERVICE_ACCOUNT_DIR, clock: Callable[[], float] = time.monotonic) -> None:
        self.refs = refs
        self.clock = clock
        self.metrics = metrics
        self.account_dir = account_dir
        self._outbound = outbound
        self._api: Outbound | None = None
        self._read: _Read | None = None
        self._refreshing = False
        self._lock = threading.Lock()
        self.last_error = ""

    def close(self) -> None:
        if self._api is not None:
            self._api.close()

    def get(self, host: str, deadline: float) -> Credentials | None:
        with self._lock:
            current = self._read
            stale = current is not None and self.clock() - current.at >= REREAD and not self._refreshing
            if stale:
                self._refreshing = True
        if current is None:
            current = self._load(deadline, "failed")
        elif stale:
            threading.Thread(target=self._reread, name="sigwarden-secrets-reread", daemon=True).start()
        return current.by_host.get(host)

    def _reread(self) -> None:
        try:
            self._load(time.monotonic() + REREAD_BUDGET, "refresh_failed")
        except ItemError:
            with self._lock:  # the last good credentials stay; the next use after REREAD tries again
                if self._read is not None:
                    self._read.at = self.clock()
        finally:
            with self._lock:
                self._refreshing = False

    def _load(self, deadline: float, failure: str) -> _Read:
        try:
            by_host: dict[str, Credentials] = {}
            for ref in self.refs:
                for name in self._secret_names(ref, deadline):
                    for found_host, credentials in self._secret(ref.namespace, name, deadline).items():
                        by_host.setdefault(found_host, credentials)
        except ItemError as exc:
            self.last_error = exc.message
            self._count(failure)
            raise
        read = _Read(by_host, self.clock())
        with self._lock:
            self._read = read
        self.last_error = ""
        self._count("issued")
        return read

    def _secret_names(self, ref: SecretRef, deadline: float) -> list[str]:
        if ref.name:
            return [ref.name]
        account = self._get(f"/api/v1/namespaces/{quote(ref.namespace)}/serviceaccounts/"
                            f"{quote(ref.service_account)}", deadline)
        pulls = account.get("imagePullSecrets") or []
        return [str(p["name"]) for p in pulls if isinstance(p, dict) and p.get("name")]

    def _secret(self, namespace: str, name: str, deadline: float) -> dict[str, Credentials]:
        where = f"Secret {namespace}/{name}"
        secret = self._get(f"/api/v1/namespaces/{quote(namespace)}/secrets/{quote(name)}", deadline)
        key = SECRET_KEYS.get(str(secret.get("type", "")))
        data = secret.get("data") or {}
        if key is None or key not in data:
            raise ItemError(ErrorCode.UNAUTHORIZED, f"kubernetesSecrets: {where} is not a "
                                                    f"kubernetes.io/dockerconfigjson or dockercfg Secret")
        try:
            return parse_docker_config(json.loads(base64.b64decode(data[key], validate=True)), where)
        except (binascii.Error, ValueError, CredentialError) as exc:
            raise ItemError(ErrorCode.UNAUTHORIZED, f"kubernetesSecrets: {where}: {exc}") from None

    def _get(self, path: str, deadline: float) -> dict[str, object]:
        server, api = self._client()
        try:
            token = (self.account_dir / "token").read_text().strip()  # re-read: projected tokens rotate
        except OSError as exc:
            raise ItemError(ErrorCode.UNAUTHORIZED, f"kubernetesSecrets: cannot read the service account token: "
                                                    f"{exc.strerror}") from None
        answer = api.fetch("GET", f"{server}{path}", deadline, MAX_OBJECT_BYTES, what="the Kubernetes API",
                           headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        if answer.status != 200:
            reason = {401: "the service account token was refused", 403: "forbidden (RBAC: get on that object by "
                      "resourceNames)", 404: "not found"}.get(answer.status, f"HTTP {answer.status}")
            raise ItemError(ErrorCode.UNAUTHORIZED, f"kubernetesSecrets: GET {path}: {reason}")
        try:
            found = json.loads(answer.body)
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise ItemError(ErrorCode.UNAUTHORIZED, f"kubernetesSecrets: GET {path}: not a JSON object")
        return found

    def _client(self) -> tuple[str, Outbound]:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST", ""), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise ItemError(ErrorCode.UNAUTHORIZED, "kubernetesSecrets: KUBERNETES_SERVICE_HOST is not set: not "
                                                    "running in a pod?")
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        with self._lock:
            if self._api is None:
                # The API server is the operator's own: named, so the egress policy lets this client reach it.
                self._api = self._outbound.with_policy(self._outbound.policy.naming(netloc))
                self._api.session.verify = str(self.account_dir / "ca.crt")
            return f"https://{netloc}", self._api

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.cloud_credentials.labels("kubernetesSecrets", result).inc()
