#!/usr/bin/env bash
# Debian's headless Chromium for the browser check of the UI (tests/e2e). Installs nothing when
# it is already there.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
"$(dirname "$0")/apt-install.sh" chromium "for the UI browser check"
