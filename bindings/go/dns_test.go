package leastconn

import (
	"errors"
	"testing"
	"time"
)

// An IP literal yields itself without any query, so this needs no DNS server.
func TestASourceOfIPLiteralsInAMulti(t *testing.T) {
	v4 := DefaultAConfig("127.0.0.1")
	v4.Port = 8080
	v4.Tag = 7
	a4, err := ASource(v4)
	if err != nil {
		t.Fatal(err)
	}
	v6 := DefaultAConfig("[::1]")
	v6.Port = 8081
	v6.Tier = 1
	a6, err := ASource(v6)
	if err != nil {
		t.Fatal(err)
	}
	multi, err := MultiSource(a4, a6)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := NewPool(multi, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if got := listed(t, pool); got != "127.0.0.1:8080 [::1]:8081" {
		t.Fatalf("list %q", got)
	}
	pick, err := pool.Select()
	if err != nil || pick.Address() != "127.0.0.1:8080" || pick.Tag() != 7 {
		t.Fatalf("tier 0 first: %v %v", pick, err)
	}
	pick.Release(Success)
}

func TestDNSSourcesRefuseBadConfigurations(t *testing.T) {
	withPort := func(c AConfig, port uint16) AConfig { c.Port = port; return c }
	withVersions := func(c AConfig, v IPVersions) AConfig { c.Versions = v; return c }
	withResolvers := func(c AConfig, r ...string) AConfig { c.Resolvers = r; return c }
	withRefresh := func(c AConfig, d time.Duration) AConfig { c.Refresh = d; return c }
	withTimeout := func(c AConfig, d time.Duration) AConfig { c.Timeout = d; return c }
	aCases := []struct {
		config AConfig
		want   error
	}{
		{DefaultAConfig(""), ErrInvalidAddress},
		{withPort(DefaultAConfig("example.com"), 0), ErrInvalidAddress},
		{withVersions(DefaultAConfig("127.0.0.1"), IPv6), ErrInvalidArgument},
		{withVersions(DefaultAConfig("example.com"), 9), ErrInvalidArgument},
		{withResolvers(DefaultAConfig("example.com"), "not a resolver"), ErrInvalidAddress},
		{withResolvers(DefaultAConfig("example.com"), "127.0.0.1\x00"), ErrInvalidAddress},
		{DefaultAConfig("exa\x00mple.com"), ErrInvalidAddress},
		{withRefresh(DefaultAConfig("example.com"), -time.Second), ErrInvalidLimit},
		{withTimeout(DefaultAConfig("example.com"), -time.Second), ErrInvalidLimit},
	}
	for _, c := range aCases {
		src, err := ASource(c.config)
		var e *Error
		if !errors.Is(err, c.want) || src != nil || !errors.As(err, &e) || e.Op != "a source" {
			t.Errorf("a %+v: got %v, %v; want %v", c.config, src, err, c.want)
		}
	}
	// A NUL byte in any of an SRV source's names is an invalid address, as its other bad
	// names are.
	for _, c := range []SRVConfig{
		DefaultSRVConfig("a\x00pi", "tcp", "internal"),
		DefaultSRVConfig("api", "t\x00cp", "internal"),
		DefaultSRVConfig("api", "tcp", "inter\x00nal"),
	} {
		src, err := SRVSource(c)
		var e *Error
		if !errors.Is(err, ErrInvalidAddress) || src != nil || !errors.As(err, &e) || e.Op != "srv source" {
			t.Errorf("srv %+v: got %v, %v", c, src, err)
		}
	}
	bad := DefaultAConfig("example.com")
	bad.Retries = -2
	if _, err := ASource(bad); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("retries -2: %v", err)
	}
	if _, err := SRVSource(DefaultSRVConfig("api", "", "internal")); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("srv without proto: %v", err)
	}
	if _, err := SRVSource(DefaultSRVConfig("", "", "")); !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("srv without a name: %v", err)
	}
	srv := DefaultSRVConfig("api", "tcp", "internal")
	srv.Resolvers = []string{"127.0.0.1:53"}
	srv.GracePeriod = -1
	if _, err := SRVSource(srv); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("negative grace: %v", err)
	}
	srv.GracePeriod = 0
	s, err := SRVSource(srv) // nothing is looked up until a refresh
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}
