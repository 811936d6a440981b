//go:build leastconn_dynamic

package leastconn

// With -tags leastconn_dynamic: libleastconn.so, found through leastconn.pc; the program
// then needs the library at run time (installed in a system directory, or LD_LIBRARY_PATH).

// #cgo pkg-config: leastconn
import "C"
