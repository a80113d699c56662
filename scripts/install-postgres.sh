#!/usr/bin/env bash
# Debian's PostgreSQL server for the production tests (tests/production start a throwaway cluster
# on 127.0.0.1). Installs nothing when it is already there.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null; then
  exit 0
fi
"$(dirname "$0")/apt-install.sh" postgresql "for the production tests"
# The package starts a cluster of its own; the tests start theirs, so it is not needed.
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; else SUDO=""; fi
$SUDO service postgresql stop >/dev/null 2>&1 || true
