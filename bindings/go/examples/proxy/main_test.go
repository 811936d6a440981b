package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	leastconn "github.com/leastconn/leastconn/bindings/go"
)

// harness is the proxy in front of a pool, served on loopback, with each request's end on
// the proxy side (its handler returned, so its response body is closed and its pick
// released) signalled to the client that sent it.
type harness struct {
	pool  *leastconn.Pool
	front *httptest.Server
	ended sync.Map // request id -> chan struct{}
	ids   atomic.Int64
}

// serialRoundTrips lets one request at a time through the proxy's Transport, from its pick
// to its response headers (bodies still overlap). Concurrent picks scan the counters before
// any of them reserves, so they may all choose the same host; one at a time, every pick
// sees every earlier reservation, which is what makes the share bound below exact.
type serialRoundTrips struct {
	mu    sync.Mutex
	inner http.RoundTripper
}

func (s *serialRoundTrips) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inner.RoundTrip(r)
}

func newHarness(t *testing.T, config *leastconn.Config, addrs ...string) *harness {
	return newHarnessWith(t, config, false, addrs...)
}

func newHarnessWith(t *testing.T, config *leastconn.Config, serial bool, addrs ...string) *harness {
	t.Helper()
	pool, err := staticPool(addrs, config)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{pool: pool}
	proxy := NewProxy(pool, nil)
	if serial {
		proxy.Transport = &serialRoundTrips{inner: proxy.Transport}
	}
	h.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxy.ServeHTTP(w, r)
		if ch, ok := h.ended.Load(r.Header.Get("X-Test-Request")); ok {
			close(ch.(chan struct{}))
		}
	}))
	t.Cleanup(func() {
		h.front.Close()
		pool.Close()
	})
	return h
}

// get sends one request through the proxy and returns once the proxy is done with it.
func (h *harness) get(client *http.Client) (int, string, error) {
	id := fmt.Sprint(h.ids.Add(1))
	ended := make(chan struct{})
	h.ended.Store(id, ended)
	defer h.ended.Delete(id)
	req, _ := http.NewRequest(http.MethodGet, h.front.URL, nil)
	req.Header.Set("X-Test-Request", id)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	<-ended
	return resp.StatusCode, string(body), err
}

func (h *harness) assertNothingInFlight(t *testing.T) {
	t.Helper()
	stats, err := h.pool.Stats()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range stats {
		if s.InFlight != 0 {
			t.Errorf("%s: %d requests still in flight", s.Address, s.InFlight)
		}
	}
}

// The slow backend sends its headers at once and holds every body until the end of the
// test. Its reservations therefore last as long as the whole response does, and least_conn
// picks it only while it has no more requests in flight than the fast one. With K clients,
// each waiting for the proxy to finish its previous request, and one pick at a time (see
// serialRoundTrips), the fast backend has at most K-1-j requests in flight when j clients
// are held by the slow one, so a pick of the slow one needs j <= K-1-j: it gets at most
// (K+1)/2 requests of any number, whatever the scheduling. A proxy releasing at the headers
// hands it far more (211 of 400 when that mutation was tried).
func TestSlowBackendGetsAtMostHalfTheClientsWholeResponseCounted(t *testing.T) {
	const clients, requests = 8, 400
	const bound = (clients + 1) / 2
	var fastServed, slowArrived atomic.Int64
	progress := make(chan struct{}, 2*requests+clients)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "fast")
	}))
	defer fast.Close()
	gate := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		slowArrived.Add(1)
		progress <- struct{}{}
		<-gate
		io.WriteString(w, "slow")
	}))
	defer slow.Close()
	defer func() {
		select {
		case <-gate:
		default:
			close(gate) // a failed test must not leave the backend's handlers waiting
		}
	}()
	h := newHarnessWith(t, nil, true, fast.Listener.Addr().String(), slow.Listener.Addr().String())

	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			for next.Add(1) <= requests {
				status, body, err := h.get(client)
				if err != nil || status != http.StatusOK || (body != "fast" && body != "slow") {
					errs <- fmt.Errorf("status %d, %v: %q", status, err, body)
					progress <- struct{}{} // wakes the wait below, which stops on an error
					return
				}
				if body == "fast" {
					fastServed.Add(1)
					progress <- struct{}{}
				}
			}
		}()
	}
	// Until every request has either been served by the fast backend or is held by the slow
	// one (or the slow one got more than the bound, which fails below).
	for fastServed.Load()+slowArrived.Load() < requests && slowArrived.Load() <= bound && len(errs) == 0 {
		<-progress
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	fastN, slowN := fastServed.Load(), slowArrived.Load()
	t.Logf("fast served %d, slow %d (bound %d) of %d", fastN, slowN, bound, requests)
	if slowN > bound {
		t.Fatalf("the slow backend got %d requests, more than %d: its in-flight count did not cover the whole response", slowN, bound)
	}
	if fastN+slowN != requests {
		t.Fatalf("%d + %d requests served, want %d", fastN, slowN, requests)
	}
	h.assertNothingInFlight(t)
}

