package leastconn

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

const zoneAddr = "10.0.0.1:80"

// A ring of 2 (MaxFails 3 is refused); room for a few processes' threads and pickers.
var testZoneCaps = ZoneCapacity{Hosts: 8, AddressBytes: 64, FailRing: 2, Processes: 4, Threads: 16}

// zonePool is a pool named name on zone (config nil for the defaults) with zoneAddr limited
// to maxRequests, closed at the end of the test.
func zonePool(tb testing.TB, zone *Zone, name string, maxRequests uint32, config *Config) *Pool {
	tb.Helper()
	src, err := StaticSource([]Upstream{{Address: zoneAddr, MaxRequests: maxRequests}})
	if err != nil {
		tb.Fatalf("StaticSource: %v", err)
	}
	pool, err := NewPoolInZone(src, zone, name, config)
	if err != nil {
		tb.Fatalf("NewPoolInZone(%q): %v", name, err)
	}
	tb.Cleanup(func() { pool.Close() })
	return pool
}

func openTestZone(tb testing.TB, path string) *Zone {
	tb.Helper()
	zone, err := OpenZone(path, testZoneCaps)
	if err != nil {
		tb.Fatalf("OpenZone(%q): %v", path, err)
	}
	tb.Cleanup(func() { zone.Close() })
	return zone
}

// The second process of the zone tests is this test binary again, running only
// TestZoneHelperProcess with these variables set: the zone file, and what to do there.
const (
	helperZoneEnv = "LEASTCONN_TEST_ZONE_FILE"
	helperModeEnv = "LEASTCONN_TEST_ZONE_MODE"
)

// TestZoneHelperProcess is the second process, not a test: it does nothing unless started
// by startHelper. It opens the zone file, takes picks, says "held" on stdout, and then:
// mode "hold2" (two picks) waits on stdin for its SIGKILL; mode "limit1" (one pick on a
// host with MaxRequests 1) releases it when a line arrives on stdin and says "released";
// mode "json2" (two picks from a JSON pool, zone_json_test.go) releases both when a line
// arrives and says "released". Mode "jsonfull" opens a zone of one process record
// (oneProcessCaps), expects ErrZoneFull from NewPoolJSONInZone and says "full".
func TestZoneHelperProcess(t *testing.T) {
	path := os.Getenv(helperZoneEnv)
	if path == "" {
		return
	}
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "helper: "+format+"\n", args...)
		os.Exit(2)
	}
	caps := testZoneCaps
	if os.Getenv(helperModeEnv) == "jsonfull" {
		caps = oneProcessCaps
	}
	zone, err := OpenZone(path, caps)
	if err != nil {
		fail("OpenZone: %v", err)
	}
	in := bufio.NewReader(os.Stdin)
	switch mode := os.Getenv(helperModeEnv); mode {
	case "hold2":
		pool := zonePool(t, zone, "app", 0, nil)
		for i := 0; i < 2; i++ {
			if _, err := pool.Select(); err != nil {
				fail("Select: %v", err)
			}
		}
		fmt.Println("held")
		in.ReadString('\n') // blocked outside any pick until the parent's SIGKILL
		fail("not killed")
	case "limit1":
		pool := zonePool(t, zone, "app", 1, nil)
		picker, err := pool.NewPicker(1)
		if err != nil {
			fail("NewPicker: %v", err)
		}
		pick, err := picker.Select()
		if err != nil {
			fail("Select: %v", err)
		}
		fmt.Println("held")
		if _, err := in.ReadString('\n'); err != nil {
			fail("stdin: %v", err)
		}
		if err := picker.Release(pick, Success); err != nil {
			fail("Release: %v", err)
		}
		fmt.Println("released")
		in.ReadString('\n') // until the parent closes stdin
		os.Exit(0)
	case "json2":
		pool, err := NewPoolJSONInZone([]byte(testZoneHandler), zone, "app")
		if err != nil {
			fail("NewPoolJSONInZone: %v", err)
		}
		var held [2]*Pick
		for i := range held {
			if held[i], err = pool.Select(); err != nil {
				fail("Select: %v", err)
			}
		}
		fmt.Println("held")
		if _, err := in.ReadString('\n'); err != nil {
			fail("stdin: %v", err)
		}
		for _, pick := range held {
			if err := pick.Release(Success); err != nil {
				fail("Release: %v", err)
			}
		}
		fmt.Println("released")
		in.ReadString('\n') // until the parent closes stdin
		os.Exit(0)
	case "jsonfull":
		if _, err := NewPoolJSONInZone([]byte(testZoneHandler), zone, "app"); !errors.Is(err, ErrZoneFull) {
			fail("NewPoolJSONInZone on a full zone = %v, want ErrZoneFull", err)
		}
		fmt.Println("full")
		os.Exit(0)
	default:
		fail("unknown mode %q", mode)
	}
}

