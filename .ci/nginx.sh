#!/usr/bin/env bash
# The nginx module: build it against Debian's nginx-dev, then test it end to end against the
# distribution's nginx with real traffic (ffi-tests/nginx/run.sh prints the result table).
set -euo pipefail
cd "$(dirname "$0")/.."
bash nginx/build.sh
bash ffi-tests/nginx/run.sh
