#!/usr/bin/env bash
# Runs the unit, integration and doc tests under Miri (nightly), which checks the unsafe code
# (host reclamation, raw reservations, tie buffers) for undefined behaviour and data races.
# Heavy tests shrink themselves under cfg(miri) (see tests/stress.rs); the loom models are
# cfg(loom)-only and compile to nothing here. Installs nightly's miri component if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! rustup +nightly component list --installed | grep -q '^miri'; then
  rustup +nightly component add miri rust-src
fi
cargo +nightly miri setup
# Miri runs a few thousand times slower than native code; the tests keep it bounded by doing
# less under cfg(miri), not a wall-clock limit, which would only fail a run on a loaded
# machine (Miri reports a deadlock as an error).
cargo +nightly miri test