// helper is a running TestZoneHelperProcess.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

func startHelper(t *testing.T, path, mode string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestZoneHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperZoneEnv+"="+path, helperModeEnv+"="+mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
	t.Cleanup(func() {
		stdin.Close()
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return h
}

// expect reads the helper's next line, which must be want.
func (h *helper) expect(t *testing.T, want string) {
	t.Helper()
	if !h.lines.Scan() {
		t.Fatalf("helper ended before %q: %v", want, h.lines.Err())
	}
	if got := h.lines.Text(); got != want {
		t.Fatalf("helper said %q, want %q", got, want)
	}
}

func TestZoneSweepReturnsExactlyWhatAKilledProcessHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zone")
	zone := openTestZone(t, path)
	h := startHelper(t, path, "hold2")
	h.expect(t, "held")
	pool := zonePool(t, zone, "app", 0, nil)
	pick, err := pool.Select()
	if err != nil {
		t.Fatal(err)
	}
	if n := inFlight(t, pool, zoneAddr); n != 3 {
		t.Fatalf("in flight %d with the helper's 2 and ours, want 3", n)
	}
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = h.cmd.Wait()
	if ws, ok := h.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want SIGKILL", err)
	}
	if n := inFlight(t, pool, zoneAddr); n != 3 {
		t.Fatalf("in flight %d before a sweep, want 3", n)
	}
	report, err := zone.Sweep()
	if want := (SweepReport{Processes: 1, Recovered: 2, InDoubt: 0}); err != nil || report != want {
		t.Fatalf("Sweep = %+v, %v; want %+v", report, err, want)
	}
	if n := inFlight(t, pool, zoneAddr); n != 1 {
		t.Fatalf("in flight %d after the sweep, want our 1", n)
	}
	report, err = zone.Sweep()
	if (report != SweepReport{}) || err != nil {
		t.Fatalf("second Sweep = %+v, %v; want nothing", report, err)
	}
	if err := pick.Release(Success); err != nil {
		t.Fatal(err)
	}
	if n := inFlight(t, pool, zoneAddr); n != 0 {
		t.Fatalf("in flight %d at the end, want 0", n)
	}
}

func TestZoneMaxRequestsHoldsAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zone")
	h := startHelper(t, path, "limit1")
	h.expect(t, "held")
	zone := openTestZone(t, path)
	pool := zonePool(t, zone, "app", 1, nil)
	if n := inFlight(t, pool, zoneAddr); n != 1 {
		t.Fatalf("in flight %d, want the helper's 1", n)
	}
	if _, err := pool.Select(); !errors.Is(err, ErrNoUpstream) {
		t.Fatalf("Select at the limit = %v, want ErrNoUpstream", err)
	}
	fmt.Fprintln(h.stdin, "release")
	h.expect(t, "released")
	if n := inFlight(t, pool, zoneAddr); n != 0 {
		t.Fatalf("in flight %d after the helper's release, want 0", n)
	}
	pick, err := pool.Select()
	if err != nil {
		t.Fatalf("Select after the helper's release: %v", err)
	}
	if _, err := pool.Select(); !errors.Is(err, ErrNoUpstream) {
		t.Fatalf("second Select = %v, want ErrNoUpstream", err)
	}
	pick.Release(Success)
	h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	// The helper exited holding nothing; its process record (a process does not deregister
	// at exit) is freed by the sweep, with nothing to return.
	report, err := zone.Sweep()
	if want := (SweepReport{Processes: 1}); report != want || err != nil {
		t.Fatalf("Sweep after a clean exit = %+v, %v; want %+v", report, err, want)
	}
}

