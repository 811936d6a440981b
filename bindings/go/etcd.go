package leastconn

// #include "bridge.h"
import "C"

import (
	"time"
	"unsafe"
)

// EtcdConfig configures an `etcd` source (the keys under a prefix, as the Caddy module
// deanchou/caddy_etcd reads them, but watched). Start from DefaultEtcdConfig so that fields
// added later keep their defaults.
type EtcdConfig struct {
	// etcd client URLs, "http://host:port" or "host:port" (port 2379 if absent), tried in
	// order. At least one; https, TLS and authentication are not supported.
	Endpoints []string
	// The key prefix whose keys hold the upstreams ("/services/api/"); "" is every key.
	Prefix string
	// The key whose non-empty value selects the JSON entries of that version; "": the
	// prefix followed by ".version".
	VersionKey string
	// Time limit of each call to etcd, and of the first refresh's wait for the first read;
	// 0: 5 s.
	Timeout time.Duration
	// Interval of the safety-net re-read; 0: 5 minutes.
	Resync time.Duration
	// Of every upstream whose entry sets none, as in Upstream (Weight 0 means 1).
	Weight, MaxRequests, Tier uint32
	// Of every upstream of this source.
	Tag uintptr
}

// DefaultEtcdConfig is the library's default for prefix and endpoints: the version key
// prefix + ".version", a timeout of 5 s and a resync of 5 minutes (both 0: the library's
// defaults), weight 1, no request limit, tier 0.
func DefaultEtcdConfig(prefix string, endpoints ...string) EtcdConfig {
	var c C.lc_etcd_config
	C.lc_etcd_config_default(&c)
	return EtcdConfig{
		Endpoints: endpoints, Prefix: prefix,
		Timeout: time.Duration(c.timeout_ms) * time.Millisecond,
		Resync:  time.Duration(c.resync_ms) * time.Millisecond,
		Weight:  uint32(c.weight), MaxRequests: uint32(c.max_requests), Tier: uint32(c.tier),
	}
}

// EtcdSource returns an `etcd` source: the upstreams under config.Prefix, each key holding
// a dial address or the module's JSON ({"endpoints":["http://10.0.0.1:8080"],"version":"v"},
// optionally with weight, max_requests, tier), in key order.
//
// Nothing is read here: the first refresh (NewPool, Pool.Refresh, a Refresher) starts a
// library thread that reads the prefix and then watches it, and waits for the first read
// (at most Timeout); later refreshes copy the current list and never wait for etcd. While
// no endpoint answers, a refresh fails (inside a MultiSource: logged and skipped; wrap the
// source in a GraceSource to keep its last list). Closing the source, or the pool holding
// it, stops and joins the thread.
//
// Errors: ErrInvalidArgument (no endpoints, one that is not "http://host:port", a NUL byte
// in an endpoint, the prefix or the version key), ErrInvalidUTF8, ErrInvalidWeight,
// ErrInvalidLimit (a negative duration; MaxRequests or Tier out of range).
func EtcdSource(config EtcdConfig) (*Source, error) {
	cc := cConfig{op: "etcd source", nulStatus: C.LC_ERR_INVALID_ARGUMENT}
	defer cc.free()
	c := (*C.lc_etcd_config)(cc.alloc(1, unsafe.Sizeof(C.lc_etcd_config{})))
	C.lc_etcd_config_default(c)
	c.endpoints, c.endpoints_len = cc.strs(config.Endpoints)
	c.prefix = cc.str(config.Prefix)
	c.version_key = cc.optStr(config.VersionKey)
	c.timeout_ms = cc.millis(config.Timeout)
	c.resync_ms = cc.millis(config.Resync)
	if cc.err != nil {
		return nil, cc.err
	}
	setShared(&c.weight, &c.max_requests, &c.tier, &c.tag,
		config.Weight, config.MaxRequests, config.Tier, config.Tag)
	var out *C.lc_source
	if st := C.lc_source_etcd_new(c, &out); st != C.LC_OK {
		return nil, checkDetail(st, cc.op, "endpoints %q, prefix %q", config.Endpoints, config.Prefix)
	}
	return newSource(out), nil
}
