"""ECR credentials from the pod's AWS identity: boto3's credential chain (IRSA web identity, EKS Pod Identity,
environment) and ECR `GetAuthorizationToken`, every request through the store's egress policy and deadline."""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
from typing import Any

from provider.config import CloudAuth, Credentials
from provider.errors import ItemError
from provider.stores.cloud.issued import CloudIdentityError, Issued
from provider.stores.cloud.transport import SdkTransport

# The private ECR host names, as amazon-ecr-credential-helper's ecr-login/api/client.go (`ecrPattern`)
# and the kubelet's ecr-credential-provider (cloud-provider-aws, `ecrPrivateHostPattern`) read them:
# registry (account) id, FIPS, region, partition suffix.
ECR_HOST = re.compile(r"^(\d{12})\.dkr[.\-]ecr(-fips)?\.([a-zA-Z0-9][a-zA-Z0-9\-_]*)\."
                      r"(amazonaws\.(?:com(?:\.cn)?|eu)|on\.(?:aws|amazonwebservices\.com\.cn)|sc2s\.sgov\.gov|"
                      r"c2s\.ic\.gov|cloud\.adc-e\.uk|csp\.hci\.ic\.gov)$")
# botocore's credential provider that borrows the node's identity (the EC2 instance profile through instance
# metadata), used only when the store asks for it.
NODE_PROVIDERS = ("iam-role",)
# The ECS and EKS Pod Identity credential agents (link-local, plain http by design), and instance metadata.
AGENT_HOSTS = frozenset({"169.254.170.2", "169.254.170.23", "fd00:ec2::23"})
IMDS_HOSTS = frozenset({"169.254.169.254", "fd00:ec2::254"})


def parse_ecr_host(host: str) -> tuple[str, str, bool] | None:
    """(registry id, region, FIPS) of a private ECR host name, or None."""
    found = ECR_HOST.match(host.lower())
    return (found.group(1), found.group(3), bool(found.group(2))) if found else None


def host_problem(host: str) -> str:
    return "" if parse_ecr_host(host) else (f"{host!r} is not an ECR registry host such as "
                                            "123456789012.dkr.ecr.us-east-1.amazonaws.com")


class _FetcherSession:
    """What botocore's metadata fetchers send with (`send(prepared request)`), through the transport."""

    def __init__(self, transport: SdkTransport, metadata_hosts: frozenset[str]) -> None:
        self.transport = transport
        self.metadata_hosts = metadata_hosts

    def send(self, request: Any) -> Any:
        from urllib.parse import urlparse

        from botocore.awsrequest import AWSResponse

        body = request.body.encode() if isinstance(request.body, str) else request.body
        headers = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()}
        host = (urlparse(request.url).hostname or "").lower()
        fetched = self.transport.send(request.method, request.url, headers, body or None,
                                      metadata_server=host in self.metadata_hosts)
        return AWSResponse(fetched.url, fetched.status, dict(fetched.headers), _Body(fetched.body))


class _Body:
    """What botocore reads a response body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body

    def read(self, *_: Any) -> bytes:
        body, self._body = self._body, b""
        return body


class AwsIdentity:
    provider = "aws"

    def __init__(self, cloud: CloudAuth, transport: SdkTransport) -> None:
        import botocore.session
        from botocore.config import Config

        self.transport = transport
        self.session = botocore.session.Session()
        resolver = self.session.get_component("credential_provider")
        if not cloud.node_identity:
            for method in NODE_PROVIDERS:
                if method in [p.METHOD for p in resolver.providers]:
                    resolver.remove(method)
        self.session.register("before-send", self._send)
        # The credential providers that fetch outside the API clients (EKS Pod Identity's agent, and with
        # nodeIdentity the instance metadata) get this transport too, plain http allowed to those hosts only.
        for method, attribute in (("container-role", "_fetcher"), ("iam-role", "_role_fetcher")):
            provider = next((p for p in resolver.providers if getattr(p, "METHOD", "") == method), None)
            fetcher = getattr(provider, attribute, None)
            if fetcher is not None and hasattr(fetcher, "_session"):
                fetcher._session = _FetcherSession(transport, AGENT_HOSTS if method == "container-role"
                                                   else IMDS_HOSTS)
        # One attempt per call: the job's deadline, not the SDK's retry budget, decides how long to try.
        self._config = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=10)
        self._clients: dict[tuple[str, bool], Any] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        return describe()

    def _send(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode()
        headers = {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()}
        fetched = self.transport.send(request.method, request.url, headers, body or None)
        return AWSResponse(fetched.url, fetched.status, dict(fetched.headers), _Body(fetched.body))

    def _client(self, region: str, fips: bool) -> Any:
        from botocore.config import Config

        with self._lock:
            client = self._clients.get((region, fips))
            if client is None:
                config = self._config.merge(Config(use_fips_endpoint=fips))
                client = self.session.create_client("ecr", region_name=region, config=config)
                self._clients[(region, fips)] = client
            return client

    def issue(self, host: str, deadline: float) -> Issued:
        from botocore.exceptions import BotoCoreError, ClientError

        parsed = parse_ecr_host(host)
        if parsed is None:
            raise CloudIdentityError(host_problem(host))
        registry_id, region, fips = parsed
        try:
            with self.transport.within(deadline):
                answer = self._client(region, fips).get_authorization_token(registryIds=[registry_id])
        except ItemError as exc:
            raise CloudIdentityError(f"aws identity for {host}: {exc.message}", exc.code) from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise CloudIdentityError(f"aws identity for {host}: ECR GetAuthorizationToken was refused: "
                                     f"{error.get('Code', '')} {error.get('Message', '')}".strip()[:300]) from None
        except BotoCoreError as exc:
            raise CloudIdentityError(f"aws identity for {host}: {_first_line(exc)}") from None
        try:
            data = answer["authorizationData"][0]
            user, _, password = base64.b64decode(data["authorizationToken"], validate=True).decode().partition(":")
            expires_at = data["expiresAt"].timestamp()
        except (KeyError, IndexError, TypeError, AttributeError, binascii.Error, UnicodeDecodeError):
            raise CloudIdentityError(f"aws identity for {host}: ECR sent an unusable authorization token") from None
        return Issued(Credentials(username=user, password=password), expires_at)


def describe() -> str:
    """Which AWS identity boto3's chain will find in this process's environment."""
    if os.environ.get("AWS_ROLE_ARN") and os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return f"IAM role {os.environ['AWS_ROLE_ARN']} (IRSA web identity)"
    if os.environ.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        return "EKS Pod Identity (the pod identity agent)"
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        return "the access key in AWS_ACCESS_KEY_ID"
    return ("boto3's credential chain, but no IRSA (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) or Pod Identity "
            "variables are set in this process")


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]
