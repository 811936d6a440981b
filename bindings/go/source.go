package leastconn

// #include "bridge.h"
import "C"

import (
	"fmt"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Upstream is one backend as a source describes it.
type Upstream struct {
	// Dial address: "host:port", "[v6]:port" or "unix/PATH". It is the host's identity:
	// in-flight counts, failures and the down flag are kept per exact address string.
	Address string
	// Relative capacity, 1 to 1000000; 0 means 1.
	Weight uint32
	// Most requests in flight at once; 0 means unlimited; at most 268435456.
	MaxRequests uint32
	// 0 is the primary tier; hosts of tier t are picked only when no host of a lower tier
	// is available. At most 255.
	Tier uint32
	// An opaque value handed back by Pick.Tag; never dereferenced (not a Go pointer: use an
	// index into your own table).
	Tag uintptr
}

// Source produces the upstream list of a pool. A Source is consumed by the NewPool,
// NewPoolInZone, MultiSource or GraceSource call it is given to (also when that call fails); using it
// afterwards gives ErrClosed. Close frees a Source that was never given away. A Source may
// be used from any goroutine, one call at a time.
type Source struct {
	mu  sync.Mutex
	ptr *C.lc_source
	// A CallbackSource's function handle (0 for other sources), deleted when the library
	// drops the source: the tests check with it that a consumer freed the source.
	fetch cgo.Handle
}

func newSource(ptr *C.lc_source) *Source {
	s := &Source{ptr: ptr}
	runtime.SetFinalizer(s, (*Source).Close)
	return s
}

// take hands the C source over to a consumer; the Source is empty afterwards.
func (s *Source) take() (*C.lc_source, error) {
	if s == nil {
		return nil, ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ptr := s.ptr
	s.ptr = nil
	if ptr == nil {
		return nil, ErrClosed
	}
	return ptr, nil
}

// Close frees a Source that was not given away (a callback source's function is released).
// Closing a consumed or closed Source, or a nil one, does nothing. It always returns nil.
func (s *Source) Close() error {
	if ptr, err := s.take(); err == nil {
		C.lc_source_free(ptr)
	}
	return nil
}

// cString copies s into C memory, refusing an embedded NUL (C would silently cut it short).
func cString(s, op string) (*C.char, error) {
	return cStringAs(s, op, C.LC_ERR_INVALID_ADDRESS)
}

// cStringAs is cString with the status of a NUL byte in s.
func cStringAs(s, op string, nulStatus C.lc_status) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, &Error{Status: Status(nulStatus), Op: op, Detail: fmt.Sprintf("%q contains a NUL byte", s)}
	}
	return C.CString(s), nil
}

func weightOrDefault(w uint32) C.uint32_t {
	if w == 0 {
		return 1
	}
	return C.uint32_t(w)
}

// cConfig fills a source's configuration struct or static list in C memory (they hold C
// pointers and integer tags, never Go pointers, so they may be handed to C). It keeps what
// it allocates until free, and the first error met (a NUL byte in a string, a negative
// duration), after which its methods do nothing and return nil or 0.
type cConfig struct {
	op string
	// The status of a NUL byte in a string: what the source's other bad strings get.
	nulStatus C.lc_status
	ptrs      []unsafe.Pointer
	err       error
}

// alloc returns n zeroed elements of size bytes.
func (cc *cConfig) alloc(n int, size uintptr) unsafe.Pointer {
	p := C.calloc(C.size_t(n), C.size_t(size))
	cc.ptrs = append(cc.ptrs, p)
	return p
}

// str copies s, refusing an embedded NUL.
func (cc *cConfig) str(s string) *C.char {
	if cc.err != nil {
		return nil
	}
	p, err := cStringAs(s, cc.op, cc.nulStatus)
	if err != nil {
		cc.err = err
		return nil
	}
	cc.ptrs = append(cc.ptrs, unsafe.Pointer(p))
	return p
}

// optStr is str, or NULL (the library's default) for "".
func (cc *cConfig) optStr(s string) *C.char {
	if s == "" {
		return nil
	}
	return cc.str(s)
}

