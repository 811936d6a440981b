#!/usr/bin/env bash
# Builds every criterion bench without running it (benches are run by hand; see
# benches/RESULTS.md for the command and the published figures).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --no-run
