"""A real `docker-registry` (Debian's distribution 2.8) on loopback, and a pusher that mirrors OCI layouts into it."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import bcrypt
import requests
import yaml

from provider.stores.base import INDEX_MEDIA_TYPES
from tests.helpers import ProviderPKI, free_port


class RegistryServer:
    """docker-registry with filesystem storage; optional TLS and htpasswd Basic auth."""

    def __init__(self, directory: Path, pki: ProviderPKI | None = None,
                 users: dict[str, str] | None = None, token_realm: str = "", name: str = "",
                 address: str = "127.0.0.1", port: int = 0, token_service: str = "registry-b",
                 token_signer: Path | None = None) -> None:
        """`name`, `address` and `port` place it inside a test world where `name` resolves to `address`."""
        if shutil.which("docker-registry") is None:
            raise RuntimeError("docker-registry is not installed: run `make test` (it installs it as root)")
        self.directory = directory
        self.port = port or free_port()
        self.name = name
        self.address = address
        self.tls = pki is not None
        self.users = users or {}
        directory.mkdir(parents=True, exist_ok=True)
        config: dict = {"version": 0.1, "log": {"level": "error"},
                        "storage": {"filesystem": {"rootdirectory": str(directory / "data")},
                                    "delete": {"enabled": True}},
                        "http": {"addr": f"{address}:{self.port}", "secret": "test-secret"}}
        if pki is not None:
            config["http"]["tls"] = {"certificate": pki.path("server.crt"), "key": pki.path("server.key")}
            self.verify: str | bool = pki.path("ca.crt")
        else:
            self.verify = False
        if users:
            htpasswd = directory / "htpasswd"
            htpasswd.write_text("".join(f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(5)).decode()}\n"
                                        for u, p in users.items()))
            config["auth"] = {"htpasswd": {"realm": "sigwarden-test", "path": str(htpasswd)}}
        if token_realm:
            # Bearer token auth: every request without a token is answered 401 naming `token_realm`.
            from provider.devkit.pki import make_ca

            bundle = token_signer or directory / "token-signer.pem"
            if token_signer is None:
                bundle.write_bytes(make_ca("token signer").cert_pem)
            config["auth"] = {"token": {"realm": token_realm, "service": token_service, "issuer": "sigwarden-test",
                                        "rootcertbundle": str(bundle)}}
        (directory / "config.yml").write_text(yaml.safe_dump(config))
        self.log = (directory / "registry.log").open("wb")
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def host(self) -> str:
        if self.name:
            return self.name if self.port == 443 else f"{self.name}:{self.port}"
        return f"{self.address}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def start(self) -> None:
        self.process = subprocess.Popen(["docker-registry", "serve", str(self.directory / "config.yml")],
                                        stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(200):
            try:
                requests.get(f"{self.url}/v2/", verify=self.verify, timeout=1)
                return
            except requests.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not start: {(self.directory / 'registry.log').read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def requests_from(self, user_agent: str) -> list[str]:
        """`METHOD path` of every request this registry answered to `user_agent`, from its access log."""
        self.log.flush()
        lines = (self.directory / "registry.log").read_text(errors="replace").splitlines()
        return [line.split('"')[1].rsplit(" ", 1)[0] for line in lines
                if line.startswith("127.0.0.1 - ") and line.count('"') >= 6 and line.split('"')[5] == user_agent]

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = self.verify
        if self.users:
            session.auth = next(iter(self.users.items()))
        return session

    def push_layout(self, layout: Path, repository: str, session: requests.Session | None = None) -> None:
        """Push every blob and manifest of an OCI layout (indexes after the manifests they list)."""
        session = session or self.session()
        index = json.loads((layout / "index.json").read_text())
        manifest_digests = {m["digest"] for m in index["manifests"]}
        for blob in (layout / "blobs" / "sha256").iterdir():
            digest = f"sha256:{blob.name}"
            if digest not in manifest_digests:
                self.push_blob(session, repository, blob.read_bytes(), digest)
        entries = sorted(index["manifests"], key=lambda m: m.get("mediaType") in INDEX_MEDIA_TYPES)
        for entry in entries:
            data = (layout / "blobs" / "sha256" / entry["digest"].split(":", 1)[1]).read_bytes()
            media_type = json.loads(data).get("mediaType") or entry["mediaType"]
            tag = (entry.get("annotations") or {}).get("org.opencontainers.image.ref.name")
            self.push_manifest(session, repository, tag or entry["digest"], data, media_type)

    def push_blob(self, session: requests.Session, repository: str, data: bytes, digest: str) -> None:
        started = session.post(f"{self.url}/v2/{repository}/blobs/uploads/", timeout=10)
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        location = location if location.startswith("http") else self.url + location
        separator = "&" if "?" in location else "?"
        done = session.put(f"{location}{separator}digest={digest}", data=data,
                           headers={"Content-Type": "application/octet-stream"}, timeout=10)
        assert done.status_code == 201, done.text

    def push_manifest(self, session: requests.Session, repository: str, reference: str, data: bytes,
                      media_type: str) -> None:
        response = session.put(f"{self.url}/v2/{repository}/manifests/{reference}", data=data,
                               headers={"Content-Type": media_type}, timeout=10)
        assert response.status_code == 201, f"{reference}: {response.status_code} {response.text}"
