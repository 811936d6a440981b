package leastconn

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// staticPool is a pool of a mustStatic source, closed at the end of the test.
func staticPool(tb testing.TB, config *Config, addrs ...string) *Pool {
	tb.Helper()
	pool, err := NewPool(mustStatic(tb, addrs...), config)
	if err != nil {
		tb.Fatalf("NewPool: %v", err)
	}
	tb.Cleanup(func() { pool.Close() })
	return pool
}

func inFlight(t *testing.T, pool *Pool, addr string) uint32 {
	t.Helper()
	s, err := pool.HostStats(addr)
	if err != nil {
		t.Fatalf("HostStats(%q): %v", addr, err)
	}
	return s.InFlight
}

// captureLog sets a log hook for the test and returns what it received.
func captureLog(t *testing.T) func() string {
	t.Helper()
	var mu sync.Mutex
	var buf bytes.Buffer
	if err := SetLogHook(func(level LogLevel, msg string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(&buf, "%s %s\n", level, msg)
	}, LogDebug); err != nil {
		t.Fatalf("SetLogHook: %v", err)
	}
	t.Cleanup(func() { SetLogHook(nil, LogOff) })
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return buf.String()
	}
}

// errorLines is the ERROR records of a captureLog log (the watcher threads also log
// warnings and debug records, as many as their retries, which depend on timing).
func errorLines(log string) []string {
	var errs []string
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "ERROR ") {
			errs = append(errs, line)
		}
	}
	return errs
}

// multiSkipsFailingSource makes a pool (closed at the end of the test) of a multi of the
// static host 10.0.0.1:80 and failing, a source whose refresh fails: the first refresh logs
// one ERROR record, starting with wantLog, and skips it; the static host is picked.
func multiSkipsFailingSource(t *testing.T, failing *Source, wantLog string) *Pool {
	t.Helper()
	logged := captureLog(t)
	multi, err := MultiSource(mustStatic(t, "10.0.0.1:80"), failing)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := NewPool(multi, nil) // the first refresh runs here
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	if errs := errorLines(logged()); len(errs) != 1 || !strings.HasPrefix(errs[0], wantLog) {
		t.Fatalf("errors logged %q, want one starting %q", errs, wantLog)
	}
	pick, err := pool.Select()
	if err != nil || pick.Address() != "10.0.0.1:80" {
		t.Fatalf("select: %v %v", pick, err)
	}
	if err := pick.Release(Success); err != nil {
		t.Fatal(err)
	}
	return pool
}

