// Package leastconn is the Go binding of leastconn, a wait-free least-connections upstream
// selector with Caddy's least_conn and multi semantics, through its C ABI (cgo).
//
// A Pool is fed by a Source (StaticSource, CallbackSource, MultiSource, GraceSource) and
// picks a host per request; the Pick is the reservation, counted in the host's in-flight
// requests until Pick.Release:
//
//	src, err := leastconn.StaticSource([]leastconn.Upstream{{Address: "10.0.0.1:8080"}, {Address: "10.0.0.2:8080"}})
//	if err != nil { ... }
//	pool, err := leastconn.NewPool(src, nil) // consumes src
//	if err != nil { ... }
//	defer pool.Close()
//	pick, err := pool.Select()
//	if errors.Is(err, leastconn.ErrNoUpstream) { ... }
//	// ... send the request to pick.Address(); on a connection error retry elsewhere:
//	retry, err := pool.Select(pick.HostID())
//	pick.Release(leastconn.Failure)
//
// Shared zones (Linux): OpenZone maps a zone file that several processes open by path;
// pools built on it with NewPoolInZone under one name share their hosts' in-flight counts,
// limits, failure windows and down flags exactly across those processes, and Zone.Sweep
// returns what a process that died holding picks had reserved.
//
// Errors are *Error values carrying the library's status; compare them with errors.Is
// against ErrNoUpstream, ErrInvalidAddress and the other Err* variables.
//
// Goroutine safety: Pool, Pick, Source and Refresher methods may be called from any
// goroutine, concurrently (a Source one call at a time); a Picker is for one goroutine at a
// time. Select and Release are one cgo call each into the library's wait-free select and
// release; the Go side adds no lock of its own: two atomic adds on the Pool (so that Close
// can wait for the calls in progress), one compare-and-swap on the Pick (so that a second
// Release never touches freed memory), and the Pick's allocation (a Go struct and its
// address string; the lc_pick itself is malloc'd by the same C call).
//
// Linking: cgo finds the library through pkg-config. By default the archive is linked in
// (package leastconn-static, from `make install`); build with -tags leastconn_dynamic to
// link libleastconn.so (package leastconn) instead. See README.md.
package leastconn
