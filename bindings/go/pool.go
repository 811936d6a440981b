package leastconn

// #include "bridge.h"
import "C"

import (
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Policy says how a pick chooses among the available hosts of a tier.
type Policy uint32

const (
	// LeastConn: fewest in-flight requests per unit of weight, ties at random (Caddy's
	// least_conn). The default.
	LeastConn Policy = C.LC_POLICY_LEAST_CONN
	// First: the first available host in list order (the multi failover pattern).
	First Policy = C.LC_POLICY_FIRST
	// P2C: the less loaded of two random available hosts.
	P2C Policy = C.LC_POLICY_P2C
)

// Config holds a pool's settings. Start from DefaultConfig so that fields added later keep
// their defaults.
type Config struct {
	Policy Policy
	// Passive health: failures (releases with Failure) within FailDuration that make a host
	// unavailable until the oldest leaves the window; 0 turns passive health off.
	MaxFails uint32
	// The passive-health window (whole milliseconds, rounded up); above 0 when MaxFails is.
	FailDuration time.Duration
}

// DefaultConfig is least_conn with 1 failure in 10 s.
func DefaultConfig() Config {
	var c C.lc_pool_config
	C.lc_pool_config_default(&c)
	return Config{
		Policy:       Policy(c.policy),
		MaxFails:     uint32(c.max_fails),
		FailDuration: time.Duration(c.fail_duration_ms) * time.Millisecond,
	}
}

// HostID is a host's identity, never 0 and never reused in the process: put the IDs of the
// hosts already tried in Select's arguments when retrying a request.
type HostID uint64

// Pool is a least-connections pool of upstreams.
//
// Every method may be called from any number of goroutines at once, Close included: calls
// that start after Close get ErrClosed, and Close frees the library's pool once the calls
// in progress have returned. Picks outlive their pool: releasing one after Close is valid.
// Close from inside a FetchFunc or a LogHook is refused (ErrInvalidArgument), as the call
// it would wait for may be the one it is in; a goroutine that such a callback starts and
// waits for must not Close either.
type Pool struct {
	ptr *C.lc_pool
	calls
}

// calls counts the calls in progress on a library object (a Pool, a Zone) so that Close
// frees it only once they have returned.
type calls struct {
	// Calls in progress, plus closedBit once Close has begun. One atomic add per call: no
	// lock and no retry loop on the Select path.
	state     atomic.Int64
	closeOnce sync.Once
	drainOnce sync.Once
	drained   chan struct{}
}

const closedBit = 1 << 62

func newCalls() calls { return calls{drained: make(chan struct{})} }

func (c *calls) enter() error {
	// The add orders this call against Close: either Close sees it in the count and waits,
	// or this call sees closedBit and backs off.
	if c.state.Add(1)&closedBit != 0 {
		c.leave()
		return ErrClosed
	}
	return nil
}

func (c *calls) leave() {
	if c.state.Add(-1) == closedBit {
		c.drainOnce.Do(func() { close(c.drained) })
	}
}

// close runs free once, after the calls in progress have returned; calls that start later
// get ErrClosed.
func (c *calls) close(free func()) {
	c.closeOnce.Do(func() {
		if c.state.Add(closedBit) != closedBit {
			<-c.drained
		}
		free()
	})
}

// NewPool creates a pool fed by source (consumed, also on error) and refreshes it once; a
// failing first refresh is logged and leaves the pool empty. config may be nil for
// DefaultConfig(). Errors: ErrClosed (source consumed already), ErrInvalidArgument (unknown
// policy), ErrInvalidLimit (MaxFails above 1024, or MaxFails with a zero FailDuration).
func NewPool(source *Source, config *Config) (*Pool, error) {
	src, err := source.take()
	if err != nil {
		return nil, err
	}
	cfg, err := poolConfig(config, src, "new pool")
	if err != nil {
		return nil, err
	}
	var out *C.lc_pool
	if st := C.lc_pool_new(cfg, src, &out); st != C.LC_OK {
		return nil, &Error{Status: Status(st), Op: "new pool"}
	}
	return wrapPool(out), nil
}

// poolConfig is config in C (nil for nil: the library's defaults). On error it frees src,
// which the pool constructors consume in every case.
func poolConfig(config *Config, src *C.lc_source, op string) (*C.lc_pool_config, error) {
	if config == nil {
		return nil, nil
	}
	ms, err := millis(config.FailDuration, op)
	if err != nil {
		C.lc_source_free(src)
		return nil, err
	}
	return &C.lc_pool_config{policy: C.lc_policy(config.Policy), max_fails: C.uint32_t(config.MaxFails), fail_duration_ms: ms}, nil
}

// NewPoolJSON (json.go) builds a pool from Caddy's JSON; every constructor ends in wrapPool.

func wrapPool(ptr *C.lc_pool) *Pool {
	p := &Pool{ptr: ptr, calls: newCalls()}
	runtime.SetFinalizer(p, (*Pool).Close)
	return p
}

func (p *Pool) enter() error {
	if p == nil {
		return ErrClosed
	}
	return p.calls.enter()
}

// Close frees the pool after the calls in progress return. Outstanding picks stay valid; a
// Refresher keeps refreshing until its own Close. Closing twice, or a nil pool, does nothing
// and returns nil. From inside a FetchFunc or a LogHook (where the call in progress may be
// this pool's own refresh) it closes nothing and returns ErrInvalidArgument.
func (p *Pool) Close() error {
	if p == nil {
		return nil
	}
	if err := refuseInCallback("close pool"); err != nil {
		return err
	}
	p.calls.close(func() {
		C.lc_pool_free(p.ptr)
		runtime.SetFinalizer(p, nil)
	})
	return nil
}

// Select picks a host by the pool's policy and reserves it for one request; none of the
// excluded hosts is picked. ErrNoUpstream when no host is available, or when 8 reservations
// in one select lost their race to other threads filling or downing the hosts it chose (the
// bound that keeps a select wait-free; CONCURRENCY.md, known anomalies). The Pick must be
// released exactly once (see Pick.Release).
func (p *Pool) Select(excluded ...HostID) (*Pick, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	sel := C.lc_go_select(handle(unsafe.Pointer(p.ptr)), exclusions(excluded), C.size_t(len(excluded)))
	p.leave()
	return newPick(sel)
}

// handle passes a library object (a pool, a picker: C memory) to the select helpers as an
// integer. As a pointer to an incomplete C type, cgo could not tell it holds no Go pointer
// and would box it into an interface for its check: an allocation on every select.
func handle(ptr unsafe.Pointer) C.uintptr_t { return C.uintptr_t(uintptr(ptr)) }

// exclusions passes the IDs to C in place: HostID is a uint64, and C reads the array only
// during the call.
func exclusions(excluded []HostID) *C.uint64_t {
	if len(excluded) == 0 {
		return nil
	}
	return (*C.uint64_t)(unsafe.Pointer(&excluded[0]))
}

// RefreshReport says what a refresh did.
type RefreshReport struct {
	Upstreams  int    // entries in the new list
	Hosts      int    // host states alive after the refresh
	Reclaimed  int    // host states reclaimed by this refresh
	Generation uint64 // the new list's generation
}

// Refresh asks the source for the current list now and publishes it. ErrSourceFailed when
// the source failed (the current list stays).
func (p *Pool) Refresh() (RefreshReport, error) {
	if err := p.enter(); err != nil {
		return RefreshReport{}, err
	}
	defer p.leave()
	var r C.lc_refresh_report
	if st := C.lc_pool_refresh(p.ptr, &r); st != C.LC_OK {
		return RefreshReport{}, &Error{Status: Status(st), Op: "refresh"}
	}
	return RefreshReport{int(r.upstreams), int(r.hosts), int(r.reclaimed), uint64(r.generation)}, nil
}

// SetDown marks the host with this address down (no new picks) or up again. ErrNotFound
// when the pool knows no such host.
func (p *Pool) SetDown(address string, down bool) error {
	if err := p.enter(); err != nil {
		return err
	}
	defer p.leave()
	addr, err := cString(address, "set down")
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(addr))
	return checkDetail(C.lc_pool_set_down(p.ptr, addr, C.bool(down)), "set down", "%q", address)
}

