#!/usr/bin/env bash
# Installs what the test suites need on a fresh Debian machine; a no-op when already there.
set -euo pipefail
need=()
for pair in cc:gcc c++:g++ valgrind:valgrind python3:python3 pkg-config:pkg-config; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
# Suites that need more declare their packages in .ci/packages-*.txt (one package per line).
for list in .ci/packages-*.txt; do
  [ -f "$list" ] || continue
  while read -r pkg; do
    [ -n "$pkg" ] && ! dpkg -s "$pkg" >/dev/null 2>&1 && need+=("$pkg")
  done < "$list"
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${need[*]} (run as root to install)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Keep services (nginx) from starting during install.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
  rm -f /usr/sbin/policy-rc.d
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
