#!/usr/bin/env bash
# Usage: tools/ensure-apt.sh COMMAND_OR_PATH PACKAGE...
# Install Debian PACKAGEs when COMMAND_OR_PATH is missing and apt-get is available (as root, or
# through sudo). Elsewhere it says what is missing and leaves it to the caller.
set -euo pipefail
need="$1"; shift
if command -v "$need" >/dev/null 2>&1 || [ -x "$need" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "$need is missing and there is no apt-get here: install $* yourself" >&2
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing $* (Debian) for $need"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@"
