"""A private world for cloud tests: a fresh network and mount namespace with only loopback, where cloud host
names resolve (through a bind-mounted hosts file) to loopback addresses served by stand-ins, and a test CA is
trusted through the standard CA-bundle variables. Nothing in the product knows it is being tested.

`@in_world` runs a test function again inside such a namespace (`unshare -nm`, or `unshare -rnm` when not
root): the outer run only checks that the inner one passed.
"""

from __future__ import annotations

import functools
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provider.devkit.pki import Issued, issue, make_ca

INSIDE = "SIGWARDEN_TEST_WORLD"
# Every cloud host name the tests use, each on its own loopback address (so each can listen on 443).
HOSTS = {
    "aws.emulator.example": "127.0.1.1",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com": "127.0.1.2",
    "999999999999.dkr.ecr.us-east-1.amazonaws.com": "127.0.1.3",
    "login.microsoftonline.com": "127.0.2.1",
    "myacr.azurecr.io": "127.0.2.2",
    "otheracr.azurecr.io": "127.0.2.3",
    "myvault.vault.azure.net": "127.0.2.4",
    "oauth2.googleapis.com": "127.0.3.1",
    "sts.googleapis.com": "127.0.3.2",
    "europe-docker.pkg.dev": "127.0.3.3",
    "metadata.google.internal": "127.0.3.4",
    "cloudkms.googleapis.com": "127.0.3.5",
    "sts.cn-hangzhou.aliyuncs.com": "127.0.4.1",
    "sts-vpc.cn-hangzhou.aliyuncs.com": "127.0.4.2",
    "cr.cn-hangzhou.aliyuncs.com": "127.0.4.3",
    "cr-vpc.cn-hangzhou.aliyuncs.com": "127.0.4.7",
    "myinstance-registry.cn-hangzhou.cr.aliyuncs.com": "127.0.4.4",
    "myinstance-registry-vpc.cn-hangzhou.cr.aliyuncs.com": "127.0.4.5",
    "kms.cn-hangzhou.aliyuncs.com": "127.0.4.6",
    "kms-vpc.cn-hangzhou.aliyuncs.com": "127.0.4.8",
    "vault.internal.example": "127.0.5.1",
    "kubernetes.default.svc": "127.0.6.1",
}


def address(name: str) -> str:
    return HOSTS[name]


def in_world(test: Callable[..., Any]) -> Callable[..., Any]:
    """Run `test` inside a private network and mount namespace with the cloud host names on loopback."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> Any:
        if os.environ.get(INSIDE) == "1":
            return test(*args, **kwargs)
        nodeid = os.environ["PYTEST_CURRENT_TEST"].rsplit(" ", 1)[0]
        _run_inside(nodeid)
        return None

    return run


def _run_inside(nodeid: str) -> None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("unshare and ip are needed to make the test world's network namespace")
    world = Path(os.environ.get("TMPDIR", "/tmp")) / f"sigwarden-world-{os.getpid()}-{threading.get_ident()}"
    world.mkdir(parents=True, exist_ok=True)
    hosts = world / "hosts"
    hosts.write_text("127.0.0.1 localhost\n::1 localhost\n" + "".join(f"{a} {n}\n" for n, a in HOSTS.items()))
    resolv = world / "resolv.conf"
    resolv.write_text("# no name servers: every name resolves from the hosts file or not at all\n")
    flags = "-nm" if os.getuid() == 0 else "-rnm"
    script = ('ip link set lo up && mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf '
              '&& shift 2 && exec "$@"')
    command = ["unshare", flags, "--", "bash", "-c", script, "world", str(hosts), str(resolv),
               sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:randomly", nodeid]
    env = {**os.environ, INSIDE: "1"}
    env.pop("PYTEST_CURRENT_TEST", None)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    shutil.rmtree(world, ignore_errors=True)
    if done.returncode == 0 and " passed" in done.stdout:
        return
    if "Operation not permitted" in done.stderr and "unshare" in done.stderr:
        pytest.skip("this machine does not allow network namespaces: " + done.stderr.strip().splitlines()[-1])
    failures = "\n".join(line for line in done.stdout.splitlines() if line.startswith("E "))
    pytest.fail(f"inside the test world:\n{failures[:4000]}\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}",
                pytrace=False)


@dataclass
class WorldCA:
    """The test CA and server certificates for cloud host names, trusted via REQUESTS_CA_BUNDLE/SSL_CERT_FILE."""

    directory: Path
    ca: Issued

    @classmethod
    def create(cls, directory: Path) -> WorldCA:
        directory.mkdir(parents=True, exist_ok=True)
        world = cls(directory, make_ca("cloud world CA"))
        world.ca.write(directory, "ca")
        return world

    @property
    def bundle(self) -> str:
        return str(self.directory / "ca.crt")

    def trust(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", self.bundle)
        monkeypatch.setenv("SSL_CERT_FILE", self.bundle)

    def server(self, name: str) -> ServerCert:
        cert, key = issue(self.ca, name, (name,), server=True).write(self.directory, name)
        return ServerCert(str(cert), str(key), self.bundle)

    def context(self, name: str) -> ssl.SSLContext:
        files = self.server(name)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(files.cert, files.key)
        return context


@dataclass(frozen=True)
class ServerCert:
    cert: str
    key: str
    ca: str

    def path(self, name: str) -> str:
        """What tests.registry.RegistryServer asks a PKI for."""
        return {"server.crt": self.cert, "server.key": self.key, "ca.crt": self.ca}[name]


def serve_wsgi(app: Any, name: str, world: WorldCA) -> Any:
    """Serve a WSGI app over TLS on `name`'s loopback address, port 443, in a daemon thread."""
    from werkzeug.serving import make_server

    server = make_server(address(name), 443, app, threaded=True, ssl_context=world.context(name))
    threading.Thread(target=server.serve_forever, name=f"world-{name}", daemon=True).start()
    return server


def serve_plain(app: Any, name: str, port: int = 80) -> Any:
    """Serve a WSGI app over plain http on `name`'s loopback address (a cloud metadata server has no TLS)."""
    return serve_plain_at(app, address(name), port)


def serve_plain_at(app: Any, ip: str, port: int = 80) -> Any:
    """Serve a WSGI app over plain http on `ip` (added to this world's loopback by the test when not 127/8)."""
    from werkzeug.serving import make_server

    server = make_server(ip, port, app, threaded=True)
    threading.Thread(target=server.serve_forever, name=f"world-{ip}", daemon=True).start()
    return server


def pod_service_account(token: str, ca_pem: bytes) -> Path:
    """Put a service account token and CA where a pod has them (/var/run/secrets/kubernetes.io/serviceaccount),
    on a tmpfs over /run that only this world's mount namespace sees."""
    assert os.environ.get(INSIDE) == "1", "only inside the test world"
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
    account = Path("/var/run/secrets/kubernetes.io/serviceaccount")
    account.mkdir(parents=True)
    (account / "token").write_text(token)
    (account / "ca.crt").write_bytes(ca_pem)
    return account
