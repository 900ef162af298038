"""Trust material kept in cloud key stores: public keys by cosign's KMS URIs (the `--key` of `cosign verify`)
and certificate chains from Azure Key Vault and Alibaba Cloud KMS, each fetched with its cloud's own SDK or
documented REST API over the egress-checked transport, under a deadline.

    awskms://[ENDPOINT]/<key id | alias/NAME | key or alias ARN>      AWS KMS GetPublicKey (boto3)
    azurekms://<VAULT HOST>/<KEY>[/<VERSION>]                        Key Vault keys (azure-identity token)
    gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKeyVersions/V]    Cloud KMS (google-auth)
    hashivault://<KEY>                                               Vault transit (hvac; VAULT_ADDR, VAULT_TOKEN)

The URI forms follow sigstore/sigstore's pkg/signature/kms providers (aws/client.go, azure/client.go,
gcp/client.go, hashivault/client.go).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from provider.config import CloudAuth
from provider.errors import ItemError
from provider.stores.cloud import missing_extra
from provider.stores.cloud.transport import SdkTransport

KMS_SCHEMES = {"awskms": "aws", "azurekms": "azure", "gcpkms": "google", "hashivault": "vault"}
KEY_VAULT_API = "api-version=7.4"
KEY_VAULT_SCOPE = "https://vault.azure.net/.default"
CLOUD_KMS = "https://cloudkms.googleapis.com/v1"
_UUID = r"[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}"
# sigstore/sigstore pkg/signature/kms/aws/client.go: key id, multi-region key id, key ARN, alias, alias ARN.
AWS_KMS = re.compile(r"^awskms://([^/]*)/(" + _UUID + r"|mrk-[a-fA-F0-9]{32}|alias/[^/]+|"
                     r"arn:(?:aws|aws-us-gov|aws-cn):kms:([a-z0-9-]+):\d{12}:(?:key/(?:" + _UUID +
                     r"|mrk-[a-fA-F0-9]{32})|alias/[^/]+))$")
AZURE_KMS = re.compile(r"^azurekms://([^/]+)/([^/]+)(?:/([^/]+))?$")
GCP_KMS = re.compile(r"^gcpkms://(projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+"
                     r"(?:/cryptoKeyVersions/[^/]+)?)$")
VAULT_KMS = re.compile(r"^hashivault://([\w\-.]+)$")
# A region id goes into the KMS endpoint's host name (kms[-vpc].<region>.aliyuncs.com): letters, digits, dashes.
ALIBABA_REGION = re.compile(r"^[a-z]{2,}(?:-[a-z0-9]+)+$")


class TrustFetchError(ValueError):
    """Trust material that cannot be fetched; the message is one line naming the reference."""


def kms_problem(uri: str) -> str:
    """Empty when `uri` is a cosign KMS URI sigwarden reads (and its SDK is installed); else why not."""
    scheme = uri.split("://", 1)[0]
    if scheme not in KMS_SCHEMES:
        return f"{uri!r} is not a KMS URI (awskms://, azurekms://, gcpkms://, hashivault://)"
    pattern = {"awskms": AWS_KMS, "azurekms": AZURE_KMS, "gcpkms": GCP_KMS, "hashivault": VAULT_KMS}[scheme]
    if not pattern.match(uri):
        return f"{uri!r} is not a valid {scheme} URI"
    if scheme == "azurekms" and not _azure_vault_host(AZURE_KMS.match(uri).group(1)):  # type: ignore[union-attr]
        return f"{uri!r}: the vault must be a Key Vault host (*.vault.azure.net, .azure.cn, .usgovcloudapi.net)"
    extra = KMS_SCHEMES[scheme]
    if extra == "vault":
        try:
            import importlib.util

            present = importlib.util.find_spec("hvac") is not None
        except (ImportError, ValueError):
            present = False
        return "" if present else "hashivault:// needs the hvac package, which is not installed: " \
                                  "pip install 'sigwarden[vault]'"
    return missing_extra(extra)


def _azure_vault_host(host: str) -> bool:
    return host.lower().endswith((".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net"))


@dataclass
class KeyStores:
    """Fetches trust material through one transport (created lazily per cloud)."""

    transport: SdkTransport
    _alibaba: Any = field(default=None, repr=False)  # one RRSA identity: its STS credentials are reused

    def public_key_pem(self, uri: str, deadline: float) -> bytes:
        problem = kms_problem(uri)
        if problem:
            raise TrustFetchError(problem)
        try:
            with self.transport.within(deadline):
                scheme = uri.split("://", 1)[0]
                if scheme == "awskms":
                    return self._aws(uri)
                if scheme == "azurekms":
                    return self._azure_key(uri, deadline)
                if scheme == "gcpkms":
                    return self._gcp(uri, deadline)
                return self._vault(uri)
        except TrustFetchError:
            raise
        except ItemError as exc:
            raise TrustFetchError(f"{uri}: {exc.message}") from None
        except Exception as exc:  # each SDK has its own error family; one line, never a traceback
            raise TrustFetchError(f"{uri}: {_one_line(exc)}") from None

    # --- AWS KMS -------------------------------------------------------------------------------------

    def _aws(self, uri: str) -> bytes:
        from provider.stores.cloud.aws import AwsIdentity

        found = AWS_KMS.match(uri)
        assert found is not None
        endpoint, key_id, region = found.group(1), found.group(2), found.group(3)
        identity = AwsIdentity(CloudAuth("aws"), self.transport)
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not region:
            raise TrustFetchError(f"{uri}: no region: use a key ARN, or set AWS_REGION")
        client = identity.session.create_client("kms", region_name=region, config=identity._config,
                                                endpoint_url=f"https://{endpoint}" if endpoint else None)
        answer = client.get_public_key(KeyId=key_id)
        return _spki_pem(answer["PublicKey"], uri)

    # --- Azure Key Vault -------------------------------------------------------------------------------

    def azure_token(self, deadline: float) -> str:
        from azure.identity import WorkloadIdentityCredential

        from provider.stores.cloud.transport import azure_transport

        if not os.environ.get("AZURE_FEDERATED_TOKEN_FILE"):
            raise TrustFetchError("no Azure workload identity in this pod: AZURE_FEDERATED_TOKEN_FILE is not set")
        with self.transport.within(deadline):
            credential = WorkloadIdentityCredential(transport=azure_transport(self.transport), retry_total=0)
            return str(credential.get_token(KEY_VAULT_SCOPE).token)

    def _vault_get(self, vault: str, path: str, deadline: float, token: str) -> dict[str, Any]:
        url = f"https://{vault}/{path}?{KEY_VAULT_API}"
        answer = self.transport.send("GET", url, {"Authorization": f"Bearer {token}"}, None)
        if answer.status != 200:
            raise TrustFetchError(f"Key Vault {vault}: GET /{path} answered {answer.status}"
                                  f"{_vault_reason(answer.body)}")
        data = _json_object(answer.body)
        if data is None:
            raise TrustFetchError(f"Key Vault {vault}: GET /{path} did not answer a JSON object")
        return data

    def _azure_key(self, uri: str, deadline: float) -> bytes:
        found = AZURE_KMS.match(uri)
        assert found is not None
        vault, key, version = found.group(1), found.group(2), found.group(3) or ""
        data = self._vault_get(vault, f"keys/{quote(key)}" + (f"/{quote(version)}" if version else ""), deadline,
                               self.azure_token(deadline))
        return _jwk_pem(data.get("key"), uri)

    def key_vault_certificates(self, vault_uri: str, name: str, version: str, deadline: float) -> list[bytes]:
        """PEM chains of a Key Vault certificate, read through its secret (PEM or PKCS#12), as Ratify's
        azurekeyvault key management provider does: the pinned version, or the current one and, through a
        rotation, the previous version while its certificate is still valid (a deliberate difference: Ratify
        keeps only the current one)."""
        vault = urlparse(vault_uri).netloc or vault_uri
        if not _azure_vault_host(vault):
            raise TrustFetchError(f"{vault_uri!r} is not a Key Vault URI (https://NAME.vault.azure.net)")
        try:
            with self.transport.within(deadline):
                token = self.azure_token(deadline)
                versions = [version] if version else self._current_versions(vault, name, deadline, token)
                chains = []
                for wanted in versions:
                    secret = self._vault_get(vault, f"secrets/{quote(name)}/{quote(wanted)}", deadline, token)
                    chains.append(_secret_chain(secret, f"{vault}/certificates/{name}/{wanted}"))
                return chains
        except TrustFetchError:
            raise
        except ItemError as exc:
            raise TrustFetchError(f"Key Vault {vault} certificate {name}: {exc.message}") from None
        except Exception as exc:
            raise TrustFetchError(f"Key Vault {vault} certificate {name}: {_one_line(exc)}") from None

    def _current_versions(self, vault: str, name: str, deadline: float, token: str) -> list[str]:
        import time

        listing = self._vault_get(vault, f"certificates/{quote(name)}/versions", deadline, token)
        now = time.time()
        usable = []
        for item in listing.get("value") or []:
            attributes = item.get("attributes") or {}
            if not isinstance(item, dict) or attributes.get("enabled") is False:
                continue
            if isinstance(attributes.get("exp"), int | float) and attributes["exp"] <= now:
                continue  # expired: never trusted again
            usable.append((attributes.get("created") or 0, str(item.get("id", "")).rstrip("/").rsplit("/", 1)[-1]))
        if not usable:
            raise TrustFetchError(f"Key Vault {vault} certificate {name}: no enabled, unexpired version")
        usable.sort(reverse=True)
        return [v for _, v in usable[:2]]  # the current version and the one it replaced

    # --- Alibaba Cloud KMS ----------------------------------------------------------------------------

    def alibaba_kms_certificates(self, region: str, certificate_id: str, deadline: float) -> list[bytes]:
        """The PEM chain of a certificate kept in Alibaba Cloud KMS Certificates Manager (GetCertificate: the
        certificate, then its chain), read with the pod's RRSA identity. A certificate id names one certificate:
        a certificate replaced under the same id is followed at the next refresh."""
        from provider.stores.cloud.alibaba import AlibabaIdentity

        where = f"Alibaba Cloud KMS {region} certificate {certificate_id}"
        if not ALIBABA_REGION.match(region):
            raise TrustFetchError(f"{region!r} is not an Alibaba Cloud region id (such as cn-hangzhou)")
        if self._alibaba is None:
            self._alibaba = AlibabaIdentity(CloudAuth("alibaba"), self.transport)
        try:
            body = self._alibaba.kms_certificate(region, certificate_id, deadline)
        except ItemError as exc:
            raise TrustFetchError(exc.message) from None
        certificate, chain = body.get("Certificate"), body.get("CertificateChain")
        # An answer without the certificate is malformed, never read as its chain alone.
        if not isinstance(certificate, str) or "-----BEGIN" not in certificate:
            raise TrustFetchError(f"{where}: GetCertificate sent no certificate")
        text = certificate + ("\n" + chain if isinstance(chain, str) and "-----BEGIN" in chain else "")
        try:
            certs = x509.load_pem_x509_certificates(text.encode())
        except ValueError as exc:
            raise TrustFetchError(f"{where}: not a PEM certificate: {_one_line(exc)}") from None
        return [b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)]

    # --- Google Cloud KMS ------------------------------------------------------------------------------

    def _gcp(self, uri: str, deadline: float) -> bytes:
        from provider.stores.cloud.google import GoogleIdentity

        found = GCP_KMS.match(uri)
        assert found is not None
        name = found.group(1)
        identity = GoogleIdentity(CloudAuth("google"), self.transport)
        credentials = identity._load()
        if not credentials.valid:
            credentials.refresh(identity.request)
        headers = {"Authorization": f"Bearer {credentials.token}"}
        if "/cryptoKeyVersions/" not in name:
            # sigstore's gcp client: the newest enabled version of the key.
            listing = self._json(self.transport.send(
                "GET", f"{CLOUD_KMS}/{name}/cryptoKeyVersions?filter=state%3DENABLED", headers, None), uri)
            versions = [str(v.get("name", "")) for v in listing.get("cryptoKeyVersions") or []
                        if isinstance(v, dict) and v.get("state") == "ENABLED"]
            if not versions:
                raise TrustFetchError(f"{uri}: the key has no enabled version")
            name = max(versions, key=lambda v: int(v.rsplit("/", 1)[-1]) if v.rsplit("/", 1)[-1].isdigit() else -1)
        data = self._json(self.transport.send("GET", f"{CLOUD_KMS}/{name}/publicKey", headers, None), uri)
        pem = data.get("pem")
        if not isinstance(pem, str):
            raise TrustFetchError(f"{uri}: Cloud KMS sent no public key")
        return _spki_pem(serialization.load_pem_public_key(pem.encode()).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo), uri)

    # --- HashiCorp Vault transit -----------------------------------------------------------------------

    def _vault(self, uri: str) -> bytes:
        import hvac

        from provider.stores.cloud.transport import requests_session

        found = VAULT_KMS.match(uri)
        assert found is not None
        address, token = os.environ.get("VAULT_ADDR", ""), os.environ.get("VAULT_TOKEN", "")
        if not address or not token:
            raise TrustFetchError(f"{uri}: VAULT_ADDR and VAULT_TOKEN must be set, as for cosign")
        mount = os.environ.get("TRANSIT_SECRET_ENGINE_PATH", "transit")
        client = hvac.Client(url=address, token=token, session=requests_session(self.transport))
        answer = client.secrets.transit.read_key(name=found.group(1), mount_point=mount)
        data = answer.get("data") or {}
        keys = data.get("keys") or {}
        latest = keys.get(str(data.get("latest_version"))) or {}
        pem = latest.get("public_key") if isinstance(latest, dict) else None
        if not isinstance(pem, str) or not pem:
            raise TrustFetchError(f"{uri}: the transit key has no public key (is it an asymmetric key?)")
        return _spki_pem(serialization.load_pem_public_key(pem.encode()).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo), uri)

    @staticmethod
    def _json(answer: Any, uri: str) -> dict[str, Any]:
        if answer.status != 200:
            raise TrustFetchError(f"{uri}: the key service answered {answer.status}")
        data = _json_object(answer.body)
        if data is None:
            raise TrustFetchError(f"{uri}: the key service did not answer a JSON object")
        return data


def _json_object(body: bytes) -> dict[str, Any] | None:
    """The JSON object a key service answered, or None for anything else."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _spki_pem(der: bytes, uri: str) -> bytes:
    try:
        key = serialization.load_der_public_key(der)
    except ValueError as exc:
        raise TrustFetchError(f"{uri}: not a public key: {exc}") from None
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _b64url_int(value: object) -> int:
    text = str(value)
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def _jwk_pem(jwk: object, uri: str) -> bytes:
    """A Key Vault JSON web key (EC P-256/384/521 or RSA) as a PEM public key."""
    if not isinstance(jwk, dict):
        raise TrustFetchError(f"{uri}: Key Vault sent no key")
    try:
        kty = str(jwk.get("kty", "")).removesuffix("-HSM")
        if kty == "EC":
            curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}[str(jwk.get("crv"))]
            key: Any = ec.EllipticCurvePublicNumbers(_b64url_int(jwk["x"]), _b64url_int(jwk["y"]), curve).public_key()
        elif kty == "RSA":
            key = rsa.RSAPublicNumbers(_b64url_int(jwk["e"]), _b64url_int(jwk["n"])).public_key()
        else:
            raise TrustFetchError(f"{uri}: Key Vault key type {kty!r} cannot verify cosign signatures")
    except (KeyError, ValueError, binascii.Error) as exc:
        raise TrustFetchError(f"{uri}: Key Vault sent an unusable key: {exc}") from None
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _secret_chain(secret: dict[str, Any], where: str) -> bytes:
    """The certificate chain in a Key Vault certificate's secret: PEM text, or base64 PKCS#12 (no password)."""
    value, kind = secret.get("value"), str(secret.get("contentType", ""))
    if not isinstance(value, str):
        raise TrustFetchError(f"{where}: the secret has no value (the identity needs secrets/get)")
    try:
        if kind == "application/x-pkcs12" or "-----BEGIN" not in value:
            store = pkcs12.load_pkcs12(base64.b64decode(value), None)
            certs = ([store.cert.certificate] if store.cert else []) + [c.certificate for c in store.additional_certs]
        else:
            certs = x509.load_pem_x509_certificates(value.encode())
    except (ValueError, binascii.Error) as exc:
        raise TrustFetchError(f"{where}: not a PEM or PKCS#12 certificate: {_one_line(exc)}") from None
    if not certs:
        raise TrustFetchError(f"{where}: no certificate in the secret")
    # Only certificates leave this function: a private key in the secret is never kept.
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _vault_reason(body: bytes) -> str:
    try:
        error = json.loads(body).get("error") or {}
        text = f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except (ValueError, AttributeError):
        return ""
    return f" ({' '.join(text.split())[:200]})" if text else ""


def _one_line(exc: BaseException) -> str:
    return (" ".join(str(exc).split()) or type(exc).__name__)[:300]
