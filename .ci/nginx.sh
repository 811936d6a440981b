#!/usr/bin/env bash
# The nginx module: build it against Debian's nginx-dev, then test it end to end against the
# distribution's nginx with real traffic (ffi-tests/nginx/run.sh prints the result table).
# The zone part (8 workers and `zone`, issue 11 point 7) must pass three times in a row: the
# full run is the first; two zone-only runs follow. Each run.sh is independent of the one
# before: its own temporary prefix (removed on success), free ports chosen at its start,
# backends and nginx it started and stopped by PID, and a zone that lives in its own nginx
# master's shared memory (gone with that master).
set -euo pipefail
cd "$(dirname "$0")/.."
bash nginx/build.sh
echo "nginx.sh: full e2e, with zone e2e run 1 of 3"
bash ffi-tests/nginx/run.sh
for run in 2 3; do
  echo "nginx.sh: zone e2e run $run of 3"
  LEASTCONN_NGINX_ZONE_ONLY=1 bash ffi-tests/nginx/run.sh
  echo "nginx.sh: zone e2e run $run of 3 passed"
done
echo "nginx.sh: zone e2e passed 3 times in a row"
