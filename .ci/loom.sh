#!/usr/bin/env bash
# Runs every loom model (tests/loom_*.rs): RUSTFLAGS="--cfg loom", release mode, its own
# target dir (so the loom build never invalidates the normal one), preemption bound 3.
# Prints each model's execution count and time, then a summary. Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

export RUSTFLAGS="--cfg loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-3}"
cargo=(cargo test --release --target-dir target-loom --test 'loom_*')

"${cargo[@]}" --no-run
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# No wall-clock limit: each model is bounded by what it explores (LOOM_MAX_PREEMPTIONS; loom
# fails a model that deadlocks or exceeds its branch limit), and a limit on time would only
# fail a run on a loaded machine. They take about 3 minutes on an idle 2-core machine; the
# zone slot models (tests/loom_zone_slots.rs, about 260,000 executions) add under a minute,
# the sweep models Z6 and Z8 (tests/loom_zone_sweep.rs, about 15,000 executions) seconds,
# the crash-point models Z5 and Z7 (tests/loom_zone_crash.rs, about 6,000 executions) a second,
# the zone pool model Z10 (tests/loom_zone_pools.rs) seconds, the zone host models Z4, Z4b and
# Z9 (tests/loom_zone_hosts.rs, about 333,000 executions, nearly all Z9) about a minute.
"${cargo[@]}" -- --nocapture --test-threads=1 2>&1 | tee "$log"
echo "--- loom summary (LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS}) ---"
grep '^loom model\|\.\.\. loom model' "$log" | sed 's/^test .* \.\.\. //'