// failsAlone: a pool of failing alone builds, empty: its refresh fails and nothing is
// picked. The failures are logged to a captureLog.
func failsAlone(t *testing.T, failing *Source) {
	t.Helper()
	captureLog(t)
	pool, err := NewPool(failing, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Refresh(); !errors.Is(err, ErrSourceFailed) {
		t.Fatalf("refresh of the source alone: %v", err)
	}
	if _, err := pool.Select(); !errors.Is(err, ErrNoUpstream) {
		t.Fatalf("select: %v", err)
	}
}

// failingSource is a callback source whose every fetch fails with msg.
func failingSource(t *testing.T, msg string) *Source {
	t.Helper()
	src, err := CallbackSource(func() ([]Upstream, error) { return nil, errors.New(msg) })
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// failingPool is a pool (closed at the end of the test) of a failingSource: its first
// refresh, in NewPool, fails and logs msg, and leaves it empty.
func failingPool(t *testing.T, msg string) *Pool {
	t.Helper()
	pool, err := NewPool(failingSource(t, msg), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return pool
}

// listed is the addresses of the pool's current list, in order, separated by spaces.
func listed(t *testing.T, pool *Pool) string {
	t.Helper()
	stats, err := pool.Stats()
	if err != nil {
		t.Fatal(err)
	}
	addrs := make([]string, len(stats))
	for i, s := range stats {
		addrs[i] = s.Address
	}
	return strings.Join(addrs, " ")
}

func TestVersionMatchesTheHeader(t *testing.T) {
	if v := Version(); strings.Count(v, ".") != 2 {
		t.Fatalf("Version() = %q", v)
	}
}

// hourWindow keeps a failed host unhealthy for the whole test, however slow the machine.
var hourWindow = &Config{Policy: LeastConn, MaxFails: 1, FailDuration: time.Hour}

func TestSelectWithExclusionsThenReleaseEmptiesInFlight(t *testing.T) {
	pool := staticPool(t, hourWindow, "127.0.0.1:1001", "127.0.0.1:1002")
	a, err := pool.Select()
	if err != nil {
		t.Fatal(err)
	}
	b, err := pool.Select(a.HostID())
	if err != nil {
		t.Fatal(err)
	}
	if a.Address() == b.Address() || a.HostID() == b.HostID() {
		t.Fatalf("the retry landed on the excluded host %s", b.Address())
	}
	if _, err := pool.Select(a.HostID(), b.HostID()); !errors.Is(err, ErrNoUpstream) {
		t.Fatalf("every host excluded: got %v, want ErrNoUpstream", err)
	}
	if got := a.Tag(); got != uintptr(100+a.Index()) {
		t.Fatalf("tag %d for index %d", got, a.Index())
	}
	stats, err := pool.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 2 || stats[0].Address != "127.0.0.1:1001" || stats[1].Address != "127.0.0.1:1002" {
		t.Fatalf("stats %+v", stats)
	}
	for _, s := range stats {
		if s.InFlight != 1 || s.Picks != 1 || !s.Listed {
			t.Fatalf("stats %+v, want one pick in flight", s)
		}
	}
	if err := a.Release(Success); err != nil {
		t.Fatal(err)
	}
	if err := b.Release(Failure); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"127.0.0.1:1001", "127.0.0.1:1002"} {
		if n := inFlight(t, pool, addr); n != 0 {
			t.Fatalf("%s: %d in flight after the releases", addr, n)
		}
	}
	s, _ := pool.HostStats(b.Address())
	if s.RecentFailures != 1 || !s.Unhealthy {
		t.Fatalf("after a failure (max_fails 1): %+v", s)
	}
}

func TestErrorsCarryStatusAndCompareWithErrorsIs(t *testing.T) {
	pool := staticPool(t, nil)
	_, err := pool.Select()
	if !errors.Is(err, ErrNoUpstream) || errors.Is(err, ErrNotFound) {
		t.Fatalf("empty pool: %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != 6 || e.Op != "select" {
		t.Fatalf("errors.As: %#v", err)
	}
	if !strings.HasPrefix(err.Error(), "leastconn: select: ") || strings.Contains(err.Error(), "unknown status") {
		t.Fatalf("message %q", err.Error())
	}
	wrapped := fmt.Errorf("proxy: %w", err)
	if !errors.Is(wrapped, ErrNoUpstream) {
		t.Fatal("errors.Is through a wrapper")
	}
	// A status this package has no variable for still works, with the library's message.
	unknown := &Error{Status: 4000}
	if unknown.Error() != "leastconn: unknown status" || errors.Is(unknown, ErrPanic) {
		t.Fatalf("unknown status: %q", unknown.Error())
	}
	if ErrPickMoved.Status != 14 || ErrNotInFlight.Status != 15 || ErrInvalidConfig.Status != 16 ||
		ErrZoneIncompatible.Status != 17 || ErrZoneTooSmall.Status != 18 || ErrZoneFull.Status != 19 ||
		ErrZoneBusy.Status != 20 {
		t.Fatal("reserved statuses renumbered")
	}
	for _, e := range []*Error{ErrZoneIncompatible, ErrZoneTooSmall, ErrZoneFull, ErrZoneBusy} {
		if strings.Contains(e.Error(), "unknown status") {
			t.Fatalf("status %d has no message: %q", e.Status, e.Error())
		}
	}
}

func TestBadInputGivesErrorsNotCrashes(t *testing.T) {
	cases := []struct {
		up   Upstream
		want error
	}{
		{Upstream{Address: ""}, ErrInvalidAddress},
		{Upstream{Address: "no-port"}, ErrInvalidAddress},
		{Upstream{Address: "127.0.0.1:80\x00evil:81"}, ErrInvalidAddress},
		{Upstream{Address: "\xff\xfe:80"}, ErrInvalidUTF8},
		{Upstream{Address: "127.0.0.1:80", Weight: 1000001}, ErrInvalidWeight},
		{Upstream{Address: "127.0.0.1:80", MaxRequests: 1<<28 + 1}, ErrInvalidLimit},
		{Upstream{Address: "127.0.0.1:80", Tier: 256}, ErrInvalidLimit},
	}
	for _, c := range cases {
		if _, err := StaticSource([]Upstream{{Address: "127.0.0.1:1"}, c.up}); !errors.Is(err, c.want) {
			t.Errorf("%+v: got %v, want %v", c.up, err, c.want)
		}
	}
	if _, err := NewPool(mustStatic(t, "127.0.0.1:1"), &Config{Policy: 7}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("unknown policy: %v", err)
	}
	if _, err := NewPool(mustStatic(t, "127.0.0.1:1"), &Config{MaxFails: 1}); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("max_fails without a window: %v", err)
	}
	if _, err := NewPool(mustStatic(t, "127.0.0.1:1"), &Config{MaxFails: 1, FailDuration: -time.Second}); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("negative window: %v", err)
	}
	pool := staticPool(t, nil, "127.0.0.1:1")
	if err := pool.SetDown("127.0.0.1:2", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetDown of an unknown host: %v", err)
	}
	if _, err := pool.HostStats("a\x00b"); !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("HostStats with a NUL: %v", err)
	}
	if _, err := pool.StartRefresher(0); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("refresher interval 0: %v", err)
	}
	if _, err := pool.StartRefresher(-time.Second); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("negative refresher interval: %v", err)
	}
	if err := pool.SetDown("a\x00b", true); !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("SetDown with a NUL: %v", err)
	}
	if _, err := CallbackSource(nil); !errors.Is(err, ErrNullPointer) {
		t.Errorf("nil callback: %v", err)
	}
}