// strs copies strs into a C array of C strings, returned with its length (NULL for none).
func (cc *cConfig) strs(strs []string) (**C.char, C.size_t) {
	if len(strs) == 0 {
		return nil, 0
	}
	slots := unsafe.Slice((**C.char)(cc.alloc(len(strs), unsafe.Sizeof((*C.char)(nil)))), len(strs))
	for i, s := range strs {
		slots[i] = cc.str(s)
	}
	return &slots[0], C.size_t(len(strs))
}

// millis is the package's millis with cc's op, keeping its error.
func (cc *cConfig) millis(d time.Duration) C.uint64_t {
	if cc.err != nil {
		return 0
	}
	ms, err := millis(d, cc.op)
	cc.err = err
	return ms
}

func (cc *cConfig) free() {
	for _, p := range cc.ptrs {
		C.free(p)
	}
}

// setShared sets the fields of an lc_upstream, or those that a source's configuration gives
// every upstream it yields (weight 0 means 1, as in Upstream).
func setShared(weight, maxRequests, tier *C.uint32_t, tag *unsafe.Pointer, w, m, t uint32, tg uintptr) {
	*weight = weightOrDefault(w)
	*maxRequests = C.uint32_t(m)
	*tier = C.uint32_t(t)
	C.lc_go_set_tag(tag, C.uintptr_t(tg))
}

// StaticSource returns a source that always yields the same list (nginx `server` lines,
// Caddy `to`). Every entry is validated now: the first invalid one fails the call
// (ErrInvalidAddress, ErrInvalidWeight, ErrInvalidLimit, ErrInvalidUTF8).
func StaticSource(upstreams []Upstream) (*Source, error) {
	cc := cConfig{op: "static source", nulStatus: C.LC_ERR_INVALID_ADDRESS}
	defer cc.free()
	var array *C.lc_upstream
	if len(upstreams) > 0 {
		array = (*C.lc_upstream)(cc.alloc(len(upstreams), unsafe.Sizeof(C.lc_upstream{})))
	}
	slots := unsafe.Slice(array, len(upstreams))
	for i, u := range upstreams {
		if slots[i].address = cc.str(u.Address); cc.err != nil {
			return nil, cc.err
		}
		setShared(&slots[i].weight, &slots[i].max_requests, &slots[i].tier, &slots[i].tag,
			u.Weight, u.MaxRequests, u.Tier, u.Tag)
	}
	var out *C.lc_source
	if st := C.lc_source_static_new(array, C.size_t(len(upstreams)), &out); st != C.LC_OK {
		return nil, &Error{Status: Status(st), Op: cc.op}
	}
	return newSource(out), nil
}

// FetchFunc produces the current list on every refresh of a CallbackSource. It is called
// from the goroutine or thread that refreshes (NewPool, Pool.Refresh, a Refresher), never
// concurrently for one pool. Returning an error (or panicking) fails this refresh: the
// failure is logged (see SetLogHook), the pool keeps its previous list, and inside a
// MultiSource the other sources still count. Pool.Close, Refresher.Close and SetLogHook
// called from it return ErrInvalidArgument instead of waiting for the refresh it is in.
type FetchFunc func() ([]Upstream, error)

// CallbackSource returns a source that asks fetch for the list on every refresh (a service
// registry, a file, ...). fetch is kept alive through a runtime/cgo.Handle until the source
// is dropped by the library.
func CallbackSource(fetch FetchFunc) (*Source, error) {
	if fetch == nil {
		return nil, &Error{Status: C.LC_ERR_NULL_POINTER, Op: "callback source", Detail: "nil function"}
	}
	h := cgo.NewHandle(fetch)
	var out *C.lc_source
	st := C.lc_go_callback_new(C.uintptr_t(h), &out)
	if st != C.LC_OK {
		h.Delete() // not taken by the library on failure
		return nil, &Error{Status: Status(st), Op: "callback source"}
	}
	src := newSource(out)
	src.fetch = h
	return src, nil
}

