"""ACR Enterprise Edition credentials from the pod's Alibaba Cloud identity: RRSA (the OIDC token ACK's
pod-identity webhook projects, exchanged at STS by alibabacloud-credentials' OIDC role provider), then the
ACR OpenAPI's GetAuthorizationToken (alibabacloud-cr20181201) for the instance, as Ratify's
alibabacloudAcrBasic auth provider does: the instance name is read from the registry host and mapped to its
id (`instances`, Ratify's acrInstancesConfig), with `instanceId` (defaultInstanceId) as the fallback. The same
identity reads certificates kept in KMS Certificates Manager (alibabacloud-kms20160120's GetCertificate) for
notation trust stores.

The Alibaba SDKs send every request through one static function of their HTTP core (Tea and Darabonba),
with no transport to hand them; sigwarden wraps those two functions so that a call made for a store goes
through the store's egress policy and the job's deadline (`routed`). Calls from other code are untouched."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

from provider.config import CloudAuth, Credentials
from provider.errors import ItemError
from provider.stores.cloud.hosts import parse_alibaba_host
from provider.stores.cloud.issued import CloudIdentityError, Issued
from provider.stores.cloud.transport import SdkTransport

_route = threading.local()
_install_lock = threading.Lock()
_installed = False


ECS_METADATA_HOSTS = frozenset({"100.100.100.200"})


@contextlib.contextmanager
def routed(transport: SdkTransport, deadline: float, metadata_hosts: frozenset[str] = frozenset()) -> Iterator[None]:
    """Send the Alibaba SDKs' requests made on this thread through `transport`, under `deadline`; plain http
    only to `metadata_hosts` (the ECS metadata service, when the store asks for the node's identity)."""
    _install()
    previous = getattr(_route, "transport", None), getattr(_route, "metadata_hosts", frozenset())
    _route.transport, _route.metadata_hosts = transport, metadata_hosts
    try:
        with transport.within(deadline):
            yield
    finally:
        _route.transport, _route.metadata_hosts = previous


def _install() -> None:
    global _installed
    with _install_lock:
        if _installed:
            return
        from darabonba.core import DaraCore
        from darabonba.response import DaraResponse
        from Tea.core import TeaCore
        from Tea.response import TeaResponse

        for core, response_type in ((DaraCore, DaraResponse), (TeaCore, TeaResponse)):
            original = core.do_action
            core.do_action = staticmethod(_wrapped(core, original, response_type))
        _installed = True


def _wrapped(core: Any, original: Any, response_type: Any) -> Any:
    def do_action(request: Any, runtime_option: Any = None) -> Any:
        transport: SdkTransport | None = getattr(_route, "transport", None)
        if transport is None:
            return original(request, runtime_option)
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        elif body is not None and not isinstance(body, bytes):
            body = body.read() if hasattr(body, "read") else bytes(body)
        headers = {str(k): str(v) for k, v in (request.headers or {}).items() if k.lower() != "host"}
        url = core.compose_url(request)
        host = (urlparse(url).hostname or "").lower()
        fetched = transport.send(str(request.method).upper(), url, headers, body or None,
                                 metadata_server=host in getattr(_route, "metadata_hosts", frozenset()))
        response = response_type()
        response.status_code = fetched.status
        response.status_message = ""
        response.headers = {k.lower(): v for k, v in fetched.headers.items()}
        response.body = fetched.body
        return response

    return do_action


class AlibabaIdentity:
    provider = "alibaba"

    def __init__(self, cloud: CloudAuth, transport: SdkTransport) -> None:
        self.cloud = cloud
        self.transport = transport
        self._provider: Any = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        return describe(self.cloud)

    def instance_id(self, host: str) -> tuple[str, str]:
        """(instance id, region) for an ACR EE host; raises CloudIdentityError naming what to configure."""
        parsed = parse_alibaba_host(host)
        if parsed is None:
            raise CloudIdentityError(f"{host!r} is not an ACR Enterprise Edition host")
        name, region = parsed
        found = self.cloud.instances.get(name) or self.cloud.instance_id
        if not found:
            raise CloudIdentityError(f"alibaba identity for {host}: no instance id for ACR EE instance {name!r}; "
                                     "set auth.cloud.instances or auth.cloud.instanceId")
        return found, region

    def _sts(self) -> Any:
        with self._lock:
            if self._provider is None:
                from alibabacloud_credentials.provider.oidc import OIDCRoleArnCredentialsProvider

                env = os.environ
                rrsa = (env.get("ALIBABA_CLOUD_ROLE_ARN") and env.get("ALIBABA_CLOUD_OIDC_PROVIDER_ARN")
                        and env.get("ALIBABA_CLOUD_OIDC_TOKEN_FILE"))
                if not rrsa and self.cloud.node_identity:
                    from alibabacloud_credentials.provider.ecs_ram_role import EcsRamRoleCredentialsProvider

                    # The node's RAM role from the ECS metadata service; refreshed on this thread, never by the
                    # SDK's own background thread (which would bypass the egress policy).
                    self._provider = EcsRamRoleCredentialsProvider(
                        role_name=env.get("ALIBABA_CLOUD_ECS_METADATA") or None, async_update_enabled=False)
                    return self._provider
                if not rrsa:
                    raise CloudIdentityError(
                        "no RRSA identity in this pod: ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN and "
                        "ALIBABA_CLOUD_OIDC_TOKEN_FILE are not all set (label the namespace "
                        "pod-identity.alibabacloud.com/injection: 'on' and annotate the ServiceAccount with "
                        "pod-identity.alibabacloud.com/role-name), and auth.cloud.nodeIdentity is false")
                vpc = env.get("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "").lower() == "true"
                self._provider = OIDCRoleArnCredentialsProvider(
                    role_arn=env["ALIBABA_CLOUD_ROLE_ARN"], oidc_provider_arn=env["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"],
                    oidc_token_file_path=env["ALIBABA_CLOUD_OIDC_TOKEN_FILE"],
                    role_session_name=env.get("ALIBABA_CLOUD_ROLE_SESSION_NAME") or "sigwarden",
                    sts_region_id=env.get("ALIBABA_CLOUD_STS_REGION") or None, enable_vpc=vpc)
            return self._provider

    def _client(self, client_type: Any, product: str, region: str) -> Any:
        """An OpenAPI client of `client_type` for `product` in `region`, with the pod's STS credentials; the
        product's `-vpc` endpoint when ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED is true. Call under `routed`."""
        from alibabacloud_tea_openapi.utils_models import Config

        vpc = os.environ.get("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED", "").lower() == "true"
        sts = self._sts().get_credentials()
        return client_type(Config(access_key_id=sts.get_access_key_id(), access_key_secret=sts.get_access_key_secret(),
                                  security_token=sts.get_security_token(), type="sts", region_id=region,
                                  endpoint=f"{product}{'-vpc' if vpc else ''}.{region}.aliyuncs.com"))

    def issue(self, host: str, deadline: float) -> Issued:
        from alibabacloud_cr20181201 import models
        from alibabacloud_cr20181201.client import Client
        from darabonba.runtime import RuntimeOptions

        instance, region = self.instance_id(host)
        try:
            with routed(self.transport, deadline, ECS_METADATA_HOSTS if self.cloud.node_identity else frozenset()):
                client = self._client(Client, "cr", region)
                answer = client.get_authorization_token_with_options(
                    models.GetAuthorizationTokenRequest(instance_id=instance), RuntimeOptions(autoretry=False))
        except CloudIdentityError:
            raise
        except ItemError as exc:
            raise CloudIdentityError(f"alibaba identity for {host}: {exc.message}", exc.code) from None
        except Exception as exc:  # the SDKs raise their own families (Tea, Darabonba, credentials); one line each
            raise CloudIdentityError(f"alibaba identity for {host}: {_one_line(exc)}") from None
        body = answer.body
        if body is None or not body.authorization_token or not body.temp_username:
            code = getattr(body, "code", "") if body is not None else ""
            raise CloudIdentityError(f"alibaba identity for {host}: GetAuthorizationToken for {instance} sent no "
                                     f"token{f' ({code})' if code else ''}")
        expires_at = float(body.expire_time) / 1000 if body.expire_time else 0.0
        return Issued(Credentials(username=body.temp_username, password=body.authorization_token), expires_at)

    def kms_certificate(self, region: str, certificate_id: str, deadline: float) -> dict[str, Any]:
        """KMS GetCertificate (API version 2016-01-20) for a certificate kept in KMS Certificates Manager: the
        answer's fields (`Certificate`, `CertificateChain`, PEM). The 3.x line of alibabacloud-kms20160120 no
        longer models the certificate operations, so the documented action is named through the client's
        generic `call_api`, signed and sent like every other call of that client."""
        from alibabacloud_kms20160120.client import Client
        from alibabacloud_tea_openapi.utils import Utils
        from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
        from darabonba.runtime import RuntimeOptions

        where = f"Alibaba Cloud KMS {region} certificate {certificate_id}"
        try:
            with routed(self.transport, deadline):
                client = self._client(Client, "kms", region)
                answer = client.call_api(
                    Params(action="GetCertificate", version="2016-01-20", protocol="HTTPS", pathname="/",
                           method="POST", auth_type="AK", style="RPC", req_body_type="formData", body_type="json"),
                    OpenApiRequest(query=Utils.query({"CertificateId": certificate_id})),
                    RuntimeOptions(autoretry=False))
        except ItemError as exc:  # no RRSA identity, or the egress policy or deadline refused the call
            raise CloudIdentityError(f"{where}: {exc.message}", exc.code) from None
        except Exception as exc:  # Tea, Darabonba and credentials errors; one line each
            raise CloudIdentityError(f"{where}: {_one_line(exc)}") from None
        body = answer.get("body") if isinstance(answer, dict) else None
        if not isinstance(body, dict):
            raise CloudIdentityError(f"{where}: GetCertificate did not answer a JSON object")
        return body


def describe(cloud: CloudAuth) -> str:
    role = os.environ.get("ALIBABA_CLOUD_ROLE_ARN")
    if role:
        return f"RAM role {role} (RRSA)"
    if cloud.node_identity:
        return "the node's ECS RAM role (metadata service): no RRSA variables are set in this process"
    return "no RRSA identity: ALIBABA_CLOUD_ROLE_ARN is not set in this process"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(getattr(exc, "message", None) or exc).split())
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code and code not in text:
        text = f"{code}: {text}"  # the service's error code (Forbidden.RAM, …) says what to fix
    return (text or type(exc).__name__)[:300]
