"""A Kubernetes API server stand-in for the in-pod jobs: real HTTPS on loopback, objects kept in memory.

It serves only what provider/kube uses (get, list with a label selector and `limit`/`continue` pages, across
namespaces too, create, update with resourceVersion conflicts, merge patch, server-side apply, delete, discovery of
constraint kinds), checks the bearer token, and enforces RBAC rules given in the shape of a rendered
Role/ClusterRole, so tests show the chart's rules suffice: a list of every namespace needs a cluster-wide rule,
and an apply that creates its object needs `create` besides `patch` (Kubernetes apiserver
endpoints/handlers/patch.go: an apply patch to a missing object is authorized as a create too).
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import BaseWSGIServer, make_server

from provider.devkit.pki import issue, make_ca


@dataclass(frozen=True)
class Target:
    """What a request touches, in RBAC terms."""

    group: str
    resource: str
    namespace: str | None
    name: str | None
    collection: str
    path: str


def parse_path(path: str) -> Target | None:
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 2:
        group, rest = "", parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 2 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 2:
        return None
    name = rest[1] if len(rest) == 2 else None
    collection = path if name is None else path.rsplit("/", 1)[0]
    return Target(group, rest[0], namespace, name, collection, path)


def _merge(target: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7386)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


@dataclass
class FakeKubeAPI:
    """State and rules; `start()` serves it over HTTPS on 127.0.0.1."""

    directory: Path
    token: str = "sigwarden-test-token"
    rules: list[tuple[str | None, dict[str, Any]]] | None = None  # (namespace or None for cluster-wide, rule)
    constraint_kinds: dict[str, str] = field(default_factory=dict)  # kind -> plural served by discovery
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[str, str]] = field(default_factory=list)
    pages: list[int] = field(default_factory=list)  # items per list page served
    before: Callable[[str, str], None] | None = None  # called with (method, path) before each request is served
    _versions: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, path: str, obj: dict[str, Any]) -> None:
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {})["resourceVersion"] = str(next(self._versions))
        self.objects[path] = obj

    def allowed(self, target: Target, verb: str) -> bool:
        if self.rules is None:
            return True
        for namespace, rule in self.rules:
            if namespace is not None and namespace != target.namespace:
                continue
            resources = rule.get("resources", [])
            if (target.group in rule.get("apiGroups", []) and (target.resource in resources or "*" in resources)
                    and verb in rule.get("verbs", [])
                    and (not rule.get("resourceNames") or target.name in rule["resourceNames"])):
                return True
        return False

    def app(self) -> Flask:
        app = Flask("fake-kube-api")

        def reply(status: int, body: Any) -> Response:
            return Response(json.dumps(body), status=status, mimetype="application/json")

        def status(code: int, message: str) -> Response:
            return reply(code, {"kind": "Status", "code": code, "message": message})

        @app.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
        def handle(path: str) -> Response:
            path = "/" + path
            self.log.append((request.method, path))
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return status(401, "Unauthorized")
            if path == "/apis/constraints.gatekeeper.sh/v1beta1":
                return reply(200, {"kind": "APIResourceList", "groupVersion": "constraints.gatekeeper.sh/v1beta1",
                                   "resources": [{"name": p, "kind": k, "namespaced": False}
                                                 for k, p in self.constraint_kinds.items()]})
            target = parse_path(path)
            if target is None:
                return status(404, f"no such path {path}")
            verb = {"GET": "get" if target.name else "list", "POST": "create", "PUT": "update",
                    "PATCH": "patch", "DELETE": "delete"}[request.method]
            if not self.allowed(target, verb):
                return status(403, f"forbidden: {verb} {target.resource} {target.name or ''}")
            creates = (verb == "patch" and target.path not in self.objects
                       and (request.content_type or "").startswith("application/apply-patch+yaml"))
            if creates and not self.allowed(target, "create"):
                return status(403, f"forbidden: create {target.resource} {target.name or ''} (apply of a new object)")
            with self._lock:
                if self.before is not None:
                    self.before(request.method, path)
                return self._serve(target, verb, reply, status)

        return app

    def _serve(self, target: Target, verb: str, reply: Any, status: Any) -> Response:
        current = self.objects.get(target.path)
        if verb == "list":
            selector = request.args.get("labelSelector", "")
            wanted = dict(part.split("=", 1) for part in selector.split(",") if part)
            # Without a namespace in the path, a namespaced resource is listed across every namespace.
            prefix = target.path[:-len(target.resource)].rstrip("/")
            across = re.compile(re.escape(prefix) + r"/namespaces/[^/]+/" + re.escape(target.resource))
            items = [o for p, o in sorted(self.objects.items())
                     if (p.rsplit("/", 1)[0] == target.path
                         or (target.namespace is None and across.fullmatch(p.rsplit("/", 1)[0])))
                     and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]
            start = int(request.args.get("continue") or 0)
            limit = int(request.args.get("limit") or 0) or len(items) or 1
            page, rest = items[start:start + limit], items[start + limit:]
            self.pages.append(len(page))
            return reply(200, {"kind": f"{target.resource}List", "metadata": {"continue": str(start + limit)
                                                                              if rest else ""},
                               "items": [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")}
                                         for o in page]})
        if verb == "get":
            return reply(200, current) if current else status(404, f"{target.resource} {target.name} not found")
        if verb == "delete":
            if not current:
                return status(404, "not found")
            del self.objects[target.path]
            return reply(200, {"kind": "Status", "status": "Success"})
        body = request.get_json(force=True)
        if verb == "create":
            path = f"{target.path}/{body['metadata']['name']}"
            if path in self.objects:
                return status(409, "already exists")
            self.put(path, body)
            return reply(201, self.objects[path])
        if verb == "update":
            if not current:
                return status(404, "not found")
            if body.get("metadata", {}).get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return status(409, "the object has been modified")
            self.put(target.path, body)
            return reply(200, self.objects[target.path])
        kind = request.content_type or ""
        if kind.startswith("application/apply-patch+yaml"):
            if not request.args.get("fieldManager"):
                return status(400, "fieldManager is required for apply")
            merged = _merge(current or {}, body)
        elif kind.startswith("application/merge-patch+json"):
            if not current:
                return status(404, "not found")
            merged = _merge(current, body)
        else:
            return status(415, f"unsupported patch type {kind}")
        self.put(target.path, merged)
        return reply(200, self.objects[target.path])

    def start(self) -> KubeAPIServer:
        ca = make_ca("fake kube-apiserver CA")
        leaf = issue(ca, "kubernetes", ("127.0.0.1", "localhost"), server=True)
        cert_path, key_path = leaf.write(self.directory, "apiserver")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert_path), str(key_path))
        server = make_server("127.0.0.1", 0, self.app(), threaded=True, ssl_context=context)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        account = self.directory / "serviceaccount"
        account.mkdir(parents=True, exist_ok=True)
        (account / "token").write_text(self.token)
        (account / "ca.crt").write_bytes(ca.cert_pem)
        return KubeAPIServer(self, server, f"https://127.0.0.1:{server.server_port}", account)


@dataclass
class KubeAPIServer:
    api: FakeKubeAPI
    server: BaseWSGIServer
    url: str
    account_dir: Path

    def stop(self) -> None:
        self.server.shutdown()
