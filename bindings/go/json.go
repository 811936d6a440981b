package leastconn

// #include "bridge.h"
import "C"

import (
	"bytes"
	"fmt"
	"unsafe"
)

// jsonErrorLen is the size of the buffer that receives the library's message on
// ErrInvalidConfig (the message is truncated to fit; the JSON path comes first).
const jsonErrorLen = 1024

// NewPoolJSON creates a pool from the JSON of a Caddy reverse_proxy handler (the object
// `caddy adapt` prints for it: upstreams, dynamic_upstreams, load_balancing.selection_policy,
// health_checks.passive and leastconn's extensions; the root README's "Caddy JSON as the
// configuration" section lists what is read and what is ignored), and refreshes it once: a
// failing first refresh is logged and leaves the pool empty, as in NewPool.
//
// Errors: ErrInvalidConfig for anything wrong in the document, with the library's message
// naming the JSON path in Error.Detail ("dynamic_upstreams.sources[1].port: expected a
// string"); ErrInvalidUTF8. json is only read during the call.
func NewPoolJSON(json []byte) (*Pool, error) {
	const op = "pool from JSON"
	var out *C.lc_pool
	err := withJSON(json, op, func(doc *C.char, msg *C.char) C.lc_status {
		return C.lc_pool_new_json(doc, &out, msg, jsonErrorLen)
	})
	if err != nil {
		return nil, err
	}
	return wrapPool(out), nil
}

// NewPoolJSONInZone is NewPoolJSON with the pool's host state in zone, under name, as
// NewPoolInZone: every pool on the zone with the same name (built from JSON or not, in this
// process or another) shares the in-flight counts, MaxRequests limits, failure windows and
// down flags of its addresses; everything else is as NewPoolJSON. The pool keeps the zone
// mapped (the Zone may be closed first). name NUL address must fit the zone's
// AddressBytes, else the refresh that lists the address fails (logged; Refresh returns
// ErrZoneIncompatible). json is only read during the call.
//
// Errors, besides NewPoolJSON's, with the library's message in Error.Detail where it gives
// one: ErrClosed (a closed or nil zone), ErrInvalidArgument (a name containing NUL),
// ErrInvalidUTF8 (a name that is not UTF-8), ErrZoneIncompatible
// (health_checks.passive.max_fails above the zone's FailRing), ErrZoneFull (no process or
// thread record free).
func NewPoolJSONInZone(json []byte, zone *Zone, name string) (*Pool, error) {
	const op = "pool from JSON in zone"
	cname, err := cStringAs(name, op, C.LC_ERR_INVALID_ARGUMENT)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cname))
	if err := zone.enter(); err != nil {
		return nil, err
	}
	defer zone.leave()
	var out *C.lc_pool
	err = withJSON(json, op, func(doc *C.char, msg *C.char) C.lc_status {
		return C.lc_pool_new_json_in_zone(doc, zone.ptr, cname, &out, msg, jsonErrorLen)
	})
	if err != nil {
		return nil, err
	}
	return wrapPool(out), nil
}

// JSONSource creates a source from the JSON of one Caddy dynamic_upstreams module object,
// such as {"source": "etcd", "endpoints": ["http://10.0.0.5:2379"], "key": "/services/api/"}:
// an a, srv, docker, etcd or static source, or a multi of several, with leastconn's weight,
// max_requests, tier and grace extensions. Nothing is fetched here: sources run in
// refreshes, never in a Select. Errors as for NewPoolJSON.
func JSONSource(json []byte) (*Source, error) {
	const op = "source from JSON"
	var out *C.lc_source
	err := withJSON(json, op, func(doc *C.char, msg *C.char) C.lc_status {
		return C.lc_source_new_json(doc, &out, msg, jsonErrorLen)
	})
	if err != nil {
		return nil, err
	}
	return newSource(out), nil
}

// withJSON calls f with the document and an error buffer of jsonErrorLen bytes, both in C
// memory, and turns its status into an *Error with the buffer's message as the detail.
func withJSON(json []byte, op string, f func(doc *C.char, msg *C.char) C.lc_status) error {
	// A NUL byte would end the document early in C; JSON allows none outside escapes.
	if i := bytes.IndexByte(json, 0); i >= 0 {
		return &Error{Status: C.LC_ERR_INVALID_CONFIG, Op: op, Detail: fmt.Sprintf("a NUL byte at offset %d", i)}
	}
	doc := C.CString(string(json))
	defer C.free(unsafe.Pointer(doc))
	msg := (*C.char)(C.calloc(1, jsonErrorLen))
	defer C.free(unsafe.Pointer(msg))
	if st := f(doc, msg); st != C.LC_OK {
		return &Error{Status: Status(st), Op: op, Detail: C.GoString(msg)}
	}
	return nil
}
