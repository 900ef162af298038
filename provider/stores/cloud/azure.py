"""ACR credentials from the pod's Azure identity: azure-identity's workload identity credential (the federated
token AKS projects into the pod), then ACR's token exchange (`/oauth2/exchange`: a Microsoft Entra access token
for an ACR refresh token). The registry client then trades the refresh token for repository-scoped access
tokens at the registry's own `/oauth2/token`, as for any identity token."""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
import time
from typing import Any

from provider.config import CloudAuth, Credentials
from provider.errors import ItemError
from provider.stores.cloud.hosts import host_problem
from provider.stores.cloud.issued import CloudIdentityError, Issued
from provider.stores.cloud.transport import SdkTransport, azure_transport

# The Entra resource ACR accepts, and the user name that goes with an ACR refresh token (Ratify's
# pkg/common/oras/authprovider/azure: AADResource, dockerTokenLoginUsernameGUID).
ACR_SCOPE = "https://containerregistry.azure.net/.default"
TOKEN_USER = "00000000-0000-0000-0000-000000000000"
# An ACR refresh token lives three hours; used when its own `exp` cannot be read (Ratify: defaultACRExpiryDuration).
ACR_REFRESH_LIFETIME = 3 * 3600.0
MAX_EXCHANGE_BYTES = 64 * 1024
IMDS_HOSTS = frozenset({"169.254.169.254"})


class AzureIdentity:
    provider = "azure"

    def __init__(self, cloud: CloudAuth, transport: SdkTransport) -> None:
        self.cloud = cloud
        self.transport = transport
        self._credential: Any = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        return describe(self.cloud)

    def _entra(self) -> Any:
        with self._lock:
            if self._credential is None:
                from azure.identity import ManagedIdentityCredential, WorkloadIdentityCredential

                if os.environ.get("AZURE_FEDERATED_TOKEN_FILE"):
                    self._credential = WorkloadIdentityCredential(transport=azure_transport(self.transport),
                                                                  retry_total=0)
                elif self.cloud.node_identity:
                    # IMDS: the node-local endpoint, plain http by design; reached only because the store asks.
                    self._credential = ManagedIdentityCredential(
                        client_id=os.environ.get("AZURE_CLIENT_ID"), retry_total=0,
                        transport=azure_transport(self.transport, IMDS_HOSTS))
                else:
                    raise CloudIdentityError(
                        "no Azure workload identity in this pod: AZURE_FEDERATED_TOKEN_FILE is not set (label the "
                        "pod azure.workload.identity/use: \"true\" and annotate its ServiceAccount with "
                        "azure.workload.identity/client-id), and auth.cloud.nodeIdentity is false")
            return self._credential

    def issue(self, host: str, deadline: float) -> Issued:
        from azure.core.exceptions import AzureError

        problem = host_problem("azure", host)
        if problem:
            raise CloudIdentityError(problem)
        try:
            with self.transport.within(deadline):
                entra = self._entra().get_token(ACR_SCOPE)
        except ItemError as exc:
            raise CloudIdentityError(f"azure identity for {host}: {exc.message}", exc.code) from None
        except (AzureError, ValueError, OSError) as exc:
            raise CloudIdentityError(f"azure identity for {host}: {_first_line(exc)}") from None
        refresh = self._exchange(host, entra.token, deadline)
        expires_at = _jwt_expiry(refresh) or min(float(entra.expires_on), time.time() + ACR_REFRESH_LIFETIME)
        return Issued(Credentials(username=TOKEN_USER, identity_token=refresh), expires_at)

    def _exchange(self, host: str, access_token: str, deadline: float) -> str:
        form = {"grant_type": "access_token", "service": host, "access_token": access_token}
        tenant = os.environ.get("AZURE_TENANT_ID", "")
        if tenant:
            form["tenant"] = tenant
        try:
            answer = self.transport.registry.fetch("POST", f"https://{host}/oauth2/exchange", deadline,
                                                   MAX_EXCHANGE_BYTES, what=f"ACR token exchange at {host}", data=form)
        except ItemError as exc:
            raise CloudIdentityError(f"azure identity for {host}: {exc.message}", exc.code) from None
        if answer.status != 200:
            raise CloudIdentityError(f"azure identity for {host}: ACR refused the token exchange "
                                     f"({answer.status}){_acr_reason(answer.body)}")
        try:
            token = json.loads(answer.body).get("refresh_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise CloudIdentityError(f"azure identity for {host}: ACR's token exchange sent no refresh token")
        return token


def describe(cloud: CloudAuth) -> str:
    if os.environ.get("AZURE_FEDERATED_TOKEN_FILE"):
        return (f"Azure workload identity (client {os.environ.get('AZURE_CLIENT_ID', '?')}, tenant "
                f"{os.environ.get('AZURE_TENANT_ID', '?')})")
    if cloud.node_identity:
        return "the node's managed identity (IMDS): no workload identity variables are set in this process"
    return "no Azure workload identity: AZURE_FEDERATED_TOKEN_FILE is not set in this process"


def _jwt_expiry(token: str) -> float:
    """The `exp` claim of a JWT, read without verifying (the registry verifies it); 0 when there is none."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else 0.0
    except (IndexError, ValueError, binascii.Error, AttributeError, UnicodeDecodeError):
        return 0.0


def _acr_reason(body: bytes) -> str:
    try:
        data = json.loads(body)
        errors = data.get("errors") or [data]
        text = " ".join(str(e.get("message") or e.get("error_description") or e.get("error") or "") for e in errors)
    except (ValueError, AttributeError, TypeError):
        return ""
    text = " ".join(text.split())[:200]
    return f": {text}" if text else ""


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
