"""Which registry hosts each cloud's credentials may be used for: a cloud token only ever goes to a host the
store names exactly, and that host must belong to the cloud's registry service."""

from __future__ import annotations

import re

from provider.stores.cloud.aws import host_problem as aws_host_problem

# Ratify's fix of CVE-2025-27403 (ratify-project/ratify, pkg/common/oras/authprovider/azure): ACR tokens only
# for hosts under ACR's own domains, in the public, US Government and China clouds.
ACR_SUFFIXES = (".azurecr.io", ".azurecr.us", ".azurecr.cn")
# `<instance>-registry[-vpc].<region>.cr.aliyuncs.com`, the ACR Enterprise Edition endpoints Ratify's
# alibabacloudAcrBasic provider reads the instance name and region from.
ALIBABA_HOST = re.compile(r"^([a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)-registry(-vpc)?\.([a-z0-9\-]+)\.cr\.aliyuncs\.com$")
# Artifact Registry (`<location>-docker.pkg.dev`) and Container Registry (`gcr.io`, `<region>.gcr.io`).
GOOGLE_HOST = re.compile(r"^(?:[a-z0-9\-]+-docker\.pkg\.dev|(?:[a-z]+\.)?gcr\.io)$")


def parse_alibaba_host(host: str) -> tuple[str, str] | None:
    """(instance name, region) of an ACR EE host, or None."""
    found = ALIBABA_HOST.match(host.lower())
    return (found.group(1), found.group(3)) if found else None


def host_problem(provider: str, host: str) -> str:
    """Empty when `provider`'s credentials may go to registry `host`; else why not."""
    name = host.lower().rsplit(":", 1)[0] if host.count(":") == 1 else host.lower()
    if provider == "aws":
        return aws_host_problem(name)
    if provider == "azure":
        return "" if name.endswith(ACR_SUFFIXES) and len(name) > len(".azurecr.io") else (
            f"{host!r} is not an Azure Container Registry host (*.azurecr.io, *.azurecr.us, *.azurecr.cn)")
    if provider == "google":
        return "" if GOOGLE_HOST.match(name) else (
            f"{host!r} is not an Artifact Registry or Container Registry host (LOCATION-docker.pkg.dev, gcr.io)")
    if provider == "alibaba":
        return "" if parse_alibaba_host(name) else (
            f"{host!r} is not an ACR Enterprise Edition host such as myinstance-registry.cn-hangzhou.cr.aliyuncs.com")
    return f"unknown provider {provider!r}"


def match_hosts(match: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(pattern, host) for each `match` pattern; host is "" when the pattern does not name one exactly."""
    found = []
    for pattern in match:
        host = pattern.split("/", 1)[0] if "/" in pattern else ""
        found.append((pattern, "" if "*" in host else host.lower()))
    return tuple(found)
