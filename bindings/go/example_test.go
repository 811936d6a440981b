package leastconn_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	leastconn "github.com/leastconn/leastconn/bindings/go"
)

// A request tries a host, fails to connect, and retries on another one.
func ExampleNewPool() {
	src, err := leastconn.StaticSource([]leastconn.Upstream{
		{Address: "10.0.0.1:8080"},
		{Address: "10.0.0.2:8080"},
		{Address: "10.0.9.1:8080", Tier: 1}, // backup
	})
	if err != nil {
		panic(err)
	}
	config := leastconn.DefaultConfig()
	config.Policy = leastconn.First // list order, so that this example's output is fixed
	config.FailDuration = time.Hour // a failed host stays out for the whole example
	pool, err := leastconn.NewPool(src, &config)
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	first, err := pool.Select()
	if err != nil {
		panic(err)
	}
	fmt.Println("trying", first.Address())
	retry, err := pool.Select(first.HostID()) // never the host just tried
	if err != nil {
		panic(err)
	}
	first.Release(leastconn.Failure) // 1 failure within the window: unavailable
	fmt.Println("retrying on", retry.Address())
	retry.Release(leastconn.Failure)

	third, err := pool.Select() // both primaries failed: the backup tier serves
	if err != nil {
		panic(err)
	}
	fmt.Println("then", third.Address())
	third.Release(leastconn.Success)

	third.Release(leastconn.Success) // a second release changes nothing
	if _, err := pool.Select(third.HostID()); errors.Is(err, leastconn.ErrNoUpstream) {
		fmt.Println("no upstream left:", err)
	}
	// Output:
	// trying 10.0.0.1:8080
	// retrying on 10.0.0.2:8080
	// then 10.0.9.1:8080
	// no upstream left: leastconn: select: no upstream available
}

// A pool from the reverse_proxy handler that `caddy adapt` prints, and a malformed one.
func ExampleNewPoolJSON() {
	pool, err := leastconn.NewPoolJSON([]byte(`{
		"upstreams": [{"dial": "10.0.0.1:8080", "max_requests": 100}, {"dial": "10.0.0.2:8080"}],
		"load_balancing": {"selection_policy": {"policy": "first"}},
		"health_checks": {"passive": {"fail_duration": "30s", "max_fails": 3}}}`))
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	pick, err := pool.Select()
	if err != nil {
		panic(err)
	}
	fmt.Println("picked", pick.Address())
	pick.Release(leastconn.Success)

	_, err = leastconn.NewPoolJSON([]byte(`{"upstreams": [{"dial": 8080}]}`))
	var lcErr *leastconn.Error
	if errors.Is(err, leastconn.ErrInvalidConfig) && errors.As(err, &lcErr) {
		fmt.Println(lcErr.Detail)
	}
	// Output:
	// picked 10.0.0.1:8080
	// upstreams[0].dial: expected a string
}

// Two pools named "app" on one zone file share their hosts' counts, as two processes that
// open the same path would.
func ExampleNewPoolInZone() {
	dir, err := os.MkdirTemp("", "leastconn-zone")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	zone, err := leastconn.OpenZone(filepath.Join(dir, "app.zone"), leastconn.DefaultZoneCapacity())
	if err != nil {
		panic(err)
	}
	defer zone.Close()
	var pools [2]*leastconn.Pool
	for i := range pools {
		src, err := leastconn.StaticSource([]leastconn.Upstream{{Address: "10.0.0.1:8080", MaxRequests: 1}})
		if err != nil {
			panic(err)
		}
		if pools[i], err = leastconn.NewPoolInZone(src, zone, "app", nil); err != nil {
			panic(err)
		}
		defer pools[i].Close()
	}
	pick, err := pools[0].Select()
	if err != nil {
		panic(err)
	}
	_, err = pools[1].Select()
	fmt.Println("the other pool at the shared limit:", errors.Is(err, leastconn.ErrNoUpstream))
	pick.Release(leastconn.Success)
	report, err := zone.Sweep()
	fmt.Printf("%+v %v\n", report, err)
	// Output:
	// the other pool at the shared limit: true
	// {Processes:0 Recovered:0 InDoubt:0} <nil>
}

// A pool from Caddy JSON on a zone shares its hosts' counts with every pool of its name
// there, built from JSON or not.
func ExampleNewPoolJSONInZone() {
	zone, err := leastconn.NewAnonymousZone(leastconn.DefaultZoneCapacity())
	if err != nil {
		panic(err)
	}
	defer zone.Close()
	handler := []byte(`{"upstreams": [{"dial": "10.0.0.1:8080", "max_requests": 1}]}`)
	var pools [2]*leastconn.Pool
	for i := range pools {
		if pools[i], err = leastconn.NewPoolJSONInZone(handler, zone, "app"); err != nil {
			panic(err)
		}
		defer pools[i].Close()
	}
	pick, err := pools[0].Select()
	if err != nil {
		panic(err)
	}
	_, err = pools[1].Select()
	fmt.Println("the other pool at the shared limit:", errors.Is(err, leastconn.ErrNoUpstream))
	pick.Release(leastconn.Success)
	// Output:
	// the other pool at the shared limit: true
}
