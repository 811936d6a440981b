package leastconn

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

// testZoneHandler lists zoneAddr with MaxRequests 3, and MaxFails 2 (the ring of
// testZoneCaps).
const testZoneHandler = `{"handler": "reverse_proxy",
	"upstreams": [{"dial": "10.0.0.1:80", "max_requests": 3}],
	"load_balancing": {"selection_policy": {"policy": "least_conn"}},
	"health_checks": {"passive": {"fail_duration": "10s", "max_fails": 2}}}`

// A zone with one process record: a second process cannot register.
var oneProcessCaps = ZoneCapacity{Hosts: 8, AddressBytes: 64, FailRing: 2, Processes: 1, Threads: 16}

func jsonZonePool(tb testing.TB, zone *Zone, name string) *Pool {
	tb.Helper()
	pool, err := NewPoolJSONInZone([]byte(testZoneHandler), zone, name)
	if err != nil {
		tb.Fatalf("NewPoolJSONInZone(%q): %v", name, err)
	}
	tb.Cleanup(func() { pool.Close() })
	return pool
}

// A JSON pool and a NewPoolInZone pool of one name share counts and the document's
// MaxRequests 3; a JSON pool of another name shares nothing.
func TestZoneJSONPoolSharesCountsWithAPoolOfItsName(t *testing.T) {
	zone, err := NewAnonymousZone(testZoneCaps)
	if err != nil {
		t.Fatal(err)
	}
	defer zone.Close()
	json, built, other := jsonZonePool(t, zone, "app"), zonePool(t, zone, "app", 3, nil), jsonZonePool(t, zone, "other")
	counts := func() [3]uint32 {
		return [3]uint32{inFlight(t, json, zoneAddr), inFlight(t, built, zoneAddr), inFlight(t, other, zoneAddr)}
	}
	var picks []*Pick
	for _, p := range []*Pool{json, built, json} {
		pick, err := p.Select()
		if err != nil {
			t.Fatal(err)
		}
		picks = append(picks, pick)
	}
	if got := counts(); got != [3]uint32{3, 3, 0} {
		t.Fatalf("in flight %v, want [3 3 0]", got)
	}
	if _, err := json.Select(); !errors.Is(err, ErrNoUpstream) {
		t.Fatalf("Select at the shared limit = %v, want ErrNoUpstream", err)
	}
	pick, err := other.Select()
	if err != nil {
		t.Fatalf("another name's Select: %v", err)
	}
	picks = append(picks, pick)
	if got := counts(); got != [3]uint32{3, 3, 1} {
		t.Fatalf("in flight %v, want [3 3 1]", got)
	}
	for _, p := range picks {
		if err := p.Release(Success); err != nil {
			t.Fatal(err)
		}
	}
	if got := counts(); got != [3]uint32{0, 0, 0} {
		t.Fatalf("in flight %v, want [0 0 0]", got)
	}
}

// A helper process's JSON pool holds two picks: this process's JSON pool sees them, takes
// the third of MaxRequests 3, is refused a fourth, and sees the helper's releases.
func TestZoneJSONPoolsShareCountsAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zone")
	h := startHelper(t, path, "json2")
	h.expect(t, "held")
	zone := openTestZone(t, path)
	pool := jsonZonePool(t, zone, "app")
	if n := inFlight(t, pool, zoneAddr); n != 2 {
		t.Fatalf("in flight %d, want the helper's 2", n)
	}
	pick, err := pool.Select()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Select(); !errors.Is(err, ErrNoUpstream) {
		t.Fatalf("Select at the limit = %v, want ErrNoUpstream", err)
	}
	fmt.Fprintln(h.stdin, "release")
	h.expect(t, "released")
	if n := inFlight(t, pool, zoneAddr); n != 1 {
		t.Fatalf("in flight %d after the helper's releases, want 1", n)
	}
	pick.Release(Success)
	if n := inFlight(t, pool, zoneAddr); n != 0 {
		t.Fatalf("in flight %d, want 0", n)
	}
	h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
}

func TestZoneJSONRefusals(t *testing.T) {
	zone, err := NewAnonymousZone(testZoneCaps)
	if err != nil {
		t.Fatal(err)
	}
	defer zone.Close()
	maxFails3 := `{"upstreams": [{"dial": "10.0.0.1:80"}],
		"health_checks": {"passive": {"fail_duration": "10s", "max_fails": 3}}}`
	cases := []struct {
		json, name string
		zone       *Zone
		want       error
		detail     string
	}{
		{maxFails3, "app", zone, ErrZoneIncompatible, "max_fails 3 is above the zone's fail_ring 2"},
		{`{"upstreams": [{"dial": "h:1", "colour": 1}]}`, "app", zone, ErrInvalidConfig, "upstreams[0].colour: unknown field"},
		{"\xff", "app", zone, ErrInvalidUTF8, ""},
		{testZoneHandler, "a\x00b", zone, ErrInvalidArgument, `"a\x00b" contains a NUL byte`},
		{testZoneHandler, "a\xffb", zone, ErrInvalidUTF8, ""},
		{testZoneHandler, "app", nil, ErrClosed, ""},
	}
	for _, c := range cases {
		_, err := NewPoolJSONInZone([]byte(c.json), c.zone, c.name)
		if !errors.Is(err, c.want) {
			t.Errorf("NewPoolJSONInZone(%q, %q) = %v, want %v", c.json, c.name, err, c.want)
			continue
		}
		var e *Error
		if c.detail != "" && (!errors.As(err, &e) || e.Detail != c.detail) {
			t.Errorf("NewPoolJSONInZone(%q, %q) = %v, want the detail %q", c.json, c.name, err, c.detail)
		}
	}
	closed, err := NewAnonymousZone(testZoneCaps)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if _, err := NewPoolJSONInZone([]byte(testZoneHandler), closed, "app"); !errors.Is(err, ErrClosed) {
		t.Errorf("NewPoolJSONInZone on a closed zone = %v, want ErrClosed", err)
	}
	// The ring's own size fits.
	pool := jsonZonePool(t, zone, "app")
	if stats, err := pool.Stats(); err != nil || len(stats) != 1 || stats[0].Address != zoneAddr {
		t.Fatalf("stats %+v, %v; want the document's upstream", stats, err)
	}
}

// This process takes the zone's only process record; the helper's JSON pool is refused
// with ErrZoneFull.
func TestZoneJSONPoolOnAFullZone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zone")
	zone, err := OpenZone(path, oneProcessCaps)
	if err != nil {
		t.Fatal(err)
	}
	defer zone.Close()
	jsonZonePool(t, zone, "app")
	h := startHelper(t, path, "jsonfull")
	h.expect(t, "full")
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
}
