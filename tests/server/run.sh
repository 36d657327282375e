#!/usr/bin/env bash
# ctest entry: the end-to-end server suite (node --test) against the built binary. Skips (77) when
# Node or the pinned openai client (installed by scripts/test.sh into tests/server/node_modules) is absent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v node >/dev/null || { echo "skip: node is not installed"; exit 77; }
[[ -d "$here/node_modules/openai" ]] || { echo "skip: run scripts/test.sh (npm ci in tests/server) to install the openai client"; exit 77; }
export MINICPM_BIN="$1"
shift
exec node --test "$@" "$here"/*.test.cjs
