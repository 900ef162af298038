"""Artifact Registry and Container Registry credentials from the pod's Google identity: google-auth's
application default credentials as an OAuth2 access token, user `oauth2accesstoken` (as
docker-credential-gcr and the kubelet's GCP credential provider present it).

The credentials file named by GOOGLE_APPLICATION_CREDENTIALS (workload identity federation from another
cloud, a service account key) is the pod's own. The metadata server is another matter: on GKE with Workload
Identity it answers with the pod's bound service account, but on a node pool without it, with the node's;
sigwarden cannot tell them apart, so the metadata server is asked only when the store sets `nodeIdentity`."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC
from typing import Any

from provider.config import CloudAuth, Credentials
from provider.errors import ItemError
from provider.stores.cloud.hosts import host_problem
from provider.stores.cloud.issued import CloudIdentityError, Issued
from provider.stores.cloud.transport import SdkTransport, google_request

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
TOKEN_USER = "oauth2accesstoken"
METADATA_HOSTS = frozenset({"metadata.google.internal", "169.254.169.254", "metadata.google.internal."})


class GoogleIdentity:
    provider = "google"

    def __init__(self, cloud: CloudAuth, transport: SdkTransport) -> None:
        self.cloud = cloud
        self.transport = transport
        hosts = set(METADATA_HOSTS)
        configured = os.environ.get("GCE_METADATA_HOST") or os.environ.get("GCE_METADATA_ROOT")
        if configured:
            hosts.add(configured.split(":", 1)[0].lower())
        self.request = google_request(transport, frozenset(hosts) if cloud.node_identity else frozenset())
        self._credentials: Any = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        return describe(self.cloud)

    def _load(self) -> Any:
        if self._credentials is None:
            from google.auth import compute_engine

            path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
            if path:
                self._credentials = credentials_from_file(path)
            elif self.cloud.node_identity:
                self._credentials = compute_engine.Credentials(scopes=list(SCOPES))
            else:
                raise CloudIdentityError(
                    "no Google identity for this pod: GOOGLE_APPLICATION_CREDENTIALS is not set, and the metadata "
                    "server (GKE Workload Identity, or the node's service account) is asked only with "
                    "auth.cloud.nodeIdentity: true")
        return self._credentials

    def issue(self, host: str, deadline: float) -> Issued:
        from google.auth.exceptions import GoogleAuthError

        problem = host_problem("google", host)
        if problem:
            raise CloudIdentityError(problem)
        try:
            with self._lock, self.transport.within(deadline):
                credentials = self._load()
                if not credentials.valid:
                    credentials.refresh(self.request)
                token, expiry = credentials.token, credentials.expiry
        except CloudIdentityError:
            raise
        except ItemError as exc:
            raise CloudIdentityError(f"google identity for {host}: {exc.message}", exc.code) from None
        except (GoogleAuthError, ValueError, OSError) as exc:
            raise CloudIdentityError(f"google identity for {host}: {_one_line(exc)}") from None
        if not token:
            raise CloudIdentityError(f"google identity for {host}: no access token was issued")
        # google-auth keeps expiry as a naive UTC datetime.
        expires_at = expiry.replace(tzinfo=UTC).timestamp() if expiry is not None else 0.0
        return Issued(Credentials(username=TOKEN_USER, password=str(token)), expires_at)


def credentials_from_file(path: str) -> Any:
    """The credentials in a GOOGLE_APPLICATION_CREDENTIALS file, by its `type`, with the loader for that type:
    google-auth's generic loader also looks the project up with its own HTTP client, outside the egress policy."""
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except (OSError, ValueError) as exc:
        raise CloudIdentityError(f"GOOGLE_APPLICATION_CREDENTIALS {path}: {_one_line(exc)}") from None
    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "service_account":
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_info(info, scopes=list(SCOPES))
    if kind == "external_account":
        source = info.get("credential_source") or {}
        if str(source.get("environment_id", "")).startswith("aws"):
            from google.auth import aws

            return aws.Credentials.from_info(info, scopes=list(SCOPES))
        if "executable" in source:
            raise CloudIdentityError(f"GOOGLE_APPLICATION_CREDENTIALS {path}: executable-sourced credentials are "
                                     "not supported (they run a program); use a file or URL credential source")
        from google.auth import identity_pool

        return identity_pool.Credentials.from_info(info, scopes=list(SCOPES))
    raise CloudIdentityError(f"GOOGLE_APPLICATION_CREDENTIALS {path}: type {kind!r} is not supported (use "
                             "external_account for workload identity federation, or service_account)")


def describe(cloud: CloudAuth) -> str:
    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if path:
        return f"the credentials file in GOOGLE_APPLICATION_CREDENTIALS ({path})"
    if cloud.node_identity:
        return "the metadata server (GKE Workload Identity's service account, or the node's)"
    return "no Google identity: GOOGLE_APPLICATION_CREDENTIALS is not set and nodeIdentity is false"


def _one_line(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:300]
