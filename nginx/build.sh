#!/usr/bin/env bash
# Builds libleastconn.a (cargo, release) and the nginx dynamic module against Debian's
# nginx-dev, with Debian's own configure flags (--with-compat), so that the module loads into
# the distribution's /usr/sbin/nginx. Everything is built in a fresh scratch directory (the
# Makefile nginx generates does not depend on the .a, so reusing one could link a stale copy).
#
# Output: $LEASTCONN_NGINX_BUILD/ngx_http_upstream_leastconn_module.so
# (default target/nginx/, under CARGO_TARGET_DIR when set). Needs: cargo, gcc, make, nginx-dev.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# cargo's target directory (CARGO_TARGET_DIR when set, as cargo itself does).
target=${CARGO_TARGET_DIR:-$repo/target}
out=${LEASTCONN_NGINX_BUILD:-$target/nginx}
nginx_src=/usr/share/nginx/src

if [ ! -f "$nginx_src/conf_flags" ]; then
  echo "build.sh: $nginx_src/conf_flags not found: install nginx-dev" >&2
  exit 1
fi

# The static library, and the system libraries it needs (printed by rustc for staticlibs).
cd "$repo"
notes=$(cargo rustc --release --lib --crate-type staticlib -- --print native-static-libs 2>&1) || {
  echo "$notes" >&2
  exit 1
}
native=$(printf '%s\n' "$notes" | sed -n 's/.*native-static-libs: //p' | tail -n 1)
if [ -z "$native" ]; then
  # cargo did not run rustc (up to date) and so printed nothing: the libraries Rust's std
  # needs on Linux with glibc.
  native="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
fi
echo "build.sh: libleastconn.a native libs: $native"

rm -rf "$out"
mkdir -p "$out"
cp -r "$nginx_src" "$out/nginx-src"
cd "$out/nginx-src"
# shellcheck disable=SC1091  # Debian's configure flags: the bash array NGX_CONF_FLAGS.
. ./conf_flags
export LEASTCONN_A="$target/release/libleastconn.a"
export LEASTCONN_INCLUDE="$repo/include"
export LEASTCONN_NATIVE_LIBS="$native"
./configure \
  --with-cc-opt="$(dpkg-buildflags --get CFLAGS) -fPIC $(dpkg-buildflags --get CPPFLAGS)" \
  --with-ld-opt="$(dpkg-buildflags --get LDFLAGS) -fPIC" \
  "${NGX_CONF_FLAGS[@]}" \
  --add-dynamic-module="$repo/nginx" \
  --builddir="$out/objs" >"$out/configure.log" 2>&1 || {
  tail -n 30 "$out/configure.log" >&2
  exit 1
}
make -f "$out/objs/Makefile" modules >"$out/make.log" 2>&1 || {
  tail -n 40 "$out/make.log" >&2
  exit 1
}
cp "$out/objs/ngx_http_upstream_leastconn_module.so" "$out/"
echo "build.sh: built $out/ngx_http_upstream_leastconn_module.so"
