package leastconn

import (
	"errors"
	"testing"
	"time"
)

// Port 1 on loopback: nothing listens there, so a connection is refused at once.
const absentEtcd = "http://127.0.0.1:1"

func TestEtcdConfigDefaults(t *testing.T) {
	got := DefaultEtcdConfig("/services/api/", absentEtcd)
	if len(got.Endpoints) != 1 || got.Endpoints[0] != absentEtcd || got.Prefix != "/services/api/" ||
		got.VersionKey != "" || got.Timeout != 0 || got.Resync != 0 ||
		got.Weight != 1 || got.MaxRequests != 0 || got.Tier != 0 || got.Tag != 0 {
		t.Fatalf("DefaultEtcdConfig() = %+v", got)
	}
}

func TestEtcdSourceRefusesBadConfigurations(t *testing.T) {
	with := func(f func(*EtcdConfig)) EtcdConfig {
		c := DefaultEtcdConfig("/services/api/", absentEtcd)
		f(&c)
		return c
	}
	cases := []struct {
		name   string
		config EtcdConfig
		want   error
	}{
		{"no endpoints", DefaultEtcdConfig("/services/api/"), ErrInvalidArgument},
		{"https endpoint", DefaultEtcdConfig("/p/", "https://127.0.0.1:2379"), ErrInvalidArgument},
		{"second endpoint with a path", DefaultEtcdConfig("/p/", absentEtcd, "http://127.0.0.1:2379/v3"), ErrInvalidArgument},
		{"endpoint not UTF-8", DefaultEtcdConfig("/p/", "\xff"), ErrInvalidUTF8},
		{"NUL in an endpoint", DefaultEtcdConfig("/p/", "http://127.0.0.1:1\x00"), ErrInvalidArgument},
		{"prefix not UTF-8", DefaultEtcdConfig("/\xff/", absentEtcd), ErrInvalidUTF8},
		{"NUL in the prefix", DefaultEtcdConfig("/a\x00/", absentEtcd), ErrInvalidArgument},
		{"version key not UTF-8", with(func(c *EtcdConfig) { c.VersionKey = "\xff" }), ErrInvalidUTF8},
		{"NUL in the version key", with(func(c *EtcdConfig) { c.VersionKey = "/v\x00" }), ErrInvalidArgument},
		{"weight", with(func(c *EtcdConfig) { c.Weight = 1000001 }), ErrInvalidWeight},
		{"max requests", with(func(c *EtcdConfig) { c.MaxRequests = 268435457 }), ErrInvalidLimit},
		{"tier", with(func(c *EtcdConfig) { c.Tier = 256 }), ErrInvalidLimit},
		{"negative timeout", with(func(c *EtcdConfig) { c.Timeout = -time.Second }), ErrInvalidLimit},
		{"negative resync", with(func(c *EtcdConfig) { c.Resync = -time.Second }), ErrInvalidLimit},
	}
	for _, c := range cases {
		src, err := EtcdSource(c.config)
		if !errors.Is(err, c.want) || src != nil {
			t.Errorf("%s: got %v, %v; want %v", c.name, src, err, c.want)
		}
		var e *Error
		if errors.As(err, &e) && e.Op != "etcd source" {
			t.Errorf("%s: op %q", c.name, e.Op)
		}
	}
	// Never refreshed: no thread is started, and Close frees it.
	ok := with(func(c *EtcdConfig) {
		c.Endpoints = append(c.Endpoints, "http://127.0.0.1") // port 2379 implied
		c.VersionKey, c.Timeout, c.Resync = "/deploy/api", 2*time.Second, time.Minute
		c.Weight, c.MaxRequests, c.Tier, c.Tag = 1000000, 268435456, 255, 9
	})
	src, err := EtcdSource(ok)
	if err != nil {
		t.Fatalf("valid configuration: %v", err)
	}
	src.Close()
}

// A static list and an etcd source whose cluster refuses: the first refresh logs the etcd
// failure and skips it; the static host is picked. Alone, the etcd source fails the refresh.
func TestMultiOfStaticAndAbsentEtcdSkipsEtcd(t *testing.T) {
	config := DefaultEtcdConfig("/services/api/", absentEtcd)
	config.Timeout = 2 * time.Second
	etcd, err := EtcdSource(config)
	if err != nil {
		t.Fatal(err)
	}
	multiSkipsFailingSource(t, etcd, "ERROR multi: source 1 failed: connecting to etcd at 127.0.0.1:1")

	alone, err := EtcdSource(config)
	if err != nil {
		t.Fatal(err)
	}
	failsAlone(t, alone)
}
