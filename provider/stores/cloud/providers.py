"""The cloud identity a store's `auth.cloud` names, wired to the store's egress policy and metrics."""

from __future__ import annotations

from provider.config import CloudAuth, StoreConfig
from provider.metrics import Metrics
from provider.stores.cloud.hosts import match_hosts
from provider.stores.cloud.issued import CloudIdentity, CredentialCache
from provider.stores.cloud.transport import SdkTransport
from provider.stores.fetch import Outbound


def identity_for(cloud: CloudAuth, transport: SdkTransport) -> CloudIdentity:
    if cloud.provider == "aws":
        from provider.stores.cloud.aws import AwsIdentity

        return AwsIdentity(cloud, transport)
    if cloud.provider == "azure":
        from provider.stores.cloud.azure import AzureIdentity

        return AzureIdentity(cloud, transport)
    if cloud.provider == "google":
        from provider.stores.cloud.google import GoogleIdentity

        return GoogleIdentity(cloud, transport)
    if cloud.provider == "alibaba":
        from provider.stores.cloud.alibaba import AlibabaIdentity

        return AlibabaIdentity(cloud, transport)
    raise ValueError(f"unknown cloud provider {cloud.provider!r}")


def describe(cloud: CloudAuth) -> str:
    """The identity a store's `auth.cloud` will use here, in words (for `config check`)."""
    node = "; may fall back to the node's identity" if cloud.node_identity else ""
    if cloud.provider == "aws":
        from provider.stores.cloud import aws

        return aws.describe() + node
    if cloud.provider == "azure":
        from provider.stores.cloud import azure

        return azure.describe(cloud)
    if cloud.provider == "google":
        from provider.stores.cloud import google

        return google.describe(cloud)
    if cloud.provider == "alibaba":
        from provider.stores.cloud import alibaba

        return alibaba.describe(cloud)
    return cloud.provider + node


def cloud_credentials(store: StoreConfig, outbound: Outbound,
                      metrics: Metrics | None) -> tuple[CredentialCache, SdkTransport, frozenset[str]] | None:
    """The credential cache for a store with `auth.cloud`, its SDK transport and the hosts it serves."""
    if store.auth.cloud is None:
        return None
    transport = SdkTransport(outbound)
    cache = CredentialCache(identity_for(store.auth.cloud, transport), metrics)
    return cache, transport, frozenset(host for _, host in match_hosts(store.match) if host)
