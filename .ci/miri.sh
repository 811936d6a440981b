#!/usr/bin/env bash
# Runs the unit, integration and doc tests under Miri (nightly), which checks the unsafe code
# (host reclamation, raw reservations, tie buffers) for undefined behaviour and data races.
# Heavy tests shrink themselves under cfg(miri) (see tests/stress.rs); the loom models are
# cfg(loom)-only and compile to nothing here. Installs nightly's miri component if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Some nightlies ship without Miri: --allow-downgrade takes the newest nightly that has both
# components, so a fresh machine never fails here on the day's nightly.
if ! rustup +nightly component list --installed 2>/dev/null | grep -q '^miri' ||
   ! rustup +nightly component list --installed 2>/dev/null | grep -q '^rust-src'; then
  rustup toolchain install nightly --profile minimal --component miri,rust-src --allow-downgrade
fi
cargo +nightly miri setup
# Miri runs a few thousand times slower than native code; the tests keep it bounded by doing
# less under cfg(miri), not a wall-clock limit, which would only fail a run on a loaded
# machine (Miri reports a deadlock as an error).
cargo +nightly miri test
