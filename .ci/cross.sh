#!/usr/bin/env bash
# Checks that the library builds off Linux, where it has no shared zones (they need memfd and
# /proc; see README.md, "Shared zones"): `cargo check` only, for FreeBSD (library, tests,
# benches and examples) and macOS (library; criterion's dev-dependency alloca cannot be
# checked for macOS without Apple's compiler). No target's standard library is installed here: nightly builds it from
# rust-src (-Zbuild-std), which the Miri stage needs too.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup +nightly component list --installed 2>/dev/null | grep -q '^rust-src'; then
  rustup toolchain install nightly --profile minimal --component rust-src --allow-downgrade
fi
build_std=(-Zbuild-std=std,core,alloc,panic_abort,proc_macro)
cargo +nightly check "${build_std[@]}" --target x86_64-unknown-freebsd --lib --tests --examples --benches
cargo +nightly check "${build_std[@]}" --target x86_64-apple-darwin --lib
