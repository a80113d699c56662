#!/usr/bin/env bash
# Debian's PostgreSQL server for the production tests (tests/production start a throwaway cluster
# on 127.0.0.1). Installs nothing when it is already there; needs root or sudo otherwise.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-postgres: no apt-get here; install PostgreSQL's server (initdb, pg_ctl) under /usr/lib/postgresql" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "installing Debian's postgresql package (for the production tests)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
# The package starts a cluster of its own; the tests start theirs, so it is not needed.
$SUDO service postgresql stop >/dev/null 2>&1 || true