// mustStatic is a static source of addrs, each with weight 1 and tag 100 + its index.
func mustStatic(tb testing.TB, addrs ...string) *Source {
	tb.Helper()
	ups := make([]Upstream, len(addrs))
	for i, a := range addrs {
		ups[i] = Upstream{Address: a, Tag: uintptr(100 + i)}
	}
	src, err := StaticSource(ups)
	if err != nil {
		tb.Fatalf("StaticSource: %v", err)
	}
	return src
}

func TestDoubleReleaseChangesNothing(t *testing.T) {
	pool := staticPool(t, nil, "127.0.0.1:1")
	pick, err := pool.Select()
	if err != nil {
		t.Fatal(err)
	}
	if err := pick.Release(Outcome(9)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("unknown outcome: %v", err)
	}
	if n := inFlight(t, pool, "127.0.0.1:1"); n != 1 {
		t.Fatalf("an invalid release released: %d in flight", n)
	}
	if err := pick.Release(Success); err != nil {
		t.Fatal(err)
	}
	if err := pick.Release(Success); !errors.Is(err, ErrAlreadyReleased) {
		t.Fatalf("second release: %v", err)
	}
	if err := pick.Release(Failure); !errors.Is(err, ErrAlreadyReleased) {
		t.Fatalf("third release: %v", err)
	}
	s, _ := pool.HostStats("127.0.0.1:1")
	if s.InFlight != 0 || s.Picks != 1 || s.RecentFailures != 0 {
		t.Fatalf("after repeated releases: %+v", s)
	}
	if pick.Address() != "127.0.0.1:1" {
		t.Fatalf("address after release: %q", pick.Address())
	}
}

func TestRacingReleasesOfOnePickExactlyOneWins(t *testing.T) {
	pool := staticPool(t, nil, "127.0.0.1:1")
	for round := 0; round < 50; round++ {
		pick, err := pool.Select()
		if err != nil {
			t.Fatal(err)
		}
		var ok, already atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				switch err := pick.Release(Success); {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrAlreadyReleased):
					already.Add(1)
				default:
					t.Errorf("release: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || already.Load() != 7 {
			t.Fatalf("round %d: %d releases succeeded, %d refused", round, ok.Load(), already.Load())
		}
	}
	if s, _ := pool.HostStats("127.0.0.1:1"); s.InFlight != 0 || s.Picks != 50 {
		t.Fatalf("%+v", s)
	}
}

