// Command proxy is a reverse proxy whose upstream is chosen per request by leastconn:
// net/http/httputil.ReverseProxy with a Transport that selects a host, retries connection
// errors on the hosts not tried yet, and releases the host when the response body is closed,
// so that a host's in-flight count covers the whole response (as Caddy's does).
//
//	go run ./examples/proxy -listen 127.0.0.1:8080 -upstreams 127.0.0.1:9001,127.0.0.1:9002
//	go run ./examples/proxy -demo 400   # local fast and slow backends, prints the spread
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	leastconn "github.com/leastconn/leastconn/bindings/go"
)

// Transport sends each request to a host picked by Pool.
type Transport struct {
	Pool *leastconn.Pool
	// Base does the HTTP; nil means http.DefaultTransport.
	Base http.RoundTripper
	// MaxTries bounds the hosts tried per request; 0 means 3.
	MaxTries int
}

// RoundTrip picks a host, sends the request there and hands back the response with the
// pick attached to its body. A connection error (the request was never sent) releases the
// host with a failure (passive health) and tries another host, excluding those tried,
// when the request body can be sent again.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	maxTries := t.MaxTries
	if maxTries <= 0 {
		maxTries = 3
	}
	var tried []leastconn.HostID
	var lastErr error
	for {
		pick, err := t.Pool.Select(tried...)
		if err != nil {
			if lastErr != nil { // the last connection error is the answer: 502, not 503
				return nil, fmt.Errorf("%w (no other host to try: %v)", lastErr, err)
			}
			return nil, err
		}
		out := req.Clone(req.Context())
		out.URL.Scheme = "http"
		out.URL.Host = pick.Address()
		if len(tried) > 0 && req.GetBody != nil {
			if out.Body, err = req.GetBody(); err != nil {
				pick.Release(leastconn.Success) // nothing was sent to it
				return nil, err
			}
		}
		resp, err := base.RoundTrip(out)
		if err != nil {
			pick.Release(leastconn.Failure)
			tried = append(tried, pick.HostID())
			if isDialError(err) && len(tried) < maxTries && replayable(req) {
				lastErr = err
				continue
			}
			return nil, err
		}
		resp.Body = &releasingBody{ReadCloser: resp.Body, pick: pick}
		return resp, nil
	}
}

// isDialError: the connection was never made, so the request was not sent anywhere.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// releasingBody releases its pick when the response body is closed: with Failure when
// reading it failed, Success otherwise.
type releasingBody struct {
	io.ReadCloser
	pick   *leastconn.Pick
	failed atomic.Bool
	once   sync.Once
}

func (b *releasingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.failed.Store(true)
	}
	return n, err
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		outcome := leastconn.Success
		if b.failed.Load() {
			outcome = leastconn.Failure
		}
		b.pick.Release(outcome)
	})
	return err
}

// NewProxy is the reverse proxy: every request goes to a host of pool.
func NewProxy(pool *leastconn.Pool, base http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		// The Transport sets the host; the placeholder only makes the URL absolute.
		Director: func(r *http.Request) {
			r.URL.Scheme = "http"
			r.URL.Host = "leastconn.invalid"
		},
		Transport: &Transport{Pool: pool, Base: base},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status := http.StatusBadGateway
			if errors.Is(err, leastconn.ErrNoUpstream) {
				status = http.StatusServiceUnavailable
			}
			http.Error(w, err.Error(), status)
		},
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	upstreams := flag.String("upstreams", "", "comma-separated upstream addresses (host:port)")
	demo := flag.Int("demo", 0, "instead of serving: run this many requests through the proxy against local fast and slow backends, print the spread and exit")
	flag.Parse()
	leastconn.SetLogHook(leastconn.LoggerHook(log.Default()), leastconn.LogWarn)
	if *demo > 0 {
		if err := runDemo(*demo, os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	var addrs []string
	for _, a := range strings.Split(*upstreams, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	pool, err := staticPool(addrs, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	log.Printf("proxy on %s to %d upstreams (leastconn %s)", *listen, len(addrs), leastconn.Version())
	log.Fatal(http.ListenAndServe(*listen, NewProxy(pool, nil)))
}

// staticPool is a pool of a static list of addrs (weight 1 each); config nil is the
// default.
func staticPool(addrs []string, config *leastconn.Config) (*leastconn.Pool, error) {
	ups := make([]leastconn.Upstream, len(addrs))
	for i, a := range addrs {
		ups[i] = leastconn.Upstream{Address: a}
	}
	src, err := leastconn.StaticSource(ups)
	if err != nil {
		return nil, err
	}
	return leastconn.NewPool(src, config)
}

// runDemo starts two fast backends, one slow one (50 ms per response body) and one address
// that refuses connections, sends n requests from 8 clients through the proxy, and prints
// how they spread and what stayed in flight (nothing, or an error).
func runDemo(n int, w io.Writer) error {
	names := map[string]string{}
	var addrs []string
	for _, b := range []struct {
		name  string
		delay time.Duration
	}{{"fast-1", 0}, {"fast-2", 0}, {"slow", 50 * time.Millisecond}} {
		b := b
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			rw.WriteHeader(http.StatusOK)
			rw.(http.Flusher).Flush()
			time.Sleep(b.delay)
			io.WriteString(rw, b.name)
		}))
		defer srv.Close()
		addr := srv.Listener.Addr().String()
		names[addr] = b.name
		addrs = append(addrs, addr)
	}
	refused, closeRefused, err := refusingAddress()
	if err != nil {
		return err
	}
	defer closeRefused()
	names[refused] = "refusing"
	addrs = append(addrs, refused)

	pool, err := staticPool(addrs, nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	front := httptest.NewServer(NewProxy(pool, nil))
	defer front.Close()

	var next atomic.Int64
	var mu sync.Mutex
	served := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				resp, err := http.Get(front.URL)
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("status %d, %v: %s", resp.StatusCode, err, body)
					return
				}
				mu.Lock()
				served[string(body)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	front.Close() // waits for the proxy's handlers, so every response body is closed
	stats, err := pool.Stats()
	if err != nil {
		return err
	}
	sort.Slice(stats, func(i, j int) bool { return names[stats[i].Address] < names[stats[j].Address] })
	fmt.Fprintf(w, "%d requests through the proxy, 8 clients:\n", n)
	var stuck []string
	for _, s := range stats {
		name := names[s.Address]
		fmt.Fprintf(w, "  %-8s %-21s served %4d (%5.1f%%)  picks %4d  failures %d  in flight %d\n",
			name, s.Address, served[name], 100*float64(served[name])/float64(n), s.Picks, s.RecentFailures, s.InFlight)
		if s.InFlight != 0 {
			stuck = append(stuck, name)
		}
	}
	if len(stuck) > 0 {
		return fmt.Errorf("requests still in flight on %v", stuck)
	}
	return nil
}