// The reservation lasts until the response body is closed, not until the headers.
func TestInFlightCoversTheWholeResponseBody(t *testing.T) {
	gate := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-gate
		io.WriteString(w, "body")
	}))
	defer slow.Close()
	defer func() {
		select {
		case <-gate:
		default:
			close(gate)
		}
	}()
	addr := slow.Listener.Addr().String()
	h := newHarness(t, nil, addr)
	id := "body-test"
	ended := make(chan struct{})
	h.ended.Store(id, ended)
	req, _ := http.NewRequest(http.MethodGet, h.front.URL, nil)
	req.Header.Set("X-Test-Request", id)
	resp, err := http.DefaultClient.Do(req) // returns with the headers
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if s, _ := h.pool.HostStats(addr); s.InFlight != 1 {
		t.Fatalf("headers received, body pending: %d in flight, want 1", s.InFlight)
	}
	close(gate)
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "body" {
		t.Fatalf("body %q, %v", body, err)
	}
	<-ended
	if s, _ := h.pool.HostStats(addr); s.InFlight != 0 || s.Picks != 1 {
		t.Fatalf("after the body: %+v", s)
	}
}

func TestConnectionErrorIsRetriedOnAnotherHostAndCountsAsFailure(t *testing.T) {
	refused, free, err := refusingAddress()
	if err != nil {
		t.Fatal(err)
	}
	defer free()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	// "first": the refusing host is always tried first while it is healthy.
	config := leastconn.DefaultConfig()
	config.Policy = leastconn.First
	config.FailDuration = time.Hour // unhealthy for the whole test, however slow the machine
	h := newHarness(t, &config, refused, backend.Listener.Addr().String())

	status, body, err := h.get(http.DefaultClient)
	if err != nil || status != http.StatusOK || body != "ok" {
		t.Fatalf("status %d, %v: %q", status, err, body)
	}
	s, err := h.pool.HostStats(refused)
	if err != nil {
		t.Fatal(err)
	}
	if s.Picks != 1 || s.RecentFailures != 1 || !s.Unhealthy {
		t.Fatalf("refusing host after one request: %+v", s)
	}
	// Now unhealthy (1 failure in the window): the next request goes straight to the backend.
	if status, body, err := h.get(http.DefaultClient); err != nil || status != http.StatusOK || body != "ok" {
		t.Fatalf("second request: status %d, %v: %q", status, err, body)
	}
	if s, _ := h.pool.HostStats(refused); s.Picks != 1 {
		t.Fatalf("the unhealthy host was picked again: %+v", s)
	}
	h.assertNothingInFlight(t)
}

func TestEveryHostRefusingGivesBadGatewayAndReleasesAll(t *testing.T) {
	var addrs []string
	for i := 0; i < 2; i++ {
		a, free, err := refusingAddress()
		if err != nil {
			t.Fatal(err)
		}
		defer free()
		addrs = append(addrs, a)
	}
	config := leastconn.DefaultConfig()
	config.FailDuration = time.Hour
	h := newHarness(t, &config, addrs...)
	status, body, err := h.get(http.DefaultClient)
	if err != nil || status != http.StatusBadGateway || !strings.Contains(body, "connection refused") {
		t.Fatalf("status %d, %v: %q", status, err, body)
	}
	if status, _, _ := h.get(http.DefaultClient); status != http.StatusServiceUnavailable {
		t.Fatalf("with both hosts unhealthy: status %d, want 503", status)
	}
	h.assertNothingInFlight(t)
}

func TestDemoRuns(t *testing.T) {
	var out strings.Builder
	if err := runDemo(100, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "100 requests through the proxy") {
		t.Fatalf("demo output:\n%s", out.String())
	}
}
