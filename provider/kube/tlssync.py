"""Keep the serving certificate, the Providers' caBundle and Gatekeeper's client CA current, from inside the pod.

- The serving CA and certificate live in one Secret that the replicas share; whoever finds it missing or due
  for renewal writes it, and a lost race (HTTP 409) means reading the winner's copy.
- Each named Provider's `spec.caBundle` is patched to the CA bundle when it differs (the chart renders a
  placeholder CA nobody holds a key for, so Gatekeeper fails closed until this runs).
- Gatekeeper's client CA is the `caBundle` of its ValidatingWebhookConfiguration: Gatekeeper presents its
  webhook certificate as its client certificate. Its webhook Secret is never read (it holds private keys).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from provider.kube import certs
from provider.kube.client import KubeClient, KubeError, provider_path, secret_path, webhook_configuration_path

log = logging.getLogger("sigwarden.kube")


class SyncError(RuntimeError):
    """Something the operator must fix or wait for; the message says which."""


def write_if_changed(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Atomically replace `path` (rename in the same directory) when its content differs."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def publish(directory: Path, files: dict[str, tuple[bytes, int]]) -> bool:
    """Swap in a set of files at once, as Kubernetes does for Secret volumes.

    Each name is a symlink into `..data`, itself a symlink to a fresh versioned directory: one rename switches
    certificate, key and CA together. Returns False when the content is already current.
    """
    if all(_content(directory / name) == data for name, (data, _) in files.items()):
        return False
    directory.mkdir(parents=True, exist_ok=True)
    version = Path(tempfile.mkdtemp(dir=directory, prefix="..version-"))
    for name, (data, mode) in files.items():
        (version / name).write_bytes(data)
        os.chmod(version / name, mode)
    os.chmod(version, 0o755)
    _symlink(directory / "..data", version.name)
    for name in files:
        _symlink(directory / name, f"..data/{name}")
    for old in directory.glob("..version-*"):
        if old != version:
            for child in old.iterdir():
                child.unlink()
            old.rmdir()
    return True


def _content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _symlink(path: Path, target: str) -> None:
    """Point `path` at `target`, replacing whatever is there in one rename."""
    temporary = path.with_name(f"{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    os.symlink(target, temporary)
    os.replace(temporary, path)


@dataclass(frozen=True)
class ServingCertificate:
    """The shared TLS Secret and the files the server reads, plus the Providers that must trust it."""

    client: KubeClient
    namespace: str
    secret: str
    hosts: tuple[str, ...]
    directory: Path
    providers: tuple[str, ...] = ()

    def sync(self) -> certs.ServingMaterial:
        """Make the Secret current, write the files, patch the Providers; returns what is served."""
        material = self._current_secret()
        files = {"tls.crt": (material.leaf.cert_pem, 0o644), "tls.key": (material.leaf.key_pem, 0o600),
                 "ca.crt": (material.ca_bundle, 0o644)}
        if publish(self.directory, files):
            log.info("serving certificate files written", extra={"directory": str(self.directory)})
        self.patch_providers(material.ca_bundle_b64)
        return material

    def _current_secret(self) -> certs.ServingMaterial:
        path = secret_path(self.namespace, self.secret)
        for _ in range(3):  # a 409 means another replica wrote first: read again and use theirs
            found = self.client.get(path)
            if found is None:
                material = certs.generate(self.hosts)
                body = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                        "metadata": {"name": self.secret, "namespace": self.namespace,
                                     "labels": {"app.kubernetes.io/name": "sigwarden",
                                                "app.kubernetes.io/component": "serving-certificate"}},
                        "data": material.secret_data()}
                if self._write("POST", secret_path(self.namespace), body):
                    log.info("serving CA and certificate created", extra={"secret": self.secret})
                    return material
                continue
            try:
                material = certs.from_secret(found.get("data") or {})
                reason = certs.renewal_reason(material, self.hosts)
            except ValueError as exc:
                material, reason = None, f"the Secret is unusable: {exc}"
            if not reason:
                assert material is not None
                return material
            renewed = certs.renew(material, self.hosts) if material else certs.generate(self.hosts)
            found["data"] = renewed.secret_data()
            if self._write("PUT", path, found):  # carries resourceVersion: optimistic concurrency
                log.info("serving certificate renewed", extra={"secret": self.secret, "reason": reason})
                return renewed
        raise SyncError(f"Secret {self.namespace}/{self.secret} kept changing under us; retrying later")

    def _write(self, method: str, path: str, body: dict[str, object]) -> bool:
        try:
            self.client.request(method, path, body)
        except KubeError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def patch_providers(self, ca_bundle_b64: str) -> list[str]:
        """Patch each Provider whose caBundle differs; returns the names patched. A missing one is logged."""
        patched = []
        for name in self.providers:
            provider = self.client.get(provider_path(name))
            if provider is None:
                log.warning("Provider not found; will patch it once it exists", extra={"provider": name})
                continue
            if (provider.get("spec") or {}).get("caBundle") != ca_bundle_b64:
                self.client.merge_patch(provider_path(name), {"spec": {"caBundle": ca_bundle_b64}})
                log.info("Provider caBundle updated", extra={"provider": name})
                patched.append(name)
        return patched


def webhook_ca_bundle(client: KubeClient, webhook_configuration: str) -> bytes:
    """The distinct CA certificates named by the webhooks of a ValidatingWebhookConfiguration, as PEM."""
    found = client.get(webhook_configuration_path(webhook_configuration))
    if found is None:
        raise SyncError(f"ValidatingWebhookConfiguration {webhook_configuration!r} not found: install Gatekeeper "
                        "first, or give the client CA in the chart's mtls.clientCA.pem")
    pems: list[bytes] = []
    for webhook in found.get("webhooks") or []:
        encoded = (webhook.get("clientConfig") or {}).get("caBundle")
        if not encoded:
            continue
        try:
            certificates = x509.load_pem_x509_certificates(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise SyncError(f"webhook {webhook.get('name')!r} in {webhook_configuration!r} has a caBundle that "
                            f"is not base64 PEM certificates: {exc}") from None
        for certificate in certificates:
            pem = certificate.public_bytes(certs.Encoding.PEM)
            if pem not in pems:
                pems.append(pem)
    if not pems:
        raise SyncError(f"ValidatingWebhookConfiguration {webhook_configuration!r} has no caBundle yet "
                        "(Gatekeeper fills it in when its webhook starts)")
    return b"".join(pems)


@dataclass(frozen=True)
class ClientCA:
    """Copies Gatekeeper's CA from its ValidatingWebhookConfiguration into the file the server trusts."""

    client: KubeClient
    webhook_configuration: str
    path: Path

    def sync(self) -> bool:
        """Returns True when the file changed (first copy or Gatekeeper rotated its CA)."""
        changed = write_if_changed(self.path, webhook_ca_bundle(self.client, self.webhook_configuration))
        if changed:
            log.info("client CA written from the webhook configuration",
                     extra={"webhookConfiguration": self.webhook_configuration})
        return changed