func TestZonePoolsOfOneNameShareCounts(t *testing.T) {
	zone, err := NewAnonymousZone(testZoneCaps)
	if err != nil {
		t.Fatal(err)
	}
	defer zone.Close()
	// MaxFails 2: the one failure released below leaves the host available.
	config := DefaultConfig()
	config.MaxFails = 2
	a, b, other := zonePool(t, zone, "app", 0, &config), zonePool(t, zone, "app", 0, &config), zonePool(t, zone, "other", 0, nil)
	picker, err := a.NewPicker(3)
	if err != nil {
		t.Fatal(err)
	}
	defer picker.Close()
	p1, err := picker.Select()
	if err != nil {
		t.Fatal(err)
	}
	p2, err := b.Select()
	if err != nil {
		t.Fatal(err)
	}
	p3, err := other.Select()
	if err != nil {
		t.Fatal(err)
	}
	counts := func() [3]uint32 {
		return [3]uint32{inFlight(t, a, zoneAddr), inFlight(t, b, zoneAddr), inFlight(t, other, zoneAddr)}
	}
	if got := counts(); got != [3]uint32{2, 2, 1} {
		t.Fatalf("in flight %v, want [2 2 1]", got)
	}
	if err := picker.Release(p1, Success); err != nil {
		t.Fatal(err)
	}
	if err := picker.Release(p1, Success); !errors.Is(err, ErrAlreadyReleased) {
		t.Fatalf("second picker release = %v, want ErrAlreadyReleased", err)
	}
	if err := picker.Release(p2, Failure); err != nil { // another pool's pick
		t.Fatal(err)
	}
	if err := p3.Release(Success); err != nil {
		t.Fatal(err)
	}
	if got := counts(); got != [3]uint32{0, 0, 0} {
		t.Fatalf("in flight %v, want [0 0 0]", got)
	}
	if s, _ := a.HostStats(zoneAddr); s.RecentFailures != 1 {
		t.Fatalf("recent failures %d through the picker's failure release, want 1", s.RecentFailures)
	}
	p4, err := picker.Select()
	if err != nil {
		t.Fatal(err)
	}
	picker.Close()
	if err := picker.Release(p4, Success); !errors.Is(err, ErrClosed) {
		t.Fatalf("release through a closed picker = %v, want ErrClosed", err)
	}
	if err := p4.Release(Success); err != nil {
		t.Fatalf("the pick stays releasable: %v", err)
	}
}

func TestZoneHandleAndPoolLifetimes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zone")
	zone, err := OpenZone(path, testZoneCaps)
	if err != nil {
		t.Fatal(err)
	}
	again := openTestZone(t, path)
	caps, err := zone.Capacity()
	if err != nil || caps != testZoneCaps {
		t.Fatalf("Capacity = %+v, %v", caps, err)
	}
	size, err := zone.Size()
	want, _ := testZoneCaps.Size()
	if fi, _ := os.Stat(path); err != nil || size != want || fi.Size() != int64(want) {
		t.Fatalf("Size = %d, %v; want %d, the file's size", size, err, want)
	}
	id1, _ := zone.CreationID()
	id2, _ := again.CreationID()
	if id1 != id2 {
		t.Fatalf("creation ids %d and %d of one zone", id1, id2)
	}
	pool := zonePool(t, zone, "app", 0, nil)
	if err := zone.Close(); err != nil {
		t.Fatal(err)
	}
	zone.Close()
	if _, err := zone.Sweep(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sweep after Close = %v", err)
	}
	if _, err := zone.Capacity(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Capacity after Close = %v", err)
	}
	src := mustStatic(t, zoneAddr)
	if _, err := NewPoolInZone(src, zone, "app", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewPoolInZone on a closed zone = %v", err)
	}
	pick, err := pool.Select() // the pool keeps the zone's memory
	if err != nil {
		t.Fatal(err)
	}
	pick.Release(Success)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the zone file is gone after Close: %v", err)
	}
	var nilZone *Zone
	if nilZone.Close() != nil {
		t.Fatal("Close of a nil zone")
	}
}

