#!/usr/bin/env bash
# Install a Debian package for the tests: apt-install.sh PACKAGE WHY. Needs root or sudo.
set -euo pipefail
package="$1"
why="$2"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "no apt-get here; install ${package} yourself (${why})" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
echo "installing Debian's ${package} package (${why})"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${package}" >/dev/null
