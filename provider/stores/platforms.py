"""Platform names in containerd's normal form, so `aarch64`, `arm64/v8` and `arm64` are one platform.

The rules are containerd's (`containerd/platforms`, database.go: `normalizeOS`, `normalizeArch`), which the
kubelet's runtime applies when it picks a manifest from an index; an index entry that names a platform in
another spelling is still the manifest a node of that platform runs.
"""

from __future__ import annotations

_ARM64_VARIANTS = {"8": "", "v8": "", "v8.0": "", "9": "v9", "9.0": "v9", "v9.0": "v9"}


def normalize_os(os_name: str) -> str:
    os_name = os_name.lower()
    return "darwin" if os_name == "macos" else os_name


def normalize_arch(architecture: str, variant: str) -> tuple[str, str]:
    """(architecture, variant) as containerd normalises them."""
    arch, variant = architecture.lower(), variant.lower()
    if arch == "i386":
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        return "arm64", _ARM64_VARIANTS.get(variant, variant)
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            return "arm", "v7"
        if variant in ("5", "6", "8"):
            return "arm", f"v{variant}"
    return arch, variant


def normalized_platform(os_name: str, architecture: str, variant: str = "") -> str:
    """`os/arch[/variant]` in normal form; empty when the entry names no platform."""
    if not os_name and not architecture:
        return ""
    arch, variant = normalize_arch(architecture, variant)
    return "/".join(part for part in (normalize_os(os_name), arch, variant) if part)
