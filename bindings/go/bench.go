package leastconn

// #include "bridge.h"
import "C"

// The benchmark's C side (cgo is not allowed in _test.go files).

// benchC runs n Select+Release pairs in one C loop, through picker when it is not nil:
// the same work as the Go methods, without a cgo crossing per operation.
func benchC(p *Pool, picker *Picker, n int) error {
	var pk *C.lc_picker
	if picker != nil {
		pk = picker.ptr
	}
	return check(C.lc_go_bench_c(p.ptr, pk, C.uint64_t(n)), "bench")
}

// cgoNoop is one cgo call to an empty C function.
func cgoNoop() { C.lc_go_noop() }
