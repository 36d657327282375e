#!/usr/bin/env bash
# Installs the Debian packages given as arguments that are not installed yet (sudo when not root).
# Used by scripts/setup.sh (build + main command), scripts/test.sh (the test suite) and
# `scripts/setup.sh --reference` (the PyTorch reference tools). MCPM_SKIP_APT=1 skips it.
set -euo pipefail
[[ "${MCPM_SKIP_APT:-0}" == 1 ]] && exit 0
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
((${#missing[@]})) || exit 0
echo "installing: ${missing[*]}"
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
