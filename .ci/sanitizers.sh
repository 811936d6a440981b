#!/usr/bin/env bash
# The C tests of the C ABI under AddressSanitizer + UndefinedBehaviorSanitizer (linked with
# the static library), then under valgrind memcheck (linked with the shared library).
# Zero errors and zero leaks, or this script fails.
set -euo pipefail
cd "$(dirname "$0")/.."

CC=${CC:-cc}
cargo build --release --lib
lib=target/release
out=target/sanitizers
rm -rf "$out" && mkdir -p "$out/lib"
# The loader looks for the SONAME; the linker for libleastconn.so.
soname=$(readelf -d "$lib/libleastconn.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
ln -s "$PWD/$lib/libleastconn.so" "$out/lib/libleastconn.so"
ln -s "$PWD/$lib/libleastconn.so" "$out/lib/$soname"
static_libs=$(sed -n 's/^Libs.private: //p' leastconn.pc.in)
cflags=(-std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -pedantic -g -Iinclude)
programs=(test_api test_threads readme_example)

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
echo "sanitizers: all C tests clean under ASan+UBSan and valgrind"