func TestUseAfterCloseGivesErrClosed(t *testing.T) {
	src := mustStatic(t, "127.0.0.1:1")
	pool, err := NewPool(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	pick, err := pool.Select()
	if err != nil {
		t.Fatal(err)
	}
	picker, err := pool.NewPicker(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := pool.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pool.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := pool.Select(); !errors.Is(err, ErrClosed) {
		t.Errorf("Select: %v", err)
	}
	if _, err := pool.Refresh(); !errors.Is(err, ErrClosed) {
		t.Errorf("Refresh: %v", err)
	}
	if _, err := pool.Stats(); !errors.Is(err, ErrClosed) {
		t.Errorf("Stats: %v", err)
	}
	if _, err := pool.HostStats("127.0.0.1:1"); !errors.Is(err, ErrClosed) {
		t.Errorf("HostStats: %v", err)
	}
	if err := pool.SetDown("127.0.0.1:1", true); !errors.Is(err, ErrClosed) {
		t.Errorf("SetDown: %v", err)
	}
	if _, err := pool.StartRefresher(time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("StartRefresher: %v", err)
	}
	if _, err := pool.NewPicker(0); !errors.Is(err, ErrClosed) {
		t.Errorf("NewPicker: %v", err)
	}
	// The picker keeps the pool's state alive; the pick made before Close is still valid.
	late, err := picker.Select()
	if err != nil {
		t.Fatalf("picker after the pool's Close: %v", err)
	}
	picker.Close()
	if _, err := picker.Select(); !errors.Is(err, ErrClosed) {
		t.Errorf("picker Select after Close: %v", err)
	}
	if err := pick.Release(Success); err != nil {
		t.Errorf("release after the pool's Close: %v", err)
	}
	if err := late.Release(Success); err != nil {
		t.Errorf("release after the picker's Close: %v", err)
	}
	if _, err := NewPool(src, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("a consumed source reused: %v", err)
	}
	var nilPool *Pool
	if _, err := nilPool.Select(); !errors.Is(err, ErrClosed) {
		t.Errorf("nil pool: %v", err)
	}
}

func TestCloseWhileGoroutinesSelect(t *testing.T) {
	pool := staticPool(t, nil, "127.0.0.1:1", "127.0.0.1:2")
	var wg sync.WaitGroup
	var selected atomic.Int64
	firstRound := make(chan struct{}, 4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				pick, err := pool.Select()
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("select: %v", err)
					return
				}
				selected.Add(1)
				if err := pick.Release(Success); err != nil {
					t.Errorf("release: %v", err)
				}
				if i == 100 {
					firstRound <- struct{}{}
				}
			}
		}()
	}
	for g := 0; g < 4; g++ {
		<-firstRound
	}
	pool.Close()
	wg.Wait()
	if selected.Load() < 4*101 {
		t.Fatalf("%d selections", selected.Load())
	}
}

