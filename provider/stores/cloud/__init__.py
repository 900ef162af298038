"""Registry credentials from the pod's cloud workload identity (`auth.cloud`), each cloud through its own SDK.

The SDKs are optional extras; a config naming a provider whose SDK is missing fails `config check`.
"""

from __future__ import annotations

import importlib.util

# provider → (the modules its SDK brings, the extra that installs them)
EXTRAS: dict[str, tuple[tuple[str, ...], str]] = {
    "aws": (("boto3", "botocore"), "aws"),
    "azure": (("azure.identity",), "azure"),
    "google": (("google.auth",), "google"),
    "alibaba": (("alibabacloud_credentials", "alibabacloud_cr20181201", "alibabacloud_kms20160120"), "alibaba"),
}
PROVIDERS = tuple(EXTRAS)


def missing_extra(provider: str) -> str:
    """Empty when `provider`'s SDK is importable; else what to install, as one line."""
    modules, extra = EXTRAS[provider]
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return (f"the {provider} provider needs the {module} package, which is not installed: "
                    f"pip install 'sigwarden[{extra}]'")
    return ""
