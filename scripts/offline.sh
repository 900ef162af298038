#!/usr/bin/env bash
# Run a command with loopback as the only network (a fresh network namespace), so the test suite proves it
# needs nothing from outside once `make deps` has filled the venv and the wheelhouse. Where namespaces cannot
# be made (not root, no unshare or ip), the command runs as it is, and says so.
set -euo pipefail
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && command -v ip >/dev/null && unshare -n true 2>/dev/null; then
  exec unshare -n bash -c 'ip link set lo up && exec "$@"' offline "$@"
fi
echo "note: no network namespace available; running with the network" >&2
exec "$@"
