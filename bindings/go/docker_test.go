package leastconn

import (
	"errors"
	"os"
	"testing"
	"time"
)

// A socket path that exists on no machine: connecting fails at once, with no daemon needed.
const absentDocker = "unix:///nonexistent-leastconn-test/docker.sock"

func TestDockerConfigDefaults(t *testing.T) {
	want := DockerConfig{Refresh: 30 * time.Second, Timeout: 5 * time.Second, Weight: 1}
	got := DefaultDockerConfig()
	if got.Host != want.Host || got.Port != want.Port || got.Labels != nil || got.Refresh != want.Refresh ||
		got.Timeout != want.Timeout || got.Weight != 1 || got.MaxRequests != 0 || got.Tier != 0 || got.Tag != 0 {
		t.Fatalf("DefaultDockerConfig() = %+v", got)
	}
}

func TestDockerSourceRefusesBadConfigurations(t *testing.T) {
	const year = 365 * 24 * time.Hour
	with := func(f func(*DockerConfig)) DockerConfig {
		c := DefaultDockerConfig()
		c.Host = absentDocker
		f(&c)
		return c
	}
	cases := []struct {
		name   string
		config DockerConfig
		want   error
	}{
		{"tcp host", with(func(c *DockerConfig) { c.Host = "tcp://127.0.0.1:2375" }), ErrInvalidArgument},
		{"relative socket", with(func(c *DockerConfig) { c.Host = "unix://relative.sock" }), ErrInvalidArgument},
		{"host not UTF-8", with(func(c *DockerConfig) { c.Host = "unix:///\xff" }), ErrInvalidUTF8},
		{"NUL in host", with(func(c *DockerConfig) { c.Host = "unix:///a\x00b" }), ErrInvalidArgument},
		{"NUL in a key", with(func(c *DockerConfig) { c.Labels = map[string][]string{"ro\x00le": nil} }), ErrInvalidArgument},
		{"NUL in a value", with(func(c *DockerConfig) { c.Labels = map[string][]string{"role": {"w\x00b"}} }), ErrInvalidArgument},
		{"key not UTF-8", with(func(c *DockerConfig) { c.Labels = map[string][]string{"\xff": nil} }), ErrInvalidUTF8},
		{"value not UTF-8", with(func(c *DockerConfig) { c.Labels = map[string][]string{"role": {"\xff"}} }), ErrInvalidUTF8},
		{"refresh 0", with(func(c *DockerConfig) { c.Refresh = 0 }), ErrInvalidLimit},
		{"timeout 0", with(func(c *DockerConfig) { c.Timeout = 0 }), ErrInvalidLimit},
		{"negative refresh", with(func(c *DockerConfig) { c.Refresh = -time.Second }), ErrInvalidLimit},
		{"refresh above a year", with(func(c *DockerConfig) { c.Refresh = year + time.Millisecond }), ErrInvalidLimit},
		{"timeout above a year", with(func(c *DockerConfig) { c.Timeout = year + time.Millisecond }), ErrInvalidLimit},
		{"weight", with(func(c *DockerConfig) { c.Weight = 1000001 }), ErrInvalidWeight},
		{"max requests", with(func(c *DockerConfig) { c.MaxRequests = 268435457 }), ErrInvalidLimit},
		{"tier", with(func(c *DockerConfig) { c.Tier = 256 }), ErrInvalidLimit},
	}
	for _, c := range cases {
		src, err := DockerSource(c.config)
		if !errors.Is(err, c.want) || src != nil {
			t.Errorf("%s: got %v, %v; want %v", c.name, src, err, c.want)
		}
		var e *Error
		if errors.As(err, &e) && e.Op != "docker source" {
			t.Errorf("%s: op %q", c.name, e.Op)
		}
	}
	// The limits themselves are accepted, with labels of both kinds; nothing is contacted.
	ok := with(func(c *DockerConfig) {
		c.Port, c.Refresh, c.Timeout = 8080, year, time.Millisecond
		c.Weight, c.MaxRequests, c.Tier, c.Tag = 1000000, 268435456, 255, 7
		c.Labels = map[string][]string{"role": {"web", "api"}, "env": nil, "team": {}}
	})
	src, err := DockerSource(ok)
	if err != nil {
		t.Fatalf("valid configuration: %v", err)
	}
	src.Close()
}

// Host "" is DOCKER_HOST, read when DockerSource is called (Go's os.Setenv reaches the C
// environment in a cgo program), else the default socket.
func TestDockerSourceReadsDockerHost(t *testing.T) {
	t.Setenv("DOCKER_HOST", "tcp://10.0.0.1:2375")
	if _, err := DockerSource(DefaultDockerConfig()); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("DOCKER_HOST=tcp://...: %v", err)
	}
	t.Setenv("DOCKER_HOST", absentDocker)
	src, err := DockerSource(DefaultDockerConfig())
	if err != nil {
		t.Fatalf("DOCKER_HOST=%s: %v", absentDocker, err)
	}
	src.Close()
	os.Unsetenv("DOCKER_HOST") // t.Setenv restores the original afterwards
	if src, err = DockerSource(DefaultDockerConfig()); err != nil {
		t.Fatalf("the default socket: %v", err)
	}
	src.Close()
}

// A static list and a docker source whose daemon is absent: the first refresh logs the
// docker failure and skips it; the static host is picked.
func TestMultiOfStaticAndAbsentDockerSkipsDocker(t *testing.T) {
	pool := multiSkipsFailingSource(t, absentDockerSource(t),
		"ERROR multi: source 1 failed: docker daemon at /nonexistent-leastconn-test/docker.sock: cannot connect: ")
	if r, err := pool.Refresh(); err != nil || r.Upstreams != 1 {
		t.Fatalf("refresh: %+v %v", r, err)
	}
}

// Alone, the absent daemon fails the refresh (the pool builds, empty).
func TestAbsentDockerAloneFailsTheRefresh(t *testing.T) {
	failsAlone(t, absentDockerSource(t))
}

func absentDockerSource(t *testing.T) *Source {
	t.Helper()
	config := DefaultDockerConfig()
	config.Host = absentDocker
	docker, err := DockerSource(config)
	if err != nil {
		t.Fatal(err)
	}
	return docker
}
