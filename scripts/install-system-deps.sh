#!/usr/bin/env bash
# Installs the Debian packages the integration tests start as real servers.
# Fails loudly when a package is missing and cannot be installed.
set -euo pipefail

declare -A wanted=(
  [docker-registry]=docker-registry   # OCI distribution registry on loopback
  [redis-server]=redis-server         # shared cache tests
  [skopeo]=skopeo                     # real simple-signing (GPG) signer for interop tests
  [gpg]=gnupg                         # the OpenPGP keys skopeo signs with
  [chromium]=chromium                 # renders the HTML audit report headless
)

missing=()
for cmd in "${!wanted[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/bin/$cmd" ] || missing+=("${wanted[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "error: missing Debian packages: ${missing[*]}" >&2
  echo "       run as root, or install them first: apt-get install -y ${missing[*]}" >&2
  exit 1
fi

echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages start their services; the tests start their own instances on loopback.
for svc in docker-registry redis-server; do
  (service "$svc" stop || true) >/dev/null 2>&1
done
for cmd in "${!wanted[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || { echo "error: $cmd still missing after install" >&2; exit 1; }
done
