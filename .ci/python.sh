#!/usr/bin/env bash
# The Python package (bindings/python): installs it with one pip command into a fresh venv in
# a temp dir (pip builds libleastconn.a with cargo and links it into the extension), runs its
# pytest suite and then its asyncio reverse-proxy example.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(mktemp -d -t leastconn-venv.XXXXXX)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check ./bindings/python pytest
rc=0
"$venv/bin/python" -m pytest -q -p no:cacheprovider bindings/python || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests in bindings/python" >&2
  exit 1
fi
[ "$rc" -eq 0 ] || exit "$rc"
"$venv/bin/python" bindings/python/examples/proxy.py
"$venv/bin/python" bindings/python/examples/proxy.py --dead-backend
