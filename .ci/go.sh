#!/usr/bin/env bash
# The Go binding (bindings/go), as its README tells a user to build it: `make install` into a
# temporary prefix, PKG_CONFIG_PATH pointing there; then gofmt, go vet and go test -race with
# the default static link, the tests again linked dynamically, a check that the static
# binary needs no libleastconn.so, and the proxy example's demo (400 requests).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v go >/dev/null 2>&1; then
  echo "go not found: .ci/install.sh installs golang-go (.ci/packages-go.txt)" >&2
  exit 1
fi
go version
# Standard library only: nothing to download, and no toolchain switch on a newer Go.
export GOPROXY=off GOTOOLCHAIN=local

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make install PREFIX="$tmp/prefix"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
# Go's build cache key covers CGO_CFLAGS but not pkg-config's output: without the prefix in
# it, a package cached by an earlier run links against that run's (deleted) prefix.
export CGO_CFLAGS="-O2 -g -I$tmp/prefix/include"

cd bindings/go
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt: not formatted: $unformatted" >&2
  exit 1
fi
go vet ./...
go vet -tags leastconn_dynamic ./...
go test -race -count=1 ./...
LD_LIBRARY_PATH="$tmp/prefix/lib" go test -tags leastconn_dynamic -count=1 ./...

go build -o "$tmp/proxy" ./examples/proxy
if readelf -d "$tmp/proxy" | grep -q libleastconn; then
  echo "the default build linked libleastconn dynamically" >&2
  exit 1
fi
"$tmp/proxy" -demo 400
