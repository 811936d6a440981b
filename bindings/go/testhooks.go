package leastconn

// #include "bridge.h"
import "C"

// The tests' C side (cgo is not allowed in _test.go files).

// releaseMovedCopy releases a copy of the pick's lc_pick at another address, as a binding
// that moved its picks would: the library must refuse it (ErrPickMoved) and change nothing.
func releaseMovedCopy(p *Pick) error {
	return check(C.lc_go_release_copy(p.c, C.LC_OUTCOME_SUCCESS), "release a moved copy")
}

// fetchReleased reports whether the library dropped the CallbackSource src was (its
// function handle deleted: Value panics on a deleted handle, and handles are never reused).
func fetchReleased(src *Source) (released bool) {
	defer func() { released = recover() != nil }()
	src.fetch.Value()
	return false
}
