package leastconn

// #include "bridge.h"
import "C"

import (
	"time"
	"unsafe"
)

// IPVersions says which address families an A source asks for.
type IPVersions uint32

const (
	IPBoth IPVersions = C.LC_IP_BOTH // A and AAAA, asked in parallel; IPv4 first. The default.
	IPv4   IPVersions = C.LC_IP_V4   // A records only
	IPv6   IPVersions = C.LC_IP_V6   // AAAA records only
)

// RetriesDefault as AConfig.Retries or SRVConfig.Retries: the library's default (2, or
// resolv.conf's attempts for an SRV source without explicit resolvers).
const RetriesDefault = C.LC_DNS_RETRIES_DEFAULT

// AConfig configures an `a` source (Caddy's `a` upstreams). Start from DefaultAConfig.
type AConfig struct {
	// The DNS name, or an IP literal ("192.0.2.7", "2001:db8::7", "[2001:db8::7]"), which
	// yields itself without a query.
	Name     string
	Port     uint16 // of every upstream, 1 to 65535
	Versions IPVersions
	// How long a successful lookup is reused; 0 looks up on every refresh.
	Refresh time.Duration
	// Name servers, "ip" or "ip:port", asked in order; none: the system's resolution
	// (getaddrinfo, so /etc/hosts and resolv.conf apply).
	Resolvers []string
	Timeout   time.Duration // per query attempt to explicit resolvers; 0: 5 s
	Retries   int32         // after a failed attempt; RetriesDefault: 2
	// Of every upstream of this source, as in Upstream.
	Weight, MaxRequests, Tier uint32
	Tag                       uintptr
}

// DefaultAConfig is the library's default for name: port 80, both IP versions, a refresh of
// 60 s, the system's resolution, weight 1, no request limit, tier 0.
func DefaultAConfig(name string) AConfig {
	var c C.lc_dns_a_config
	C.lc_dns_a_config_default(&c)
	return AConfig{
		Name: name, Port: uint16(c.port), Versions: IPVersions(c.versions),
		Refresh: time.Duration(c.refresh_ms) * time.Millisecond,
		Timeout: time.Duration(c.timeout_ms) * time.Millisecond, Retries: int32(c.retries),
		Weight: uint32(c.weight), MaxRequests: uint32(c.max_requests), Tier: uint32(c.tier),
	}
}

// SRVConfig configures an `srv` source (Caddy's `srv` upstreams). Start from
// DefaultSRVConfig.
type SRVConfig struct {
	// _Service._Proto.Name, e.g. "api", "tcp", "internal"; with Service and Proto empty,
	// Name is the full SRV name.
	Service, Proto, Name string
	// How long a successful lookup is reused; 0 looks up on every refresh.
	Refresh time.Duration
	// After a failed lookup, the last good list is served for up to this long.
	GracePeriod time.Duration
	// Name servers, "ip" or "ip:port", asked in order; none: those of /etc/resolv.conf.
	Resolvers []string
	Timeout   time.Duration // per query attempt; 0: resolv.conf's, or 5 s
	Retries   int32         // after a failed attempt; RetriesDefault: resolv.conf's, or 2
	// Of every upstream of this source, as in Upstream.
	Weight, MaxRequests, Tier uint32
	Tag                       uintptr
}

// DefaultSRVConfig is the library's default for _service._proto.name: a refresh of 60 s, no
// grace period, the name servers of /etc/resolv.conf, weight 1, no request limit, tier 0.
func DefaultSRVConfig(service, proto, name string) SRVConfig {
	var c C.lc_dns_srv_config
	C.lc_dns_srv_config_default(&c)
	return SRVConfig{
		Service: service, Proto: proto, Name: name,
		Refresh:     time.Duration(c.refresh_ms) * time.Millisecond,
		GracePeriod: time.Duration(c.grace_period_ms) * time.Millisecond,
		Timeout:     time.Duration(c.timeout_ms) * time.Millisecond, Retries: int32(c.retries),
		Weight: uint32(c.weight), MaxRequests: uint32(c.max_requests), Tier: uint32(c.tier),
	}
}

// ASource returns an `a` source: it resolves config.Name and yields "ip:port"
// ("[ipv6]:port") per address, in the resolver's order. Nothing is looked up here: lookups
// run in refreshes, never in a Select. Errors: ErrInvalidAddress (a name, port 0 or resolver
// that cannot work), ErrInvalidArgument (unknown Versions, or an IP literal of an excluded
// version), ErrInvalidWeight, ErrInvalidLimit.
func ASource(config AConfig) (*Source, error) {
	cc := cConfig{op: "a source", nulStatus: C.LC_ERR_INVALID_ADDRESS}
	defer cc.free()
	c := (*C.lc_dns_a_config)(cc.alloc(1, unsafe.Sizeof(C.lc_dns_a_config{})))
	C.lc_dns_a_config_default(c)
	c.name = cc.str(config.Name)
	c.resolvers, c.resolvers_len = cc.strs(config.Resolvers)
	c.refresh_ms = cc.millis(config.Refresh)
	c.timeout_ms = cc.millis(config.Timeout)
	if cc.err != nil {
		return nil, cc.err
	}
	c.port = C.uint16_t(config.Port)
	c.versions = C.lc_ip_versions(config.Versions)
	c.retries = C.int32_t(config.Retries)
	setShared(&c.weight, &c.max_requests, &c.tier, &c.tag,
		config.Weight, config.MaxRequests, config.Tier, config.Tag)
	var out *C.lc_source
	if st := C.lc_source_dns_a_new(c, &out); st != C.LC_OK {
		return nil, checkDetail(st, cc.op, "%q", config.Name)
	}
	return newSource(out), nil
}

// SRVSource returns an `srv` source: it looks up the SRV records of _service._proto.name and
// yields "target:port" per record (the target with its final dot), by priority and RFC
// 2782's weighted order. Lookups run in refreshes, never in a Select. Errors:
// ErrInvalidAddress (an invalid name or resolver), ErrInvalidArgument (only one of Service
// and Proto), ErrInvalidWeight, ErrInvalidLimit.
func SRVSource(config SRVConfig) (*Source, error) {
	cc := cConfig{op: "srv source", nulStatus: C.LC_ERR_INVALID_ADDRESS}
	defer cc.free()
	c := (*C.lc_dns_srv_config)(cc.alloc(1, unsafe.Sizeof(C.lc_dns_srv_config{})))
	C.lc_dns_srv_config_default(c)
	c.service = cc.optStr(config.Service)
	c.proto = cc.optStr(config.Proto)
	c.name = cc.str(config.Name)
	c.resolvers, c.resolvers_len = cc.strs(config.Resolvers)
	c.refresh_ms = cc.millis(config.Refresh)
	c.grace_period_ms = cc.millis(config.GracePeriod)
	c.timeout_ms = cc.millis(config.Timeout)
	if cc.err != nil {
		return nil, cc.err
	}
	c.retries = C.int32_t(config.Retries)
	setShared(&c.weight, &c.max_requests, &c.tier, &c.tag,
		config.Weight, config.MaxRequests, config.Tier, config.Tag)
	var out *C.lc_source
	if st := C.lc_source_dns_srv_new(c, &out); st != C.LC_OK {
		return nil, checkDetail(st, cc.op, "%q", config.Name)
	}
	return newSource(out), nil
}