// HostStats is a point-in-time view of one host; counters are read one by one while picks
// go on.
type HostStats struct {
	Address        string
	HostID         HostID
	Picks          uint64 // reservations ever made (released or in flight)
	InFlight       uint32
	RecentFailures uint32 // failures inside the passive-health window
	MaxRequests    uint32 // 0 = unlimited
	Down           bool   // marked down with SetDown
	Unhealthy      bool   // inside its passive-failure window
	Full           bool   // at its MaxRequests limit
	Listed         bool   // in the current list (false: removed, draining)
}

func hostStats(address string, s *C.lc_host_stats) HostStats {
	return HostStats{
		Address:        address,
		HostID:         HostID(s.host_id),
		Picks:          uint64(s.picks),
		InFlight:       uint32(s.in_flight),
		RecentFailures: uint32(s.recent_failures),
		MaxRequests:    uint32(s.max_requests),
		Down:           bool(s.down),
		Unhealthy:      bool(s.unhealthy),
		Full:           bool(s.full),
		Listed:         bool(s.listed),
	}
}

// Stats returns the statistics of every host of the current list, in list order.
func (p *Pool) Stats() ([]HostStats, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	var out []HostStats
	h := cgo.NewHandle(&out)
	defer h.Delete()
	if st := C.lc_go_stats(p.ptr, C.uintptr_t(h)); st != C.LC_OK {
		return nil, &Error{Status: Status(st), Op: "stats"}
	}
	return out, nil
}

