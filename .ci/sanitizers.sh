#!/usr/bin/env bash
# The C tests of the C ABI under AddressSanitizer + UndefinedBehaviorSanitizer (linked with
# the static library), then under valgrind memcheck (linked with the shared library).
# Zero errors and zero leaks, or this script fails.
set -euo pipefail
cd "$(dirname "$0")/.."

CC=${CC:-cc}
# The debug build by default: `cargo test` has already built it, and it keeps the core's
# debug assertions on. PROFILE=release checks the optimised library instead.
PROFILE=${PROFILE:-debug}
if [ "$PROFILE" = release ]; then cargo build --release --lib; else cargo build --lib; fi
# Where cargo put it: CARGO_TARGET_DIR (or build.target-dir) when set, else target/ (absolute).
target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
lib=$target/$PROFILE
out=$target/sanitizers
rm -rf "$out" && mkdir -p "$out/lib"
# The loader looks for the SONAME; the linker for libleastconn.so.
soname=$(readelf -d "$lib/libleastconn.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
ln -s "$lib/libleastconn.so" "$out/lib/libleastconn.so"
ln -s "$lib/libleastconn.so" "$out/lib/$soname"
static_libs=$(sed -n 's/^Libs.private: //p' leastconn.pc.in)
cflags=(-std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -pedantic -g -Iinclude)
# Every C program in ffi-tests/c but test_alloc, which defines malloc itself, as ASan and
# valgrind do (readme_sources.c is the block readme_sources_test.c includes).
programs=(readme_example readme_sources_test)
for f in ffi-tests/c/test_*.c; do
  p=$(basename "$f" .c)
  [ "$p" = test_alloc ] || programs+=("$p")
done

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for p in "${programs[@]}"; do
  echo "--- ${p}: -fsanitize=address,undefined (static)"
  # shellcheck disable=SC2086 # static_libs is a list of flags
  "$CC" "${cflags[@]}" -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
    "ffi-tests/c/${p}.c" "$lib/libleastconn.a" $static_libs -o "$out/${p}-asan"
  "$out/${p}-asan"
done

for p in "${programs[@]}"; do
  echo "--- ${p}: valgrind memcheck (shared)"
  "$CC" "${cflags[@]}" "ffi-tests/c/${p}.c" -L"$out/lib" -lleastconn -lpthread -o "$out/${p}-shared"
  LD_LIBRARY_PATH="$out/lib" valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=1 \
    --suppressions=.ci/valgrind-rust.supp "$out/${p}-shared"
done
# Canary: a program that leaks one source must fail both checks, or they check nothing.
cat > "$out/leak_canary.c" <<'C'
#include "leastconn.h"
int main(void) {
    lc_upstream u = {"10.0.0.1:80", 1, 0, 0, 0};
    lc_source *leaked = 0;
    return (int)lc_source_static_new(&u, 1, &leaked);
}
C
# shellcheck disable=SC2086
"$CC" "${cflags[@]}" -fsanitize=address "$out/leak_canary.c" "$lib/libleastconn.a" $static_libs -o "$out/canary-asan"
"$CC" "${cflags[@]}" "$out/leak_canary.c" -L"$out/lib" -lleastconn -o "$out/canary-shared"
if ASAN_OPTIONS=detect_leaks=1 "$out/canary-asan" 2>/dev/null; then echo "canary: ASan missed a leak" >&2; exit 1; fi
if LD_LIBRARY_PATH="$out/lib" valgrind --quiet --leak-check=full --error-exitcode=1 \
    --suppressions=.ci/valgrind-rust.supp "$out/canary-shared" 2>/dev/null; then
  echo "canary: valgrind missed a leak" >&2; exit 1
fi
echo "--- canary: a leaked lc_source is reported by ASan and by valgrind"
echo "sanitizers: all C tests clean under ASan+UBSan and valgrind"
