"""Small stand-ins for cloud services, written from each service's published protocol, served over TLS inside
the test world; and a distribution-registry token signer, so the real docker-registry behind them checks the
tokens they issue (a wrong or expired token really fails)."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from werkzeug.wrappers import Request, Response

from provider.devkit.pki import issue, make_ca

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "server", "date"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """A JWT-shaped opaque token (the stand-in that issued it remembers it; nobody verifies the signature)."""
    return ".".join((b64url(b'{"alg":"none","typ":"JWT"}'), b64url(json.dumps(claims).encode()), b64url(b"x")))


class RegistryTokenSigner:
    """Signs distribution-registry tokens (ES256, x5c) that docker-registry's token auth accepts: its
    `rootcertbundle` is this signer's CA (distribution registry/auth/token/token.go verifies the x5c chain)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        ca = make_ca("registry token CA")
        self.leaf = issue(ca, "registry token signer")
        self.bundle = directory / "token-ca.pem"
        self.bundle.write_bytes(ca.cert_pem)

    def token(self, service: str, repository: str, actions: list[str], lifetime: float = 300) -> str:
        now = int(time.time())
        header = {"alg": "ES256", "typ": "JWT",
                  "x5c": [base64.b64encode(self.leaf.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        claims = {"iss": "sigwarden-test", "sub": "test", "aud": service, "exp": now + int(lifetime),
                  "nbf": now - 60, "iat": now, "jti": uuid.uuid4().hex,
                  "access": [{"type": "repository", "name": repository, "actions": actions}] if repository else []}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.leaf.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def session(self, service: str, repository: str) -> requests.Session:
        """A requests session that may push `repository` straight to the registry behind a stand-in."""
        session = requests.Session()
        session.trust_env = False
        session.headers["Authorization"] = f"Bearer {self.token(service, repository, ['pull', 'push'])}"
        return session


def json_response(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def form_of(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.form.items()}


@dataclass
class Recorder:
    """What a stand-in was sent: (path, form or header fields), for tests that check where secrets went."""

    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, fields: dict[str, str]) -> None:
        with self.lock:
            self.requests.append((path, fields))

    def paths(self) -> list[str]:
        with self.lock:
            return [p for p, _ in self.requests]

    def seen(self, secret: str) -> bool:
        with self.lock:
            return any(secret in value for _, fields in self.requests for value in fields.values())


class EntraStandIn:
    """Microsoft Entra ID's client-credentials grant with a federated client assertion (workload identity):
    POST /{tenant}/oauth2/v2.0/token → an access token for the requested scope."""

    def __init__(self, tenant: str, client_id: str, federated_token: str, lifetime: int = 3600) -> None:
        self.tenant, self.client_id, self.federated_token, self.lifetime = tenant, client_id, federated_token, lifetime
        self.issued: set[str] = set()
        self.recorder = Recorder()
        self._counter = itertools.count(1)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        form = form_of(request)
        self.recorder.add(request.path, form)
        if request.method != "POST" or request.path != f"/{self.tenant}/oauth2/v2.0/token":
            return json_response({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."},
                                 400)(environ, start_response)
        if form.get("client_id") != self.client_id:
            return json_response({"error": "unauthorized_client", "error_description":
                                  f"AADSTS700016: Application with identifier '{form.get('client_id')}' was not "
                                  "found in the directory."}, 400)(environ, start_response)
        if (form.get("grant_type") != "client_credentials" or form.get("client_assertion") != self.federated_token
                or form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"):
            return json_response({"error": "invalid_client", "error_description":
                                  "AADSTS70021: No matching federated identity record found for presented "
                                  "assertion."}, 401)(environ, start_response)
        token = f"entra-{next(self._counter)}-{uuid.uuid4().hex}"
        self.issued.add(token)
        return json_response({"token_type": "Bearer", "expires_in": self.lifetime, "ext_expires_in": self.lifetime,
                              "access_token": token})(environ, start_response)


class RegistryFront:
    """A registry host's own token endpoints (`handlers`, by path) in front of the real docker-registry, which
    gets every other path and checks the tokens those endpoints issued."""

    def __init__(self, name: str, backend: str) -> None:
        self.name, self.backend = name, backend
        self.recorder = Recorder()
        self.handlers: dict[str, Any] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        handler = self.handlers.get(request.path)
        if handler is not None:
            response = handler(request)
        else:
            self.recorder.add(request.path, {"authorization": request.headers.get("Authorization", "")})
            response = self._proxy(request)
        return response(environ, start_response)

    def _proxy(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
        headers.update({"Host": self.name, "X-Forwarded-Proto": "https"})
        url = f"{self.backend}{request.full_path.rstrip('?')}"
        upstream = requests.request(request.method, url, headers=headers, data=request.get_data(),
                                    allow_redirects=False, timeout=10)
        kept = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
        return Response(upstream.content, status=upstream.status_code, headers=kept)


def repository_of(scope: str) -> str:
    parts = scope.split(":")
    return parts[1] if len(parts) == 3 and parts[0] == "repository" else ""


class AcrStandIn(RegistryFront):
    """Azure Container Registry's token endpoints (ACR's AAD-OAuth protocol: `/oauth2/exchange` trades an Entra
    access token for a refresh token, `/oauth2/token` a refresh token for a repository-scoped access token)."""

    def __init__(self, name: str, backend: str, signer: RegistryTokenSigner, entra: EntraStandIn | None,
                 refresh_lifetime: float = 3 * 3600, access_lifetime: float = 300) -> None:
        super().__init__(name, backend)
        self.signer, self.entra = signer, entra
        self.refresh_lifetime, self.access_lifetime = refresh_lifetime, access_lifetime
        self.refresh_tokens: dict[str, float] = {}
        self._counter = itertools.count(1)
        self.handlers = {"/oauth2/exchange": self._exchange, "/oauth2/token": self._token}

    def _exchange(self, request: Request) -> Response:
        form = form_of(request)
        self.recorder.add("/oauth2/exchange", form)
        if (form.get("grant_type") != "access_token" or form.get("service") != self.name or self.entra is None
                or form.get("access_token") not in self.entra.issued):
            return json_response({"errors": [{"code": "UNAUTHORIZED", "message": "invalid Entra access token"}]}, 401)
        exp = time.time() + self.refresh_lifetime
        token = unsigned_jwt({"jti": f"refresh-{next(self._counter)}", "aud": self.name, "exp": int(exp)})
        self.refresh_tokens[token] = exp
        return json_response({"refresh_token": token})

    def _token(self, request: Request) -> Response:
        form = form_of(request)
        self.recorder.add("/oauth2/token", form)
        expires = self.refresh_tokens.get(form.get("refresh_token", ""), 0)
        if form.get("grant_type") != "refresh_token" or time.time() >= expires:
            return json_response({"errors": [{"code": "UNAUTHORIZED", "message": "invalid or expired refresh token"}]},
                                 401)
        token = self.signer.token(self.name, repository_of(form.get("scope", "")), ["pull"], self.access_lifetime)
        return json_response({"access_token": token})


class BasicTokenFront(RegistryFront):
    """A registry whose token realm (`realm_path` on the registry's own host) takes Basic `user:<password>`
    for any password in `passwords` (Artifact Registry's `oauth2accesstoken:<OAuth2 token>`, ACR EE's
    temporary user and token) and answers a repository-scoped registry token."""

    def __init__(self, name: str, backend: str, signer: RegistryTokenSigner, realm_path: str, user: str,
                 passwords: set[str], access_lifetime: float = 300) -> None:
        super().__init__(name, backend)
        self.signer, self.user, self.passwords, self.access_lifetime = signer, user, passwords, access_lifetime
        self.handlers = {realm_path: self._token}

    def _token(self, request: Request) -> Response:
        auth = request.authorization
        self.recorder.add(request.path, {"user": auth.username if auth else "", "password":
                                         auth.password if auth else ""})
        if auth is None or auth.username != self.user or auth.password not in self.passwords:
            return json_response({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}, 401)
        token = self.signer.token(self.name, repository_of(request.args.get("scope", "")), ["pull"],
                                  self.access_lifetime)
        return json_response({"token": token, "expires_in": int(self.access_lifetime)})


class GoogleStsStandIn:
    """Google's Security Token Service token exchange (RFC 8693, POST /v1/token), as workload identity
    federation uses it: a subject token from the pod's file for a Google access token."""

    def __init__(self, audience: str, subject_token: str, lifetime: int = 3600) -> None:
        self.audience, self.subject_token, self.lifetime = audience, subject_token, lifetime
        self.issued: set[str] = set()
        self.expiry: dict[str, float] = {}
        self.recorder = Recorder()
        self._counter = itertools.count(1)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        form = form_of(request)
        self.recorder.add(request.path, form)
        if (request.path != "/v1/token" or form.get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange"
                or form.get("audience") != self.audience or form.get("subject_token") != self.subject_token):
            return json_response({"error": "invalid_grant", "error_description": "The audience in ID Token does not "
                                  "match the expected audience."}, 400)(environ, start_response)
        token = f"ya29.sts-{next(self._counter)}-{uuid.uuid4().hex}"
        self.issued.add(token)
        self.expiry[token] = time.time() + self.lifetime
        return json_response({"access_token": token, "issued_token_type":
                              "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer",
                              "expires_in": self.lifetime})(environ, start_response)


class GkeMetadataStandIn:
    """The GKE metadata server's service account endpoints (plain http, `Metadata-Flavor: Google`)."""

    def __init__(self, email: str, lifetime: int = 3600) -> None:
        self.email, self.lifetime = email, lifetime
        self.issued: set[str] = set()
        self.recorder = Recorder()
        self._counter = itertools.count(1)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.recorder.add(request.path, {})
        prefix = "/computeMetadata/v1/instance/service-accounts/default/"
        if request.headers.get("Metadata-Flavor") != "Google" or not request.path.startswith(prefix.rstrip("/")):
            response = Response("not found", status=404)
        elif request.path == prefix + "token":
            token = f"ya29.gke-{next(self._counter)}-{uuid.uuid4().hex}"
            self.issued.add(token)
            response = json_response({"access_token": token, "expires_in": self.lifetime, "token_type": "Bearer"})
        elif request.path == prefix + "email":
            response = Response(self.email, mimetype="text/plain")
        else:
            response = json_response({"aliases": ["default"], "email": self.email,
                                      "scopes": ["https://www.googleapis.com/auth/cloud-platform"]})
        response.headers["Metadata-Flavor"] = "Google"
        return response(environ, start_response)


def params_of(request: Request) -> dict[str, str]:
    """An Alibaba Cloud RPC call's parameters: query and form together."""
    return {**{k: v for k, v in request.args.items()}, **form_of(request)}


class AlibabaStsStandIn:
    """Alibaba Cloud STS AssumeRoleWithOIDC (RRSA): the pod's OIDC token for temporary credentials of the role."""

    def __init__(self, role_arn: str, oidc_provider_arn: str, oidc_token: str, lifetime: int = 3600) -> None:
        self.role_arn, self.oidc_provider_arn, self.oidc_token, self.lifetime = (role_arn, oidc_provider_arn,
                                                                                 oidc_token, lifetime)
        self.issued: dict[str, str] = {}  # access key id → security token
        self.recorder = Recorder()
        self._counter = itertools.count(1)

    def holds_issued(self, request: Request, params: dict[str, str]) -> bool:
        """Whether a call to another Alibaba service is signed with credentials this STS issued (access key in
        the query (signature V1) or the ACS3 Authorization header (V3), security token beside it)."""
        key = params.get("AccessKeyId") or _acs3_key(request.headers.get("Authorization", ""))
        token = params.get("SecurityToken") or request.headers.get("x-acs-security-token", "")
        return bool(token) and self.issued.get(key) == token

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        params = params_of(request)
        self.recorder.add(request.host, params)
        if (params.get("Action") != "AssumeRoleWithOIDC" or params.get("RoleArn") != self.role_arn
                or params.get("OIDCProviderArn") != self.oidc_provider_arn
                or params.get("OIDCToken") != self.oidc_token):
            return json_response({"RequestId": uuid.uuid4().hex, "Code": "AuthenticationFail.OIDCToken.Invalid",
                                  "Message": "The OIDC token is invalid."}, 400)(environ, start_response)
        key = f"STS.{next(self._counter)}{uuid.uuid4().hex[:12]}"
        self.issued[key] = f"security-token-{uuid.uuid4().hex}"
        expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + self.lifetime))
        return json_response({"RequestId": uuid.uuid4().hex, "Credentials": {
            "AccessKeyId": key, "AccessKeySecret": uuid.uuid4().hex, "SecurityToken": self.issued[key],
            "Expiration": expiration}})(environ, start_response)


class AcrOpenApiStandIn:
    """The ACR OpenAPI's GetAuthorizationToken (2018-12-01) for an ACR EE instance, for callers holding STS
    credentials the STS stand-in issued: a temporary user and token that the instance's registry accepts."""

    def __init__(self, sts: AlibabaStsStandIn, instances: set[str], lifetime: int = 3600) -> None:
        self.sts, self.instances, self.lifetime = sts, instances, lifetime
        self.issued: set[str] = set()
        self.expiry: dict[str, float] = {}
        self.recorder = Recorder()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        params = params_of(request)
        self.recorder.add(request.host, {**params, "authorization": request.headers.get("Authorization", "")})
        if not self.sts.holds_issued(request, params):
            return json_response({"RequestId": uuid.uuid4().hex, "Code": "InvalidSecurityToken.Mismatch",
                                  "Message": "The security token does not match the access key."},
                                 400)(environ, start_response)
        # Signature V3 (ACS3-HMAC-SHA256) names the action in a header, V1 in the query.
        action = params.get("Action") or request.headers.get("x-acs-action", "")
        if action != "GetAuthorizationToken" or params.get("InstanceId") not in self.instances:
            return json_response({"RequestId": uuid.uuid4().hex, "Code": "INSTANCE_NOT_EXIST",
                                  "Message": "instance not exist"}, 404)(environ, start_response)
        authorization = f"acr-ee-{uuid.uuid4().hex}"
        self.issued.add(authorization)
        self.expiry[authorization] = time.time() + self.lifetime
        return json_response({"RequestId": uuid.uuid4().hex, "IsSuccess": True, "Code": "success",
                              "TempUsername": "cr_temp_user", "AuthorizationToken": authorization,
                              "ExpireTime": int((time.time() + self.lifetime) * 1000)})(environ, start_response)


class KmsCertificateStandIn:
    """Alibaba Cloud KMS (API version 2016-01-20) GetCertificate, from its published API reference: a certificate
    kept in Certificates Manager by id, answered as `Certificate` and `CertificateChain` (PEM), for callers
    holding STS credentials the STS stand-in issued. `certificates` may be changed by the test (a rotation)."""

    def __init__(self, sts: AlibabaStsStandIn, certificates: dict[str, tuple[bytes, bytes]]) -> None:
        self.sts, self.certificates = sts, certificates  # id → (certificate PEM, chain PEM)
        self.refusing = False
        self.recorder = Recorder()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        params = params_of(request)
        self.recorder.add(request.host, {**params, "action": request.headers.get("x-acs-action", "")})
        if self.refusing or not self.sts.holds_issued(request, params):
            return json_response({"RequestId": uuid.uuid4().hex, "Code": "Forbidden.RAM",
                                  "Message": "User not authorized to operate on the specified resource."},
                                 403)(environ, start_response)
        action = params.get("Action") or request.headers.get("x-acs-action", "")
        identifier = params.get("CertificateId", "")
        if action != "GetCertificate" or identifier not in self.certificates:
            return json_response({"RequestId": uuid.uuid4().hex, "Code": "Forbidden.ResourceNotFound",
                                  "Message": "The specified resource is not found."}, 404)(environ, start_response)
        certificate, chain = self.certificates[identifier]
        return json_response({"RequestId": uuid.uuid4().hex, "CertificateId": identifier,
                              "Certificate": certificate.decode(), "CertificateChain": chain.decode(),
                              "Csr": ""})(environ, start_response)


def _acs3_key(authorization: str) -> str:
    """The access key id in an `ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=…` header."""
    marker = "Credential="
    return authorization.split(marker, 1)[1].split(",", 1)[0] if marker in authorization else ""


class VaultTransitStandIn:
    """HashiCorp Vault's transit engine: GET /v1/<mount>/keys/<name> (X-Vault-Token) answers the key's versions
    with their public keys, as `vault read transit/keys/NAME` shows them."""

    def __init__(self, token: str, keys: dict[str, list[bytes]], mount: str = "transit") -> None:
        self.token, self.keys, self.mount = token, keys, mount
        self.recorder = Recorder()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.recorder.add(request.path, {"token": request.headers.get("X-Vault-Token", "")})
        if request.headers.get("X-Vault-Token") != self.token:
            return json_response({"errors": ["permission denied"]}, 403)(environ, start_response)
        prefix = f"/v1/{self.mount}/keys/"
        versions = self.keys.get(request.path.removeprefix(prefix)) if request.path.startswith(prefix) else None
        if not versions:
            return json_response({"errors": []}, 404)(environ, start_response)
        return json_response({"data": {"type": "ecdsa-p256", "latest_version": len(versions), "keys": {
            str(i + 1): {"public_key": pem.decode(), "name": "P-256"} for i, pem in enumerate(versions)}}})(
            environ, start_response)


class KeyVaultStandIn:
    """Azure Key Vault's REST API (api-version 7.4) for Entra tokens the Entra stand-in issued: keys as JSON web
    keys, certificate versions, and certificates' secrets (PEM or PKCS#12) by version."""

    def __init__(self, entra: EntraStandIn) -> None:
        self.entra = entra
        self.keys: dict[str, dict[str, Any]] = {}
        self.certificates: dict[str, list[dict[str, Any]]] = {}  # name → versions, oldest first
        self.recorder = Recorder()

    def add_certificate(self, name: str, version: str, value: str, content_type: str, created: int,
                        expires: int, enabled: bool = True) -> None:
        self.certificates.setdefault(name, []).append({"version": version, "value": value, "contentType":
                                                       content_type, "created": created, "exp": expires,
                                                       "enabled": enabled})

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.recorder.add(request.path, {"authorization": request.headers.get("Authorization", "")})
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.entra.issued:
            return json_response({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a "
                                            "Bearer or PoP token."}}, 401)(environ, start_response)
        parts = request.path.strip("/").split("/")
        response = json_response({"error": {"code": "NotFound", "message": "not found"}}, 404)
        if parts[0] == "keys" and len(parts) in (2, 3) and parts[1] in self.keys:
            response = json_response({"key": self.keys[parts[1]]})
        elif parts[0] == "certificates" and len(parts) == 3 and parts[2] == "versions":
            versions = self.certificates.get(parts[1], [])
            response = json_response({"value": [
                {"id": f"https://{request.host}/certificates/{parts[1]}/{v['version']}",
                 "attributes": {"enabled": v["enabled"], "created": v["created"], "exp": v["exp"]}}
                for v in versions]})
        elif parts[0] == "secrets" and len(parts) == 3:
            for version in self.certificates.get(parts[1], []):
                if version["version"] == parts[2]:
                    response = json_response({"value": version["value"], "contentType": version["contentType"],
                                              "id": f"https://{request.host}/secrets/{parts[1]}/{parts[2]}"})
        return response(environ, start_response)


class CloudKmsStandIn:
    """Google Cloud KMS's REST API for access tokens the STS stand-in issued: a key's versions and each version's
    public key (PEM)."""

    def __init__(self, sts: GoogleStsStandIn, versions: dict[str, bytes]) -> None:
        self.sts, self.versions = sts, versions  # full version name → PEM
        self.recorder = Recorder()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.recorder.add(request.path, {})
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.sts.issued:
            return json_response({"error": {"code": 401, "status": "UNAUTHENTICATED"}}, 401)(environ, start_response)
        path = request.path.removeprefix("/v1/")
        if path.endswith("/publicKey") and path.removesuffix("/publicKey") in self.versions:
            name = path.removesuffix("/publicKey")
            return json_response({"pem": self.versions[name].decode(), "algorithm": "EC_SIGN_P256_SHA256",
                                  "name": name})(environ, start_response)
        if path.endswith("/cryptoKeyVersions"):
            key = path.removesuffix("/cryptoKeyVersions")
            return json_response({"cryptoKeyVersions": [{"name": n, "state": "ENABLED"} for n in self.versions
                                                        if n.startswith(key + "/")]})(environ, start_response)
        return json_response({"error": {"code": 404, "status": "NOT_FOUND"}}, 404)(environ, start_response)


class ImdsStandIn:
    """Azure's instance metadata service token endpoint (plain http on 169.254.169.254, `Metadata: true`): a
    managed identity's token, which the Entra stand-in's relying parties (the ACR stand-in) accept."""

    def __init__(self, entra: EntraStandIn) -> None:
        self.entra = entra
        self.recorder = Recorder()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.recorder.add(request.path, {k: v for k, v in request.args.items()})
        if request.headers.get("Metadata") != "true":
            return json_response({"error": "invalid_request", "error_description": "Required metadata header not "
                                  "specified"}, 400)(environ, start_response)
        if request.path != "/metadata/identity/oauth2/token":
            return json_response({"error": "not_found"}, 404)(environ, start_response)
        token = f"imds-{uuid.uuid4().hex}"
        self.entra.issued.add(token)
        now = int(time.time())
        return json_response({"access_token": token, "expires_on": str(now + 3600), "expires_in": "3600",
                              "resource": request.args.get("resource", ""), "token_type": "Bearer"})(
            environ, start_response)


class Unexpired:
    """The tokens of `expiry` (token → when it expires) that have not expired yet: what a registry's token
    realm accepts, so an expired token really fails."""

    def __init__(self, *expiries: dict[str, float]) -> None:
        self.expiries = expiries

    def __contains__(self, token: object) -> bool:
        return any(time.time() < e.get(str(token), 0) for e in self.expiries)


class EcsMetadataStandIn:
    """The ECS metadata service's RAM role credentials (plain http on 100.100.100.200, IMDSv2 token first): the
    node's role, with STS credentials the ACR OpenAPI stand-in accepts."""

    def __init__(self, sts: AlibabaStsStandIn, role: str = "ack-node-role") -> None:
        self.sts, self.role = sts, role
        self.tokens: set[str] = set()
        self.recorder = Recorder()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.recorder.add(f"{request.method} {request.path}", {})
        if request.method == "PUT" and request.path == "/latest/api/token":
            token = uuid.uuid4().hex
            self.tokens.add(token)
            return Response(token, mimetype="text/plain")(environ, start_response)
        if request.headers.get("X-aliyun-ecs-metadata-token") not in self.tokens:
            return Response("unauthorized", status=401)(environ, start_response)
        prefix = "/latest/meta-data/ram/security-credentials/"
        if request.path == prefix:
            return Response(self.role, mimetype="text/plain")(environ, start_response)
        if request.path == prefix + self.role:
            key = f"STS.node{uuid.uuid4().hex[:12]}"
            self.sts.issued[key] = f"security-token-{uuid.uuid4().hex}"
            expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
            return json_response({"Code": "Success", "AccessKeyId": key, "AccessKeySecret": uuid.uuid4().hex,
                                  "SecurityToken": self.sts.issued[key], "Expiration": expiration,
                                  "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})(
                environ, start_response)
        return Response("not found", status=404)(environ, start_response)


class PodIdentityAgentStandIn:
    """The EKS Pod Identity agent (plain http on 169.254.170.23): the pod's role credentials for the projected
    token in the Authorization header, in the container credentials format botocore reads."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.recorder = Recorder()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.recorder.add(request.path, {"authorization": request.headers.get("Authorization", "")})
        if request.path != "/v1/credentials" or request.headers.get("Authorization") != self.token:
            return json_response({"message": "Invalid token"}, 401)(environ, start_response)
        expiration = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        return json_response({"AccessKeyId": "ASIAPODIDENTITY", "SecretAccessKey": uuid.uuid4().hex,
                              "Token": uuid.uuid4().hex, "Expiration": expiration,
                              "AccountId": "123456789012"})(environ, start_response)