//export leastconnGoStats
func leastconnGoStats(h C.uintptr_t, address *C.char, s *C.lc_host_stats) {
	out := cgo.Handle(h).Value().(*[]HostStats)
	*out = append(*out, hostStats(C.GoString(address), s))
}

// HostStats returns the statistics of the host with this address, listed or still
// draining after its removal. ErrNotFound when the pool knows no such host.
func (p *Pool) HostStats(address string) (HostStats, error) {
	if err := p.enter(); err != nil {
		return HostStats{}, err
	}
	defer p.leave()
	addr, err := cString(address, "host stats")
	if err != nil {
		return HostStats{}, err
	}
	defer C.free(unsafe.Pointer(addr))
	var s C.lc_host_stats
	if st := C.lc_pool_host_stats(p.ptr, addr, &s); st != C.LC_OK {
		return HostStats{}, checkDetail(st, "host stats", "%q", address)
	}
	return hostStats(address, &s), nil
}

// Refresher refreshes a pool on a library thread until Close.
type Refresher struct {
	mu  sync.Mutex
	ptr *C.lc_refresher
}

// StartRefresher starts a thread that refreshes the pool at once and then every interval
// (at least 1 ms). Failures are logged (SetLogHook). The refresher keeps the pool's state
// alive: the Pool may be closed first.
func (p *Pool) StartRefresher(interval time.Duration) (*Refresher, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	ms, err := millis(interval, "start refresher")
	if err != nil {
		return nil, err
	}
	var out *C.lc_refresher
	if st := C.lc_refresher_start(p.ptr, ms, &out); st != C.LC_OK {
		return nil, checkDetail(st, "start refresher", "interval %v", interval)
	}
	r := &Refresher{ptr: out}
	runtime.SetFinalizer(r, (*Refresher).Close)
	return r, nil
}

// Close stops the refresher and waits for its thread. Closing twice does nothing and returns
// nil. From inside a FetchFunc or a LogHook (which may be running on the refresher's own
// thread) it stops nothing and returns ErrInvalidArgument.
func (r *Refresher) Close() error {
	if r == nil {
		return nil
	}
	if err := refuseInCallback("close refresher"); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ptr != nil {
		C.lc_refresher_stop(r.ptr)
		r.ptr = nil
	}
	return nil
}

// Picker selects like Pool.Select with the list cached and its own random generator: the
// fastest way to pick. Not safe for concurrent use: one goroutine at a time (e.g. one per
// worker goroutine); its picks may be released from any goroutine.
type Picker struct {
	ptr *C.lc_picker
}

// NewPicker creates a picker; seed 0 picks a random seed. It keeps the pool's state alive.
func (p *Pool) NewPicker(seed uint64) (*Picker, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	var out *C.lc_picker
	if st := C.lc_picker_new(p.ptr, C.uint64_t(seed), &out); st != C.LC_OK {
		return nil, &Error{Status: Status(st), Op: "new picker"}
	}
	pk := &Picker{ptr: out}
	runtime.SetFinalizer(pk, (*Picker).Close)
	return pk, nil
}

// Select is Pool.Select through the picker. ErrClosed after Close.
func (pk *Picker) Select(excluded ...HostID) (*Pick, error) {
	if pk == nil || pk.ptr == nil {
		return nil, ErrClosed
	}
	sel := C.lc_go_picker_select(handle(unsafe.Pointer(pk.ptr)), exclusions(excluded), C.size_t(len(excluded)))
	// Until the select returns: a Picker no longer used after it could otherwise be
	// collected during the call, and its finalizer free the lc_picker under it.
	runtime.KeepAlive(pk)
	return newPick(sel)
}