func TestCallbackSourceFollowsItsFunction(t *testing.T) {
	logged := captureLog(t)
	var mu sync.Mutex
	list := []Upstream{{Address: "127.0.0.1:1"}}
	var fail error
	panicking := false
	src, err := CallbackSource(func() ([]Upstream, error) {
		mu.Lock()
		defer mu.Unlock()
		if panicking {
			panic("registry exploded")
		}
		return list, fail
	})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := NewPool(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	set := func(f func()) { mu.Lock(); f(); mu.Unlock() }

	set(func() { list = []Upstream{{Address: "127.0.0.1:1"}, {Address: "127.0.0.1:2", Weight: 3}} })
	r, err := pool.Refresh()
	if err != nil || r.Upstreams != 2 || r.Generation != 2 {
		t.Fatalf("refresh: %+v %v", r, err)
	}

	set(func() { fail = errors.New("registry unreachable") })
	if _, err := pool.Refresh(); !errors.Is(err, ErrSourceFailed) {
		t.Fatalf("failing callback: %v", err)
	}
	set(func() { fail = nil; panicking = true })
	if _, err := pool.Refresh(); !errors.Is(err, ErrSourceFailed) {
		t.Fatalf("panicking callback: %v", err)
	}
	set(func() { panicking = false; list = []Upstream{{Address: "bad address"}} })
	if _, err := pool.Refresh(); !errors.Is(err, ErrSourceFailed) {
		t.Fatalf("bad address from the callback: %v", err)
	}
	set(func() { list = []Upstream{{Address: "127.0.0.1:3\x00"}} })
	if _, err := pool.Refresh(); !errors.Is(err, ErrSourceFailed) {
		t.Fatalf("NUL in an address from the callback: %v", err)
	}
	// Every failure kept the last good list.
	stats, err := pool.Stats()
	if err != nil || len(stats) != 2 {
		t.Fatalf("list after failures: %+v %v", stats, err)
	}
	out := logged()
	for _, want := range []string{"registry unreachable", "callback source panicked: registry exploded", "invalid upstream address", "contains a NUL byte"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestMultiAndGraceSources(t *testing.T) {
	logged := captureLog(t)
	var calls atomic.Int32
	failing, err := CallbackSource(func() ([]Upstream, error) {
		if calls.Add(1) > 1 {
			return nil, errors.New("down")
		}
		return []Upstream{{Address: "127.0.0.1:3"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	grace, err := GraceSource(failing, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	multi, err := MultiSource(mustStatic(t, "127.0.0.1:1", "127.0.0.1:2"), failingSource(t, "always broken"), grace)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := NewPool(multi, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Refresh(); err != nil { // the grace source now serves its last good list
		t.Fatal(err)
	}
	if got := listed(t, pool); got != "127.0.0.1:1 127.0.0.1:2 127.0.0.1:3" {
		t.Fatalf("merged list %q", got)
	}
	if out := logged(); !strings.Contains(out, "always broken") || !strings.Contains(out, "WARN") {
		t.Fatalf("log:\n%s", out)
	}
	// Consumed sources cannot be used again.
	if _, err := MultiSource(grace); !errors.Is(err, ErrClosed) {
		t.Fatalf("reused source: %v", err)
	}
	s := mustStatic(t, "127.0.0.1:1")
	if _, err := MultiSource(s, s); !errors.Is(err, ErrClosed) {
		t.Fatalf("one source twice: %v", err)
	}
	if _, err := GraceSource(mustStatic(t, "127.0.0.1:1"), -1); !errors.Is(err, ErrInvalidLimit) {
		t.Fatalf("negative grace: %v", err)
	}
	unused := mustStatic(t, "127.0.0.1:1")
	unused.Close()
	unused.Close()
	if _, err := NewPool(unused, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed source: %v", err)
	}
}

func TestRefresherCallsTheFunctionFromItsThread(t *testing.T) {
	calls := make(chan struct{}, 16)
	src, err := CallbackSource(func() ([]Upstream, error) {
		select {
		case calls <- struct{}{}:
		default:
		}
		return []Upstream{{Address: "127.0.0.1:1"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := NewPool(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	<-calls // NewPool's own refresh
	r, err := pool.StartRefresher(time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	<-calls
	<-calls // two refreshes on the refresher's thread
	pool.Close()
	r.Close()
	r.Close()
}

func TestSetDownAndLoggerAdapter(t *testing.T) {
	var buf bytes.Buffer
	if err := SetLogHook(LoggerHook(log.New(&buf, "", 0)), LogError); err != nil {
		t.Fatal(err)
	}
	defer SetLogHook(nil, LogOff)
	failingPool(t, "no registry") // the first refresh fails: logged, pool empty
	if got := buf.String(); !strings.HasPrefix(got, "leastconn ERROR: ") || !strings.Contains(got, "no registry") {
		t.Fatalf("logger output %q", got)
	}

	p2 := staticPool(t, &Config{Policy: First}, "127.0.0.1:1", "127.0.0.1:2")
	if err := p2.SetDown("127.0.0.1:1", true); err != nil {
		t.Fatal(err)
	}
	pick, err := p2.Select()
	if err != nil || pick.Address() != "127.0.0.1:2" {
		t.Fatalf("first policy with the first host down: %v %v", pick, err)
	}
	pick.Release(Success)
}

func TestPanickingLogHookIsContained(t *testing.T) {
	if err := SetLogHook(func(LogLevel, string) { panic("hook exploded") }, LogDebug); err != nil {
		t.Fatal(err)
	}
	defer SetLogHook(nil, LogOff)
	if err := SetLogHook(func(LogLevel, string) {}, LogTrace+1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("unknown level: %v", err)
	}
	pool := failingPool(t, "logged to a panicking hook")
	if _, err := pool.Refresh(); !errors.Is(err, ErrSourceFailed) {
		t.Fatalf("refresh: %v", err)
	}
}

// Regression: Close from inside a FetchFunc waited for the refresh it was called from.
func TestCloseFromInsideCallbacksIsRefusedNotDeadlocked(t *testing.T) {
	const (
		plain = iota
		closeInRefresh
		closeOnRefresherThread
	)
	var mode atomic.Int32
	var pool *Pool
	var closeErr, stopErr error // written by the fetch, read after it has signalled
	refresher := make(chan *Refresher, 1)
	done := make(chan struct{}, 1)
	src, err := CallbackSource(func() ([]Upstream, error) {
		switch mode.Load() {
		case closeInRefresh:
			closeErr = pool.Close()
		case closeOnRefresherThread:
			r := <-refresher // the refresher's first fetch starts once StartRefresher returned
			closeErr, stopErr = pool.Close(), r.Close()
			mode.Store(plain)
			done <- struct{}{}
		}
		return []Upstream{{Address: "127.0.0.1:1"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pool, err = NewPool(src, nil); err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	mode.Store(closeInRefresh) // from a Refresh on this goroutine
	if _, err := pool.Refresh(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(closeErr, ErrInvalidArgument) {
		t.Fatalf("Close inside a Refresh's FetchFunc: %v", closeErr)
	}
	if _, err := pool.Select(); err != nil {
		t.Fatalf("the pool was closed after all: %v", err)
	}

	mode.Store(closeOnRefresherThread) // from the refresher's thread, stopping it too
	r, err := pool.StartRefresher(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	refresher <- r
	<-done
	if !errors.Is(closeErr, ErrInvalidArgument) || !errors.Is(stopErr, ErrInvalidArgument) {
		t.Fatalf("inside the refresher's FetchFunc: pool Close %v, refresher Close %v", closeErr, stopErr)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pool.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Select(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestSetLogHookFromInsideALogHookIsRefused(t *testing.T) {
	errs := make(chan error, 16)
	if err := SetLogHook(func(LogLevel, string) {
		select {
		case errs <- SetLogHook(nil, LogOff):
		default:
		}
	}, LogError); err != nil {
		t.Fatal(err)
	}
	defer SetLogHook(nil, LogOff)
	failingPool(t, "logged") // the failing first refresh logs
	if err := <-errs; !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("SetLogHook inside a LogHook: %v", err)
	}
}

// Goroutines pick and release (each its own Picker, or the Pool) while another refreshes
// between two lists; every reservation lands back on its host, whatever the interleaving.
func TestGoroutinesPickWhileTheListChanges(t *testing.T) {
	lists := [][]Upstream{
		{{Address: "127.0.0.1:1"}, {Address: "127.0.0.1:2"}, {Address: "127.0.0.1:3"}},
		{{Address: "127.0.0.1:3"}, {Address: "127.0.0.1:4"}},
	}
	var generation atomic.Int64
	src, err := CallbackSource(func() ([]Upstream, error) {
		return lists[generation.Load()%2], nil
	})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := NewPool(src, &Config{Policy: LeastConn}) // no passive health: every pick succeeds
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const workers, rounds = 4, 2000
	var picks atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			picker, err := pool.NewPicker(uint64(w + 1))
			if err != nil {
				t.Error(err)
				return
			}
			defer picker.Close()
			held := make([]*Pick, 0, 3)
			for i := 0; i < rounds; i++ {
				var p *Pick
				if i%2 == 0 {
					p, err = picker.Select()
				} else {
					p, err = pool.Select()
				}
				if err != nil {
					t.Errorf("select: %v", err)
					return
				}
				picks.Add(1)
				held = append(held, p)
				if len(held) == cap(held) { // hold a few at once, release them in order
					for _, h := range held {
						if err := h.Release(Outcome(i % 2)); err != nil {
							t.Errorf("release: %v", err)
						}
					}
					held = held[:0]
				}
			}
			for _, h := range held {
				h.Release(Success)
			}
		}(w)
	}
	for i := 0; i < 200; i++ {
		generation.Add(1)
		if _, err := pool.Refresh(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	var total uint64
	for _, addr := range []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"} {
		s, err := pool.HostStats(addr)
		if errors.Is(err, ErrNotFound) {
			continue // removed and reclaimed: nothing was left in flight on it
		}
		if err != nil {
			t.Fatal(err)
		}
		if s.InFlight != 0 {
			t.Errorf("%s: %d in flight after every release", addr, s.InFlight)
		}
		total += s.Picks
	}
	if picks.Load() != workers*rounds || total > uint64(picks.Load()) {
		t.Fatalf("%d picks made, %d counted on the hosts still known", picks.Load(), total)
	}
}
