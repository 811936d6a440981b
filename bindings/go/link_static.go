//go:build !leastconn_dynamic

package leastconn

// The default: libleastconn.a linked into the Go binary, found through leastconn-static.pc
// (installed by `make install` next to leastconn.pc). Build with -tags leastconn_dynamic to
// link libleastconn.so instead.

// #cgo pkg-config: leastconn-static
import "C"