func TestZoneRefusals(t *testing.T) {
	dir := t.TempDir()
	bad := []ZoneCapacity{
		{0, 64, 2, 4, 16},
		{1 << 30, 64, 2, 4, 16},
		{8, 4096, 2, 4, 16},
		{8, 64, 0, 4, 16},
		{8, 64, 2, 0, 16},
		{8, 64, 2, 4, 0},
	}
	for _, caps := range bad {
		if _, err := caps.Size(); !errors.Is(err, ErrInvalidLimit) {
			t.Errorf("Size of %+v = %v, want ErrInvalidLimit", caps, err)
		}
		if _, err := NewAnonymousZone(caps); !errors.Is(err, ErrInvalidLimit) {
			t.Errorf("NewAnonymousZone(%+v) = %v, want ErrInvalidLimit", caps, err)
		}
		if _, err := OpenZone(filepath.Join(dir, "bad"), caps); !errors.Is(err, ErrInvalidLimit) {
			t.Errorf("OpenZone(%+v) = %v, want ErrInvalidLimit", caps, err)
		}
	}
	if _, err := FitZoneCapacity(64, testZoneCaps); !errors.Is(err, ErrZoneTooSmall) {
		t.Errorf("FitZoneCapacity(64) = %v, want ErrZoneTooSmall", err)
	}
	size, _ := testZoneCaps.Size()
	if fit, err := FitZoneCapacity(size, testZoneCaps); err != nil || fit.Hosts < testZoneCaps.Hosts {
		t.Errorf("FitZoneCapacity(%d) = %+v, %v", size, fit, err)
	}

	path := filepath.Join(dir, "zone")
	zone := openTestZone(t, path)
	other := testZoneCaps
	other.Hosts++
	if _, err := OpenZone(path, other); !errors.Is(err, ErrZoneIncompatible) {
		t.Errorf("OpenZone with other capacities = %v, want ErrZoneIncompatible", err)
	}
	short := filepath.Join(dir, "short")
	openTestZone(t, short).Close()
	if err := os.Truncate(short, int64(size/2)); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenZone(short, testZoneCaps); !errors.Is(err, ErrZoneTooSmall) {
		t.Errorf("OpenZone of a truncated file = %v, want ErrZoneTooSmall", err)
	}
	for p, want := range map[string]error{"": ErrInvalidArgument, "a\x00b": ErrInvalidArgument, filepath.Join(dir, "missing", "zone"): ErrOS} {
		if _, err := OpenZone(p, testZoneCaps); !errors.Is(err, want) {
			t.Errorf("OpenZone(%q) = %v, want %v", p, err, want)
		}
	}

	names := map[string]error{"a\x00b": ErrInvalidArgument, "a\xffb": ErrInvalidUTF8}
	for name, want := range names {
		if _, err := NewPoolInZone(mustStatic(t, zoneAddr), zone, name, nil); !errors.Is(err, want) {
			t.Errorf("NewPoolInZone(%q) = %v, want %v", name, err, want)
		}
	}
	config := DefaultConfig()
	config.MaxFails = 3
	if _, err := NewPoolInZone(mustStatic(t, zoneAddr), zone, "app", &config); !errors.Is(err, ErrZoneIncompatible) {
		t.Errorf("MaxFails 3 on a ring of 2 = %v, want ErrZoneIncompatible", err)
	}
	config.MaxFails = 2
	pool, err := NewPoolInZone(mustStatic(t, zoneAddr), zone, "app", &config)
	if err != nil {
		t.Fatalf("MaxFails 2 on a ring of 2: %v", err)
	}
	pool.Close()
	if _, err := NewPoolInZone(mustStatic(t, zoneAddr), nil, "app", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("NewPoolInZone with a nil zone = %v, want ErrClosed", err)
	}
}

// Every refusal of NewPoolInZone drops the source it was given, whether the Go layer or the
// library refused.
func TestZoneRefusedPoolsDropTheirSource(t *testing.T) {
	zone, err := NewAnonymousZone(testZoneCaps)
	if err != nil {
		t.Fatal(err)
	}
	closed, err := NewAnonymousZone(testZoneCaps)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	defer zone.Close()
	tooManyFails := DefaultConfig()
	tooManyFails.MaxFails = testZoneCaps.FailRing + 1
	negative := DefaultConfig()
	negative.FailDuration = -1
	cases := []struct {
		what   string
		zone   *Zone
		name   string
		config *Config
		want   error
	}{
		{"closed zone", closed, "app", nil, ErrClosed},
		{"nil zone", nil, "app", nil, ErrClosed},
		{"NUL in the name", zone, "a\x00b", nil, ErrInvalidArgument},
		{"not UTF-8", zone, "\xff", nil, ErrInvalidUTF8},
		{"MaxFails above FailRing", zone, "app", &tooManyFails, ErrZoneIncompatible},
		{"negative FailDuration", zone, "app", &negative, ErrInvalidLimit},
	}
	for _, c := range cases {
		src, err := CallbackSource(func() ([]Upstream, error) { return []Upstream{{Address: zoneAddr}}, nil })
		if err != nil {
			t.Fatal(err)
		}
		if fetchReleased(src) {
			t.Fatalf("%s: the source is dropped before its use", c.what)
		}
		if _, err := NewPoolInZone(src, c.zone, c.name, c.config); !errors.Is(err, c.want) {
			t.Errorf("%s: NewPoolInZone = %v, want %v", c.what, err, c.want)
		}
		if !fetchReleased(src) {
			t.Errorf("%s: the refused source is still held", c.what)
		}
	}
}
