"""HTTP to OCI distribution registries: auth challenges, retries, redirects, deadlines and size caps.

Every response body is read with a byte cap and a deadline; failures become ItemErrors with the item
error codes of the protocol, carrying the registry's own message where it helps.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
from urllib.parse import urlencode, urljoin, urlparse

from cachetools import LRUCache

from provider.config import Credentials
from provider.errors import ErrorCode, ItemError
from provider.stores.auth import Challenge, CredentialStore, TokenCache, TokenKey, identity_of, parse_challenge
from provider.stores.fetch import USER_AGENT, Fetched, FetchFailed, Outbound
from provider.stores.retryafter import retry_after_seconds

log = logging.getLogger("sigwarden.registry")

MAX_REDIRECTS = 5
MAX_RETRIES = 3
MAX_TOKEN_BYTES = 64 * 1024
RETRY_STATUSES = frozenset({-1, 429, 500, 502, 503, 504})  # -1: the connection failed
API_HOSTS = {"docker.io": "registry-1.docker.io"}
# Registry hosts whose last Bearer challenge (realm, service) is remembered, to find their cached tokens;
# longer challenges are refused, so what is remembered stays under 4096 x 2 KiB.
MAX_REMEMBERED_REALMS = 4096
MAX_CHALLENGE_CHARS = 2048

Response = Fetched


class RegistryClient:
    """GETs and HEADs against one store's registries, sharing a connection pool and token cache."""

    def __init__(self, credentials: CredentialStore, insecure: tuple[str, ...], outbound: Outbound,
                 tokens: TokenCache | None = None) -> None:
        self.credentials = credentials
        self.insecure = frozenset(insecure)
        self.outbound = outbound
        self.tokens = tokens or TokenCache()
        # host → (realm, service) of the last Bearer challenge the registry itself sent.
        self._realms: LRUCache[str, tuple[str, str]] = LRUCache(MAX_REMEMBERED_REALMS)
        self._realms_lock = threading.Lock()

    def close(self) -> None:
        self.outbound.close()

    def base_url(self, host: str) -> str:
        scheme = "http" if host in self.insecure else "https"
        return f"{scheme}://{API_HOSTS.get(host, host)}"

    def get(self, host: str, repository: str, path: str, deadline: float, max_bytes: int,
            accept: str = "", method: str = "GET", ok: tuple[int, ...] = (200,)) -> Response:
        """Request `path` under `/v2/`; statuses outside `ok` raise ItemError (404 → NOT_FOUND)."""
        url = f"{self.base_url(host)}/v2/{path}"
        scope = f"repository:{repository}:pull"
        attempt = 0
        authorized = False
        # Looked up once per request: a cloud credential that expired on arrival still serves this request.
        credentials = self.credentials.for_host(host, deadline)
        while True:
            response = self._send(method, url, host, scope, accept, deadline, max_bytes, credentials)
            if response.status == 401 and urlparse(response.url).netloc != urlparse(url).netloc:
                # A redirect target is not the registry: its challenge is never answered with the
                # registry's credentials, and its tokens never reach the registry (CVE-2025-27403's class).
                raise ItemError(ErrorCode.UNAUTHORIZED,
                                f"registry {host} redirected {path} to {urlparse(response.url).netloc}, which asked "
                                f"for credentials; credentials are only sent to {host} and its token realm")
            if response.status == 401 and not authorized:
                authorized = True
                if self._authenticate(host, scope, response, deadline, credentials):
                    continue
            if response.status in RETRY_STATUSES and attempt < MAX_RETRIES:
                attempt += 1
                if self._backoff(attempt, response, deadline):
                    continue
            if response.status in ok:
                return response
            raise self._error(response, host, path)

    # --- one request, with redirects followed by hand -------------------------------------------------

    def _send(self, method: str, url: str, host: str, scope: str, accept: str, deadline: float,
              max_bytes: int, credentials: Credentials | None) -> Response:
        visited: set[str] = set()
        registry = urlparse(self.base_url(host)).netloc
        for _ in range(MAX_REDIRECTS + 1):
            headers = {"Accept": accept} if accept else {}
            # Credentials go only to the registry itself, never to a redirect target elsewhere.
            if urlparse(url).netloc == registry:
                headers.update(self._auth_header(host, scope, credentials))
            try:
                response = self.outbound.fetch(method, url, deadline, max_bytes, what=f"registry {host}",
                                               headers=headers)
            except FetchFailed as exc:
                return Response(-1, b"", {}, exc.message)
            if response.status not in (301, 302, 303, 307, 308):
                return response
            location = response.headers.get("Location", "")
            target = urljoin(url, location)
            if not location or target in visited or urlparse(target).scheme not in ("http", "https"):
                raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE,
                                f"registry {host} sent a redirect loop or an unusable redirect for {url}")
            self._check_redirect(host, url, target)
            visited.add(url)
            url = target
        raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, f"registry {host} redirected more than {MAX_REDIRECTS} "
                                                        f"times for {url}")

    def _check_redirect(self, host: str, source: str, target: str) -> None:
        """Never from https to plain http, unless the target host is listed as insecure."""
        parsed = urlparse(target)
        if urlparse(source).scheme == "https" and parsed.scheme == "http" and parsed.netloc not in self.insecure:
            raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE,
                            f"registry {host} redirected {source} to plain http ({target}); refused because "
                            f"{parsed.netloc} is not listed as insecure")

    def _plain_http_allowed(self, url: str) -> bool:
        parsed = urlparse(url)
        return parsed.scheme == "https" or parsed.netloc in self.insecure

    # --- auth ----------------------------------------------------------------------------------------

    def _auth_header(self, host: str, scope: str, credentials: Credentials | None) -> dict[str, str]:
        identity = identity_of(credentials)
        with self._realms_lock:
            realm, service = self._realms.get(host, ("", ""))
        if realm:
            token = self.tokens.get(TokenKey(host, realm, service, scope, identity))
            if token:
                return {"Authorization": f"Bearer {token}"}
        basic = self.tokens.get(TokenKey(host, "", "", "basic", identity))
        return {"Authorization": f"Basic {basic}"} if basic else {}

    def _authenticate(self, host: str, scope: str, response: Response, deadline: float,
                      credentials: Credentials | None) -> bool:
        """Answer a 401 challenge; True when a retry with new credentials makes sense."""
        challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        if challenge is None:
            return False
        if challenge.scheme == "basic":
            if credentials is None or not credentials.username:
                return False
            pair = f"{credentials.username}:{credentials.password}".encode()
            self.tokens.put(TokenKey(host, "", "", "basic", identity_of(credentials)), base64.b64encode(pair).decode(),
                            3600)
            return True
        token, expires_in = self._fetch_token(host, scope, challenge, deadline, credentials)
        realm, service = challenge.params.get("realm", ""), challenge.params.get("service", "")
        with self._realms_lock:
            self._realms[host] = (realm, service)
        self.tokens.put(TokenKey(host, realm, service, scope, identity_of(credentials)), token, expires_in)
        return True

    def _fetch_token(self, host: str, scope: str, challenge: Challenge, deadline: float,
                     credentials: Credentials | None) -> tuple[str, float]:
        realm = challenge.params.get("realm", "")
        if len(realm) + len(challenge.params.get("service", "")) > MAX_CHALLENGE_CHARS:
            raise ItemError(ErrorCode.UNAUTHORIZED, f"registry {host} sent a Bearer challenge whose realm and service "
                                                    f"are over {MAX_CHALLENGE_CHARS} characters")
        if urlparse(realm).scheme not in ("http", "https"):
            raise ItemError(ErrorCode.UNAUTHORIZED, f"registry {host} sent a Bearer challenge without a usable realm")
        params = {"scope": challenge.params.get("scope", scope)}
        if challenge.params.get("service"):
            params["service"] = challenge.params["service"]
        has_secret = bool(credentials and (credentials.identity_token or credentials.username))
        realm_netloc = urlparse(realm).netloc
        if has_secret and not self.credentials.realm_allowed(host, urlparse(self.base_url(host)).netloc,
                                                             realm_netloc):
            raise ItemError(ErrorCode.UNAUTHORIZED,
                            f"registry {host} named the token realm {realm_netloc}; its credentials go only to "
                            f"{host} or a realm host listed in the store's auth.tokenRealms")
        if has_secret and not self._plain_http_allowed(realm):
            raise ItemError(ErrorCode.UNAUTHORIZED,
                            f"registry {host} sent a token realm over plain http ({realm}); credentials are "
                            f"not sent there unless {urlparse(realm).netloc} is listed as insecure")
        what = f"token service for {host}"
        try:
            if credentials and credentials.identity_token:
                form = {**params, "grant_type": "refresh_token", "client_id": USER_AGENT,
                        "refresh_token": credentials.identity_token}
                raw = self.outbound.fetch("POST", realm, deadline, MAX_TOKEN_BYTES, what=what, data=form)
            else:
                auth = (credentials.username, credentials.password) if credentials and credentials.username else None
                separator = "&" if "?" in realm else "?"
                raw = self.outbound.fetch("GET", f"{realm}{separator}{urlencode(params)}", deadline,
                                          MAX_TOKEN_BYTES, what=what, auth=auth)
        except FetchFailed as exc:
            raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, f"token service {realm}: {exc.message}") from None
        if raw.status in (401, 403):
            raise ItemError(ErrorCode.UNAUTHORIZED, f"token service for {host} refused the credentials "
                                                    f"({raw.status})")
        if raw.status != 200:
            raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, f"token service for {host} answered {raw.status}")
        try:
            data = json.loads(raw.body)
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise ItemError(ErrorCode.REGISTRY_UNAVAILABLE, f"token service for {host} sent no token")
        expires_in = data.get("expires_in", 60)
        return token, float(expires_in) if isinstance(expires_in, int | float) else 60.0

    # --- retries and errors --------------------------------------------------------------------------

    def _backoff(self, attempt: int, response: Response, deadline: float) -> bool:
        """Sleep before a retry (Retry-After when given); False when the deadline leaves no room."""
        delay = min(0.1 * 2 ** (attempt - 1), 2.0) * (1 + random.random() / 2)
        asked = retry_after_seconds(response.headers.get("Retry-After", ""), time.time())
        if asked is not None:
            delay = asked
        # Whatever the registry asks, the job's deadline wins: a wait that would outlive it is not started.
        if time.monotonic() + delay >= deadline:
            return False
        time.sleep(delay)
        return True

    def _error(self, response: Response, host: str, path: str) -> ItemError:
        message = _registry_message(response.body)
        detail = f": {message}" if message else ""
        if response.status == -1:
            return ItemError(ErrorCode.REGISTRY_UNAVAILABLE, response.url)  # "cannot reach registry …: why"
        if response.status == 404:
            return ItemError(ErrorCode.NOT_FOUND, f"{host}/{path} not found{detail}")
        if response.status in (401, 403):
            return ItemError(ErrorCode.UNAUTHORIZED, f"registry {host} denied access to {path} "
                                                     f"({response.status}){detail}")
        return ItemError(ErrorCode.REGISTRY_UNAVAILABLE, f"registry {host} answered {response.status} for "
                                                         f"{path}{detail}")


def _registry_message(body: bytes) -> str:
    """The first error message of a distribution-spec error body, if there is one."""
    try:
        errors = json.loads(body).get("errors") or []
        first = errors[0]
        return f"{first.get('code', '')} {first.get('message', '')}".strip()[:200]
    except (ValueError, AttributeError, IndexError, TypeError):
        return ""