// Release is p.Release(outcome) through the picker (lc_picker_release): a pick on a zone
// pool's host is attributed through the picker's own record in the zone instead of the
// calling thread's, so a goroutine that picks and releases only through its picker needs
// no record of its own in the zone. Any Pick may be given (of any pool, on a zone or not);
// the counts are the same either way. Same goroutine rules as Select. ErrClosed after
// Close (the pick is then not released: release it with p.Release); otherwise the errors
// of Pick.Release.
func (pk *Picker) Release(p *Pick, outcome Outcome) error {
	if pk == nil || pk.ptr == nil {
		return ErrClosed
	}
	err := p.release(pk.ptr, outcome)
	runtime.KeepAlive(pk)
	return err
}

// Close frees the picker; its picks stay valid. Closing twice does nothing.
func (pk *Picker) Close() error {
	if pk != nil && pk.ptr != nil {
		C.lc_picker_free(pk.ptr)
		pk.ptr = nil
	}
	return nil
}

// ThreadWarmup prepares the OS thread the calling goroutine runs on so that the library's
// selects on it are wait-free from the first one on (lc_thread_warmup). A thread's first
// select otherwise may allocate, take the C library's thread-exit lock and make system
// calls (registering the thread), once; nothing is wrong without it. A Go Select still
// allocates its Pick and the C memory of its lc_pick every time. Go moves goroutines
// between threads, so this helps a goroutine that called runtime.LockOSThread first (a
// worker pinned to its thread, which then warms up once); on any other goroutine it warms
// only the thread it happens to run on now. NewPicker warms the thread it runs on in the
// same way. Cheap and idempotent; any goroutine, at any time.
func ThreadWarmup() {
	C.lc_thread_warmup()
}

// Outcome says how the request sent to a picked host ended.
type Outcome uint32

const (
	Success Outcome = C.LC_OUTCOME_SUCCESS // the request completed
	Failure Outcome = C.LC_OUTCOME_FAILURE // it failed: counts towards passive health
)

// Pick is one host reserved for one request: it counts in the host's in-flight requests
// until Release. Release every Pick exactly once (defer it): like a C lc_pick, and unlike
// the Rust reservation, a Pick that is dropped unreleased holds its host's reservation (and
// its lc_pick in C memory) for the life of the process; there is no finalizer, which
// would put a runtime lock and a GC special on every Select. Its accessors may be used from
// any goroutine, also after Release.
type Pick struct {
	// The library's pick, in C memory so that it never moves between select and release
	// (the library may bind it to its address); freed by the release.
	c        *C.lc_pick
	released atomic.Bool
	address  string
	hostID   HostID
	index    int
	tag      uintptr
}

func newPick(sel C.lc_go_selected) (*Pick, error) {
	if sel.status != C.LC_OK {
		return nil, &Error{Status: Status(sel.status), Op: "select"}
	}
	c := sel.pick
	return &Pick{
		c:       c,
		address: C.GoString(c.address),
		hostID:  HostID(c.host_id),
		index:   int(c.index),
		tag:     uintptr(c.tag),
	}, nil
}

// Address is the host's dial address.
func (p *Pick) Address() string { return p.address }

// HostID is the host's identity, for Select's exclusions on a retry.
func (p *Pick) HostID() HostID { return p.hostID }

// Index is the position of the picked entry in the list it was picked from.
func (p *Pick) Index() int { return p.index }

// Tag is the Upstream.Tag of the picked entry.
func (p *Pick) Tag() uintptr { return p.tag }

// Release ends the request with its outcome; Failure counts towards passive health. It lands
// on the host the pick was made on, also after the host left the list or the pool was
// closed. Any goroutine; a second Release (also a concurrent one) changes nothing and gets
// ErrAlreadyReleased. An unknown outcome gives ErrInvalidArgument and releases nothing.
func (p *Pick) Release(outcome Outcome) error {
	return p.release(nil, outcome)
}

// release is Release through picker, or through no picker when it is nil.
func (p *Pick) release(picker *C.lc_picker, outcome Outcome) error {
	if outcome != Success && outcome != Failure {
		return &Error{Status: C.LC_ERR_INVALID_ARGUMENT, Op: "release", Detail: fmt.Sprintf("unknown outcome %d", outcome)}
	}
	if p == nil || !p.released.CompareAndSwap(false, true) {
		return &Error{Status: C.LC_ERR_ALREADY_RELEASED, Op: "release"}
	}
	st := C.lc_go_release(picker, p.c, C.lc_outcome(outcome))
	runtime.KeepAlive(p)
	return check(st, "release")
}
