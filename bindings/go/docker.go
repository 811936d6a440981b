package leastconn

// #include "bridge.h"
import "C"

import (
	"sort"
	"time"
	"unsafe"
)

// DockerConfig configures a `docker` source (Caddy's `docker` upstreams, the module
// invzhi/caddy-docker-upstreams). Start from DefaultDockerConfig so that fields added later
// keep their defaults.
type DockerConfig struct {
	// The daemon's socket, "unix:///path"; "": the environment's DOCKER_HOST at the time of
	// the DockerSource call, else "unix:///var/run/docker.sock". Other schemes (tcp://,
	// ssh://) are refused.
	Host string
	// The port of every upstream; 0: each container's label
	// com.caddyserver.http.upstream.port.
	Port uint16
	// Label requirements: a container must carry every key (ANDed), with one of its values
	// (ORed); no values (nil or empty) accepts any value. nil: every opted-in container.
	Labels map[string][]string
	// The safety-net re-list period (events trigger re-lists in between); whole
	// milliseconds, rounded up; above 0 and at most 365 days.
	Refresh time.Duration
	// The bound on each request to the daemon; above 0 and at most 365 days. The first
	// refresh waits for the first listing for at most twice this.
	Timeout time.Duration
	// Of every upstream of this source, as in Upstream (Weight 0 means 1).
	Weight, MaxRequests, Tier uint32
	Tag                       uintptr
}

// DefaultDockerConfig is the library's default: the socket of DOCKER_HOST, ports from
// labels, no label requirement, a refresh of 30 s, a request timeout of 5 s, weight 1, no
// request limit, tier 0.
func DefaultDockerConfig() DockerConfig {
	var c C.lc_docker_config
	C.lc_docker_config_default(&c)
	return DockerConfig{
		Port:    uint16(c.port),
		Refresh: time.Duration(c.refresh_ms) * time.Millisecond,
		Timeout: time.Duration(c.timeout_ms) * time.Millisecond,
		Weight:  uint32(c.weight), MaxRequests: uint32(c.max_requests), Tier: uint32(c.tier),
	}
}

// DockerSource returns a `docker` source: one upstream "ip:port" per running container
// labelled com.caddyserver.http.enable=true that is healthy or has no healthcheck and meets
// config.Labels, ordered by container name (the root README's "Docker source" section has
// the rules for the IP and the port).
//
// Nothing is contacted here. The first refresh that asks the source (NewPool, Pool.Refresh,
// a Refresher) starts a library thread that follows the daemon's events and re-lists off
// the Select path, and waits for its first listing (at most 2 x Timeout); later refreshes
// copy the latest listing. While the daemon cannot be reached a refresh fails with its
// error, naming the socket (inside a MultiSource: logged and skipped; wrap the source in a
// GraceSource to keep its last list). Closing the source, or the pool holding it, stops
// and joins the thread.
//
// Errors: ErrInvalidArgument (a Host, or DOCKER_HOST, that is not "unix:///path"; a NUL
// byte in Host or a label), ErrInvalidUTF8, ErrInvalidLimit (Refresh or Timeout 0, negative
// or above 365 days; MaxRequests or Tier out of range), ErrInvalidWeight.
func DockerSource(config DockerConfig) (*Source, error) {
	cc := cConfig{op: "docker source", nulStatus: C.LC_ERR_INVALID_ARGUMENT}
	defer cc.free()
	c := (*C.lc_docker_config)(cc.alloc(1, unsafe.Sizeof(C.lc_docker_config{})))
	C.lc_docker_config_default(c)
	c.host = cc.optStr(config.Host)
	c.labels, c.labels_len = dockerLabels(&cc, config.Labels)
	c.refresh_ms = cc.millis(config.Refresh)
	c.timeout_ms = cc.millis(config.Timeout)
	if cc.err != nil {
		return nil, cc.err
	}
	c.port = C.uint16_t(config.Port)
	setShared(&c.weight, &c.max_requests, &c.tier, &c.tag,
		config.Weight, config.MaxRequests, config.Tier, config.Tag)
	var out *C.lc_source
	if st := C.lc_source_docker_new(c, &out); st != C.LC_OK {
		return nil, checkDetail(st, cc.op, "host %q", config.Host)
	}
	return newSource(out), nil
}

// dockerLabels copies the requirements into a C array of lc_docker_label, keys in sorted
// order (a map has none): one entry per accepted value, or one with a NULL value for any.
func dockerLabels(cc *cConfig, labels map[string][]string) (*C.lc_docker_label, C.size_t) {
	keys := make([]string, 0, len(labels))
	n := 0
	for k, values := range labels {
		keys = append(keys, k)
		if len(values) == 0 {
			n++
		}
		n += len(values)
	}
	if n == 0 {
		return nil, 0
	}
	sort.Strings(keys)
	slots := unsafe.Slice((*C.lc_docker_label)(cc.alloc(n, unsafe.Sizeof(C.lc_docker_label{}))), n)
	i := 0
	for _, k := range keys {
		key := cc.str(k)
		if len(labels[k]) == 0 {
			slots[i] = C.lc_docker_label{key: key}
			i++
		}
		for _, v := range labels[k] {
			slots[i] = C.lc_docker_label{key: key, value: cc.str(v)}
			i++
		}
	}
	return &slots[0], C.size_t(n)
}
