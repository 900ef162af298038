"""A minimal Kubernetes API client over HTTPS: the few verbs sigwarden's in-pod jobs need.

The bearer token is re-read on every request: projected service account tokens rotate while the pod runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# Every call is bounded: a stuck API server must not hang the loop that keeps certificates fresh.
_TIMEOUT = (5.0, 15.0)


class KubeError(RuntimeError):
    """An API call failed; `status` is the HTTP status (0 when the server was not reached)."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {message}" if status else f"{method} {path}: {message}")
        self.status = status


@dataclass(frozen=True)
class KubeClient:
    """Talks to one API server with a bearer token file and the CA that signed the server's certificate."""

    server: str
    token_file: Path | None
    ca_file: Path | None  # None: the system's CAs
    client_cert: tuple[str, str] | None = None  # (certificate, key) files, from a kubeconfig

    @classmethod
    def in_cluster(cls, account_dir: Path = SERVICE_ACCOUNT_DIR) -> KubeClient:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise KubeError("GET", "/", 0, "KUBERNETES_SERVICE_HOST is not set: not running in a pod?")
        if ":" in host:
            host = f"[{host}]"
        return cls(f"https://{host}:{port}", account_dir / "token", account_dir / "ca.crt")

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                params: dict[str, str] | None = None) -> dict[str, Any]:
        """One call; returns the decoded JSON body or raises KubeError (404 and 409 included)."""
        headers = {"Accept": "application/json"}
        if self.token_file is not None:
            try:
                token = self.token_file.read_text().strip()
            except OSError as exc:
                raise KubeError(method, path, 0, f"cannot read the service account token: {exc.strerror}") from None
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body).encode()
        try:
            response = requests.request(method, self.server + path, headers=headers, data=data, params=params,
                                        verify=str(self.ca_file) if self.ca_file else True, cert=self.client_cert,
                                        timeout=_TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            raise KubeError(method, path, 0, f"API server not reachable: {exc}") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text[:200]
            raise KubeError(method, path, response.status_code, message)
        return response.json() if response.content else {}

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any] | None:
        """The object at `path`, or None when it does not exist."""
        try:
            return self.request("GET", path, params=params)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def merge_patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", path, patch, "application/merge-patch+json")

    def apply(self, path: str, obj: dict[str, Any], manager: str) -> dict[str, Any]:
        """Server-side apply (JSON is YAML); `force` takes fields over from other managers."""
        return self.request("PATCH", path, obj, "application/apply-patch+yaml",
                            params={"fieldManager": manager, "force": "true"})


def secret_path(namespace: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{quote(namespace)}/secrets"
    return f"{base}/{quote(name)}" if name else base


def provider_path(name: str) -> str:
    return f"/apis/externaldata.gatekeeper.sh/v1beta1/providers/{quote(name)}"


def webhook_configuration_path(name: str) -> str:
    return f"/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{quote(name)}"
