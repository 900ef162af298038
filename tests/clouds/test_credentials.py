"""Cloud registry credentials without a cloud: the config rules (exact hosts of the cloud's registry service,
the SDK extra installed), the ECR host names, and the cache that keeps a credential until shortly before its
expiry, refreshing it in the background."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from provider.cli import main
from provider.config import CloudAuth, ConfigError, Credentials, RegistryAuth, build_config
from provider.errors import ItemError
from provider.metrics import Metrics
from provider.stores.auth import CredentialStore
from provider.stores.cloud import missing_extra
from provider.stores.cloud.aws import parse_ecr_host
from provider.stores.cloud.hosts import host_problem, parse_alibaba_host
from provider.stores.cloud.issued import CloudIdentityError, CredentialCache, Issued
from tests.helpers import ManualClock, metric_value, wait_for, write_yaml

ROOT = Path(__file__).resolve().parents[2]


def store_config(tmp_path: Path, store: dict[str, object]) -> dict[str, object]:
    return {"stores": [{"type": "registry", **store}], "authorities": []}


def load(tmp_path: Path, store: dict[str, object]) -> object:
    data = store_config(tmp_path, store)
    return build_config(data, write_yaml(tmp_path / "config.yaml", data))


# --- config ----------------------------------------------------------------------------------------------

def test_cloud_auth_loads_for_the_hosts_it_names(tmp_path: Path) -> None:
    config = load(tmp_path, {"match": ["123456789012.dkr.ecr.us-east-1.amazonaws.com/*"],
                             "auth": {"cloud": {"provider": "aws"}}})
    assert config.stores[0].auth.cloud == CloudAuth(provider="aws")  # type: ignore[attr-defined]


@pytest.mark.parametrize(("store", "field", "reason"), [
    # A wildcard host would send the token wherever a Pod spec points.
    ({"match": ["*"], "auth": {"cloud": {"provider": "aws"}}}, "stores[0].match[0]", "does not name a registry host"),
    ({"match": ["123456789012.dkr.ecr.us-east-1.amazonaws*"], "auth": {"cloud": {"provider": "aws"}}},
     "stores[0].match[0]", "does not name a registry host"),
    ({"match": ["registry.example/*"], "auth": {"cloud": {"provider": "aws"}}}, "stores[0].match[0]",
     "is not an ECR registry host"),
    # Ratify's CVE-2025-27403 fix: ACR tokens only for hosts under ACR's domains.
    ({"match": ["myacr.azurecr.io.evil.example/*"], "auth": {"cloud": {"provider": "azure"}}},
     "stores[0].match[0]", "is not an Azure Container Registry host"),
    ({"match": ["registry.cn-hangzhou.aliyuncs.com/*"], "auth": {"cloud": {"provider": "alibaba"}}},
     "stores[0].match[0]", "is not an ACR Enterprise Edition host"),
    ({"match": ["myacr.azurecr.io/*"], "insecure": ["myacr.azurecr.io"], "auth": {"cloud": {"provider": "azure"}}},
     "stores[0].insecure", "only sent over TLS"),
    ({"match": ["myacr.azurecr.io/*"], "auth": {"cloud": {"provider": "azure", "instanceId": "cri-1"}}},
     "stores[0].auth.cloud.instanceId", "only the alibaba provider"),
    ({"match": ["myacr.azurecr.io/*"], "auth": {"cloud": {"provider": "ibm"}}},
     "stores[0].auth.cloud.provider", "must be one of"),
])
def test_cloud_auth_config_errors_name_the_field(tmp_path: Path, store: dict[str, object], field: str,
                                                 reason: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, store)
    assert raised.value.field_path == field and reason in raised.value.problem, raised.value


def test_a_provider_without_its_sdk_is_an_error_naming_the_pip_install(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "config.yaml", store_config(tmp_path, {
        "match": ["123456789012.dkr.ecr.us-east-1.amazonaws.com/*"], "auth": {"cloud": {"provider": "aws"}}}))
    # The SDK made unimportable in a child process, as on an install without the extra.
    probe = ("import sys; sys.modules['boto3'] = None\n"
             "from provider.cli import main\n"
             f"sys.exit(main(['config', 'check', '--for', 'verify', {str(config)!r}]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "stores[0].auth.cloud.provider" in done.stderr and "pip install 'sigwarden[aws]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_extra_names_the_module_and_extra() -> None:
    assert missing_extra("aws") == ""
    saved = sys.modules.get("google.auth")
    sys.modules["google.auth"] = None  # type: ignore[assignment]
    try:
        assert missing_extra("google") == ("the google provider needs the google.auth package, which is not "
                                           "installed: pip install 'sigwarden[google]'")
    finally:
        if saved is None:
            del sys.modules["google.auth"]
        else:
            sys.modules["google.auth"] = saved


def test_config_check_says_which_identity_a_store_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/sigwarden")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token")
    config = write_yaml(tmp_path / "config.yaml", store_config(tmp_path, {
        "match": ["123456789012.dkr.ecr.us-east-1.amazonaws.com/*"], "auth": {"cloud": {"provider": "aws"}}}))
    assert main(["config", "check", "--for", "verify", str(config)]) == 0
    out = capsys.readouterr().out
    assert ("stores[0] (123456789012.dkr.ecr.us-east-1.amazonaws.com/*): aws credentials from IAM role "
            "arn:aws:iam::123456789012:role/sigwarden (IRSA web identity)") in out


# --- registry host names ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("host", "parsed"), [
    # Host forms accepted by amazon-ecr-credential-helper, ecr-login/api/client.go `ecrPattern`
    # (and its ecr-login/api/client_test.go cases): commercial, FIPS, China, dual-stack and isolated partitions.
    ("123456789012.dkr.ecr.us-west-2.amazonaws.com", ("123456789012", "us-west-2", False)),
    ("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com", ("123456789012", "us-gov-west-1", True)),
    ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", ("123456789012", "cn-north-1", False)),
    ("123456789012.dkr-ecr.us-west-2.on.aws", ("123456789012", "us-west-2", False)),
    ("123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", ("123456789012", "us-iso-east-1", False)),
    ("123456789012.dkr.ecr.us-west-2.amazonaws.com.evil.example", None),
    ("12345678901.dkr.ecr.us-west-2.amazonaws.com", None),
    ("public.ecr.aws", None),
])
def test_ecr_host_names(host: str, parsed: tuple[str, str, bool] | None) -> None:
    assert parse_ecr_host(host) == parsed


@pytest.mark.parametrize(("host", "parsed"), [
    ("myinstance-registry.cn-hangzhou.cr.aliyuncs.com", ("myinstance", "cn-hangzhou")),
    ("my-instance-registry-vpc.cn-beijing.cr.aliyuncs.com", ("my-instance", "cn-beijing")),
    ("registry.cn-hangzhou.aliyuncs.com", None),  # Personal Edition: no instance, no RRSA token exchange
    ("myinstance-registry.cn-hangzhou.cr.aliyuncs.com.evil.example", None),
])
def test_alibaba_instance_host_names(host: str, parsed: tuple[str, str] | None) -> None:
    assert parse_alibaba_host(host) == parsed


@pytest.mark.parametrize(("provider", "host", "allowed"), [
    ("azure", "myacr.azurecr.io", True), ("azure", "myacr.azurecr.us", True), ("azure", "myacr.azurecr.cn", True),
    ("azure", "azurecr.io", False), ("azure", "myacr.azurecr.io.evil.example", False),
    ("google", "europe-docker.pkg.dev", True), ("google", "gcr.io", True), ("google", "eu.gcr.io", True),
    ("google", "docker.pkg.dev.evil.example", False),
])
def test_cloud_registry_domains(provider: str, host: str, allowed: bool) -> None:
    assert (host_problem(provider, host) == "") is allowed


# --- the credential cache ----------------------------------------------------------------------------------

@dataclass
class ScriptedIdentity:
    """A cloud identity that hands out numbered credentials with the lifetimes it is given (no network)."""

    lifetimes: list[float]
    provider: str = "aws"
    issued: list[str] = field(default_factory=list)
    fail: bool = False
    clock: Callable[[], float] = time.time

    def describe(self) -> str:
        return "scripted"

    def issue(self, host: str, deadline: float) -> Issued:
        if self.fail:
            raise CloudIdentityError(f"aws identity for {host}: AccessDeniedException")
        lifetime = self.lifetimes[min(len(self.issued), len(self.lifetimes) - 1)]
        self.issued.append(host)
        return Issued(Credentials("AWS", f"token-{len(self.issued)}"), self.clock() + lifetime)


def test_a_credential_is_kept_until_shortly_before_it_expires() -> None:
    identity = ScriptedIdentity([3600])
    cache = CredentialCache(identity)
    deadline = time.monotonic() + 5
    assert cache.get("a.example", deadline).password == "token-1"
    assert cache.get("a.example", deadline).password == "token-1"
    assert identity.issued == ["a.example"]
    assert cache.get("b.example", deadline).password == "token-2"  # one credential per host


def test_a_credential_that_arrives_expired_serves_its_request_and_is_not_kept() -> None:
    # Clock skew (or an emulator reporting a past expiry) costs a token request per use, never a failure.
    identity = ScriptedIdentity([-60])
    cache = CredentialCache(identity)
    deadline = time.monotonic() + 5
    assert [cache.get("a.example", deadline).password for _ in range(3)] == ["token-1", "token-2", "token-3"]


def refreshing_cache() -> tuple[ManualClock, ScriptedIdentity, Metrics, CredentialCache]:
    """A cache of hour-long credentials on a clock the test moves (a wall-clock time, as expiries are)."""
    clock = ManualClock(1_800_000_000.0)
    identity = ScriptedIdentity([3600], clock=clock)
    metrics = Metrics()
    return clock, identity, metrics, CredentialCache(identity, metrics, clock=clock)


def test_a_credential_near_its_expiry_is_refreshed_in_the_background() -> None:
    clock, identity, metrics, cache = refreshing_cache()
    deadline = time.monotonic() + 5
    assert cache.get("a.example", deadline).password == "token-1"
    clock.now += 3600 - 200  # inside the last 300 s: served at once while the next one is fetched
    assert cache.get("a.example", deadline).password == "token-1"
    wait_for(lambda: len(identity.issued) == 2, "the background refresh")
    wait_for(lambda: cache.get("a.example", deadline).password == "token-2", "the refreshed credential")
    clock.now += 3000  # token-1 would have expired; the refreshed one has not
    assert cache.get("a.example", deadline).password == "token-2" and len(identity.issued) == 2
    assert _count(metrics, "issued") == 2


def test_a_failed_refresh_keeps_the_credential_and_is_counted() -> None:
    clock, identity, metrics, cache = refreshing_cache()
    deadline = time.monotonic() + 5
    assert cache.get("a.example", deadline).password == "token-1"
    identity.fail = True
    clock.now += 3600 - 200
    assert cache.get("a.example", deadline).password == "token-1"
    wait_for(lambda: _count(metrics, "refresh_failed") == 1, "the failed refresh to be counted")
    assert "AccessDeniedException" in cache.last_error
    assert cache.get("a.example", deadline).password == "token-1"  # still valid: still served
    clock.now += 200  # expired now: a request waits for a fresh one, and its refusal is the item's reason
    with pytest.raises(ItemError, match=r"aws identity for a\.example: AccessDeniedException"):
        cache.get("a.example", deadline)
    assert _count(metrics, "failed") == 1


def test_cloud_credentials_only_for_the_hosts_the_store_names() -> None:
    identity = ScriptedIdentity([3600])
    store = CredentialStore(RegistryAuth(), CredentialCache(identity), frozenset({"myacr.azurecr.io"}))
    assert store.for_host("myacr.azurecr.io", time.monotonic() + 5) == Credentials("AWS", "token-1")
    assert store.for_host("otheracr.azurecr.io", time.monotonic() + 5) is None
    assert identity.issued == ["myacr.azurecr.io"]


def _count(metrics: Metrics, result: str) -> float:
    text = generate_latest(metrics.registry).decode()
    return metric_value(text, "sigwarden_cloud_credentials_total", {"provider": "aws", "result": result})


def test_readiness_shows_failing_credential_refreshes(tmp_path: Path) -> None:
    from provider.server.pod import StatusBoard, WorkerStatus

    board = StatusBoard(tmp_path)
    board.publish(WorkerStatus(pid=os.getpid(), ready=True, authorities=1, stores=2, credential_problems=[
        "stores[0]: azure identity for myacr.azurecr.io: AADSTS700016: Application not found"]))
    ready, message = board.readiness(1)
    assert ready is True
    assert message == ("ready: 1/1 workers, 1 authorities, 2 stores; credential refresh failing: stores[0]: azure "
                       "identity for myacr.azurecr.io: AADSTS700016: Application not found")


def test_concurrent_misses_make_one_token_request() -> None:
    release = threading.Event()

    class Slow(ScriptedIdentity):
        def issue(self, host: str, deadline: float) -> Issued:
            release.wait(10)
            return super().issue(host, deadline)

    identity = Slow([3600])
    cache = CredentialCache(identity)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("a.example", time.monotonic() + 10).password))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join()
    assert results == ["token-1"] * 4 and identity.issued == ["a.example"]


def test_botocores_metadata_fetchers_send_through_the_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    # EKS Pod Identity's agent and (with nodeIdentity) instance metadata are fetched by botocore outside the API
    # clients' before-send hook: their fetchers get the egress-checked transport too; without nodeIdentity the
    # instance metadata provider is not in the chain at all.
    from provider.stores.cloud.aws import AwsIdentity
    from provider.stores.cloud.transport import SdkTransport
    from provider.stores.fetch import Outbound

    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials")
    for node in (False, True):
        identity = AwsIdentity(CloudAuth("aws", node_identity=node), SdkTransport(Outbound()))
        providers = {p.METHOD: p for p in identity.session.get_component("credential_provider").providers}
        assert type(providers["container-role"]._fetcher._session).__name__ == "_FetcherSession"
        if node:
            assert type(providers["iam-role"]._role_fetcher._session).__name__ == "_FetcherSession"
        else:
            assert "iam-role" not in providers