//export leastconnGoFetch
func leastconnGoFetch(h C.uintptr_t, list *C.lc_upstream_list) (st C.lc_status) {
	defer func() {
		if r := recover(); r != nil {
			setListError(list, fmt.Sprintf("callback source panicked: %v", r))
			st = C.LC_ERR_SOURCE_FAILED
		}
	}()
	fetch := cgo.Handle(h).Value().(FetchFunc)
	upstreams, err := fetch()
	if err != nil {
		setListError(list, "callback source: "+err.Error())
		return C.LC_ERR_SOURCE_FAILED
	}
	for _, u := range upstreams {
		if strings.IndexByte(u.Address, 0) >= 0 {
			setListError(list, fmt.Sprintf("callback source: address %q contains a NUL byte", u.Address))
			return C.LC_ERR_INVALID_ADDRESS
		}
		addr := C.CString(u.Address)
		st := C.lc_go_push(list, addr, weightOrDefault(u.Weight), C.uint32_t(u.MaxRequests),
			C.uint32_t(u.Tier), C.uintptr_t(u.Tag))
		C.free(unsafe.Pointer(addr))
		if st != C.LC_OK {
			setListError(list, fmt.Sprintf("callback source: upstream %q: %s", u.Address, Status(st)))
			return st
		}
	}
	return C.LC_OK
}

func setListError(list *C.lc_upstream_list, msg string) {
	cmsg := C.CString(strings.ReplaceAll(msg, "\x00", "\\0"))
	C.lc_upstream_list_set_error(list, cmsg)
	C.free(unsafe.Pointer(cmsg))
}

//export leastconnGoFreeHandle
func leastconnGoFreeHandle(h C.uintptr_t) {
	cgo.Handle(h).Delete()
}

// MultiSource returns Caddy's `multi`: the sources asked in order, their lists appended. A
// source that fails is logged and skipped. Every source given is consumed, also on error;
// a closed or consumed one (or the same one twice) gives ErrClosed.
func MultiSource(sources ...*Source) (*Source, error) {
	ptrs := make([]*C.lc_source, 0, len(sources))
	var failed error
	for _, s := range sources {
		ptr, err := s.take()
		if err != nil {
			failed = err
			continue
		}
		ptrs = append(ptrs, ptr)
	}
	var multi *C.lc_source
	var st C.lc_status = C.LC_OK
	if failed == nil {
		st = C.lc_source_multi_new(&multi)
	}
	if failed != nil || st != C.LC_OK {
		for _, ptr := range ptrs {
			C.lc_source_free(ptr)
		}
		if failed != nil {
			return nil, failed
		}
		return nil, &Error{Status: Status(st), Op: "multi source"}
	}
	for i, ptr := range ptrs {
		if st := C.lc_source_multi_add(multi, ptr); st != C.LC_OK {
			// ptr was consumed by the failed add; the ones after it were not added.
			for _, rest := range ptrs[i+1:] {
				C.lc_source_free(rest)
			}
			C.lc_source_free(multi)
			return nil, &Error{Status: Status(st), Op: "multi source"}
		}
	}
	return newSource(multi), nil
}

// GraceSource wraps inner so that when it fails, its last good list is served for up to
// period from the first failure (Caddy's `srv` grace period, for any source). period 0
// disables the grace. inner is consumed, also on error.
func GraceSource(inner *Source, period time.Duration) (*Source, error) {
	ptr, err := inner.take()
	if err != nil {
		return nil, err
	}
	ms, err := millis(period, "grace source")
	if err != nil {
		C.lc_source_free(ptr)
		return nil, err
	}
	var out *C.lc_source
	if st := C.lc_source_grace_new(ptr, ms, &out); st != C.LC_OK {
		return nil, &Error{Status: Status(st), Op: "grace source"}
	}
	return newSource(out), nil
}

// millis converts a duration to whole milliseconds, rounding a positive fraction up so that
// a non-zero duration never becomes 0; negative durations are ErrInvalidLimit.
func millis(d time.Duration, op string) (C.uint64_t, error) {
	if d < 0 {
		return 0, &Error{Status: C.LC_ERR_INVALID_LIMIT, Op: op, Detail: "negative duration " + d.String()}
	}
	return C.uint64_t((d + time.Millisecond - 1) / time.Millisecond), nil
}

// Other kinds of source have files of their own: dns.go (a, srv), docker.go, etcd.go, and
// json.go (a source from Caddy's JSON).
