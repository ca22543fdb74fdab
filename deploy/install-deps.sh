#!/usr/bin/env bash
# Install the Debian packages the local stack and tests need, only those that are missing.
# Toolchains that Debian ships too old (Go >= 1.25 for btcd) or that come with the machine
# (Python 3.11, Java 17, Node with npm) are checked, not installed.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v wrk >/dev/null || need+=(wrk)
command -v kcat >/dev/null || need+=(kcat)
command -v mvn >/dev/null || need+=(maven)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v npm >/dev/null || need+=(npm)
command -v pgbackrest >/dev/null || need+=(pgbackrest)  # WAL archiving and point-in-time restores
command -v haproxy >/dev/null || need+=(haproxy)  # the HA stack: the PostgreSQL primary and the API processes
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)  # Patroni's own virtualenv
command -v chromium >/dev/null || need+=(chromium)  # the browser tests drive Debian's, never a download

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install -y ${need[*]})" >&2
    exit 1
  fi
  echo "installing Debian packages: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  # the packages start system-wide services we do not use; the stack runs its own
  service redis-server stop >/dev/null 2>&1 || true
  service postgresql stop >/dev/null 2>&1 || true
  service haproxy stop >/dev/null 2>&1 || true
fi

if ! command -v go >/dev/null; then
  echo "Go >= 1.25 is required to build btcd (https://go.dev/dl)" >&2
  exit 1
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python >= 3.11 is required" >&2; exit 1; }
