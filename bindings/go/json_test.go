package leastconn

import (
	"errors"
	"strings"
	"testing"
)

func TestNewPoolJSONLoadsACaddyHandler(t *testing.T) {
	logged := captureLog(t)
	handler := `{"handler": "reverse_proxy", "transport": {"protocol": "http"},
		"upstreams": [{"dial": "10.0.0.1:80", "max_requests": 7}, {"dial": "10.0.0.2:80"}],
		"load_balancing": {"selection_policy": {"policy": "first"}, "retries": 2},
		"health_checks": {"passive": {"fail_duration": "1h", "max_fails": 1}}}`
	pool, err := NewPoolJSON([]byte(handler))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	stats, _ := pool.Stats()
	if len(stats) != 2 || stats[0].Address != "10.0.0.1:80" || stats[0].MaxRequests != 7 ||
		stats[1].Address != "10.0.0.2:80" || stats[1].MaxRequests != 0 {
		t.Fatalf("stats %+v", stats)
	}
	// first: the first available host; one failure in the hour makes it unavailable.
	pick, err := pool.Select()
	if err != nil || pick.Address() != "10.0.0.1:80" {
		t.Fatalf("select: %v %v", pick, err)
	}
	if err := pick.Release(Failure); err != nil {
		t.Fatal(err)
	}
	pick, err = pool.Select()
	if err != nil || pick.Address() != "10.0.0.2:80" {
		t.Fatalf("select after a failure: %v %v", pick, err)
	}
	pick.Release(Success)
	if log := logged(); strings.Contains(log, "ERROR") {
		t.Fatalf("logged %q", log)
	}
}

func TestMalformedJSONGivesInvalidConfigNamingThePath(t *testing.T) {
	logged := captureLog(t)
	cases := []struct {
		json, detail string
	}{
		{`{"dynamic_upstreams": {"source": "multi", "sources": [{"source": "a", "name": "10.0.0.1"},
			{"source": "a", "name": "10.0.0.2", "port": 8080}]}}`,
			"dynamic_upstreams.sources[1].port: expected a string"},
		{`{"upstreams": [{"dial": "h:1", "colour": 1}]}`, "upstreams[0].colour: unknown field"},
		{"{\"upstreams\": [{\"dial\": \"h:1\"}]}\x00{}", "a NUL byte at offset 32"},
	}
	for _, c := range cases {
		pool, err := NewPoolJSON([]byte(c.json))
		var e *Error
		if pool != nil || !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &e) || e.Detail != c.detail {
			t.Errorf("%s: got %v, %#v; want detail %q", c.json, pool, err, c.detail)
			continue
		}
		if want := "leastconn: pool from JSON: invalid configuration (" + c.detail + ")"; err.Error() != want {
			t.Errorf("message %q, want %q", err.Error(), want)
		}
	}
	if _, err := NewPoolJSON([]byte("{\"upstreams\": [{\"dial\": \"\xff\"}]}")); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("not UTF-8: %v", err)
	}
	if _, err := NewPoolJSON(nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("empty document: %v", err)
	}
	// The message went to the error, not to the log.
	if log := logged(); log != "" {
		t.Errorf("logged %q", log)
	}
}

func TestJSONSourceInAMultiWithAbsentEtcdAndDocker(t *testing.T) {
	_, err := JSONSource([]byte(`{"source": "consul"}`))
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrInvalidConfig) || e.Op != "source from JSON" ||
		e.Detail != `source: unknown source "consul" (known: multi, static, a, srv, docker, etcd)` {
		t.Fatalf("unknown source: %#v", err)
	}

	logged := captureLog(t)
	a4, err := JSONSource([]byte(`{"source": "a", "name": "192.0.2.7", "port": "8080", "max_requests": 3}`))
	if err != nil {
		t.Fatal(err)
	}
	// Nothing answers on either: each fails its refresh and the multi skips it.
	absent, err := JSONSource([]byte(`{"source": "multi", "sources": [
		{"source": "etcd", "endpoints": ["http://127.0.0.1:1"], "key": "/services/api/", "timeout": "2s"},
		{"source": "docker", "host": "unix:///nonexistent-leastconn-test/docker.sock"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	a6, err := JSONSource([]byte(`{"source": "a", "name": "::1", "port": "8443", "tier": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	multi, err := MultiSource(a4, absent, a6)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := NewPool(multi, &Config{Policy: First})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	// The inner multi logs both failures and returns an empty list (not an error).
	errs := errorLines(logged())
	wants := []string{
		"ERROR multi: source 0 failed: connecting to etcd at 127.0.0.1:1: ",
		"ERROR multi: source 1 failed: docker daemon at /nonexistent-leastconn-test/docker.sock: cannot connect: ",
	}
	if len(errs) != 2 || !strings.HasPrefix(errs[0], wants[0]) || !strings.HasPrefix(errs[1], wants[1]) {
		t.Fatalf("errors logged %q, want two starting %q", errs, wants)
	}
	pick, err := pool.Select()
	if err != nil || pick.Address() != "192.0.2.7:8080" {
		t.Fatalf("select: %v %v", pick, err)
	}
	pick.Release(Success)
	if s, _ := pool.HostStats("192.0.2.7:8080"); s.MaxRequests != 3 {
		t.Fatalf("max_requests: %+v", s)
	}
	if err := pool.SetDown("192.0.2.7:8080", true); err != nil {
		t.Fatal(err)
	}
	pick, err = pool.Select()
	if err != nil || pick.Address() != "[::1]:8443" {
		t.Fatalf("tier 1 once tier 0 is down: %v %v", pick, err)
	}
	pick.Release(Success)
}
