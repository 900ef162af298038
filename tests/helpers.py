"""Shared test plumbing: free ports, a real `sigwarden serve` process, config files."""

from __future__ import annotations

import itertools
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import regorus
import yaml
from asn1crypto import core as asn1_core
from asn1crypto import parser as asn1_parser
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from provider import catalog
from provider.config import build_config
from provider.devkit.pki import Issued, issue, make_ca
from provider.engine import Engine
from provider.facts import facts_schema

GATEKEEPER_NAME = "gatekeeper-webhook-service.gatekeeper-system.svc"


# Test servers listen below the kernel's ephemeral range (32768-60999 by default). A port the kernel handed
# out for binding to port 0 may be taken as the local port of some client connection before the server binds
# it; a port below that range is only ever taken by a server this process started.
_PORTS = itertools.count(20000 + random.randrange(0, 10000, 16))


def free_port(address: str = "127.0.0.1") -> int:
    """A port no socket on `address` holds now, and one this process has not handed out before."""
    for port in _PORTS:
        with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                continue
            return port
    raise AssertionError("unreachable: the port counter is endless")


def write_yaml(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class ProviderPKI:
    """A server CA and cert, a client CA with a Gatekeeper-like client cert, and a stranger CA + cert."""

    directory: Path
    ca: Issued
    server: Issued
    client_ca: Issued
    client: Issued
    stranger: Issued

    @classmethod
    def create(cls, directory: Path) -> ProviderPKI:
        ca = make_ca("sigwarden server CA")
        client_ca = make_ca("gatekeeper CA")
        stranger_ca = make_ca("stranger CA")
        pki = cls(directory, ca, issue(ca, "sigwarden.sigwarden-system.svc", ("127.0.0.1", "localhost"),
                                       server=True),
                  client_ca, issue(client_ca, GATEKEEPER_NAME, (GATEKEEPER_NAME,), client=True),
                  issue(stranger_ca, GATEKEEPER_NAME, (GATEKEEPER_NAME,), client=True))
        ca.write(directory, "ca")
        pki.server.write(directory, "server")
        client_ca.write(directory, "client-ca")
        pki.client.write(directory, "client")
        pki.stranger.write(directory, "stranger")
        return pki

    def path(self, name: str) -> str:
        return str(self.directory / name)

    @property
    def client_pair(self) -> tuple[str, str]:
        return self.path("client.crt"), self.path("client.key")


def provider_request(keys: list[Any], api_version: str = "externaldata.gatekeeper.sh/v1beta1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "ProviderRequest", "request": {"keys": keys}}


def metric_value(text: str, name: str, labels: dict[str, str] | None = None) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in (labels or {}).items()):
                return sample.value
    return 0.0


def drip_status_line(out: Any, interval: float = 0.2) -> None:
    """Send an HTTP status line (ten times over) one byte every `interval`: a server too slow to ever answer."""
    for byte in b"HTTP/1.1 200 OK\r\n" * 10:
        time.sleep(interval)
        try:
            out.write(bytes([byte]))
            out.flush()
        except OSError:
            return


def child_pids(parent: int) -> set[int]:
    """The live (not zombie) processes whose parent is `parent`, e.g. gunicorn's workers."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError, ValueError):
            continue  # the process ended while being read
        if int(ppid) == parent and state != "Z":
            children.add(int(stat.parent.name))
    return children


VECTORS = Path(__file__).resolve().parent / "vectors"


class ManualClock:
    """A clock (for `clock=` parameters) that moves only when the test moves it: `clock.now += seconds`."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll `check` until it holds; fail naming `what` when it does not within `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def facts_from(engine: Engine, image: str) -> dict[str, Any]:
    """The facts the engine answers for one image (schema-checked); the engine is shut down afterwards.

    A generous deadline: the facts are under test here, not the request deadline (1.5 s by default), which a
    machine busy with other tests could make the answer miss."""
    try:
        item = engine.verify([image], "t", deadline=time.monotonic() + 30)[0]
    finally:
        engine.shutdown()
    assert not item.error, item.error
    jsonschema.validate(item.value, facts_schema())
    return item.value


def facts_for(tmp_path: Path, config: dict[str, Any], image: str) -> dict[str, Any]:
    """The facts for one image under `config` (written to tmp_path/config.yaml, so relative paths work)."""
    return facts_from(Engine(build_config(config, write_yaml(tmp_path / "config.yaml", config))), image)


def rego_library() -> regorus.Engine:
    """A regorus engine holding the shipped Rego library (every `lib.sigwarden.*` package), as Gatekeeper runs it."""
    engine = regorus.Engine()
    engine.set_rego_v0(True)
    for lib in sorted(catalog.LIB.glob("*.rego")):
        engine.add_policy(lib.name, lib.read_text())
    return engine


def resigned(cert: x509.Certificate, issuer_key: Any, old: bytes, new: bytes) -> x509.Certificate:
    """`cert` with `old` replaced by `new` (of the same length) in its TBSCertificate, signed again by
    `issuer_key` (ECDSA with SHA-256): a certificate its CA really issued, with a field cryptography's builder
    refuses to write (a negative serial, a name attribute of the wrong type)."""
    assert len(old) == len(new) and isinstance(issuer_key, ec.EllipticCurvePrivateKey)
    der = cert.public_bytes(Encoding.DER)
    outer = asn1_parser.parse(der)
    tbs = asn1_parser.parse(outer[4])
    tbs_der = tbs[3] + tbs[4]
    assert tbs_der.count(old) == 1, "the bytes to replace must appear once in the TBSCertificate"
    tbs_der = tbs_der.replace(old, new)
    algorithm = asn1_parser.parse(outer[4][len(tbs[3] + tbs[4]):])
    signature = issuer_key.sign(tbs_der, ec.ECDSA(hashes.SHA256()))
    body = tbs_der + algorithm[3] + algorithm[4] + asn1_core.OctetBitString(signature).dump()
    return x509.load_der_x509_certificate(asn1_parser.emit(0, 1, 16, body))  # universal, constructed SEQUENCE


def with_negative_serial(cert: x509.Certificate, issuer_key: Any) -> x509.Certificate:
    """`cert` with its serial number negated, issued again by `issuer_key` (Go's crypto/x509 refuses it)."""
    return resigned(cert, issuer_key, *negative_serial(cert))


def negative_serial(cert: x509.Certificate) -> tuple[bytes, bytes]:
    """The (old, new) DER of `cert`'s serial number with its sign bit set."""
    serial = asn1_core.Integer(cert.serial_number).dump()
    return serial, serial[:2] + bytes([serial[2] | 0x80]) + serial[3:]
