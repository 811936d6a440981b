package leastconn

import (
	"errors"
	"runtime"
	"sync"
	"testing"
)

// grow recurses deeply enough that the goroutine's stack is copied to a larger one: any
// lc_pick kept on a Go stack would move.
func grow(n int) int {
	var pad [256]byte
	pad[n%256] = byte(n)
	if n == 0 {
		return int(pad[0])
	}
	return grow(n-1) + int(pad[n%256])
}

// The library binds each reservation to the address of its lc_pick and refuses a release
// through a copy (ErrPickMoved). A Pick keeps its lc_pick in C memory from select to
// release, so neither stack growth, a garbage collection, nor a release from another
// goroutine (on another thread) moves it.
func TestPicksStayPutBetweenSelectAndRelease(t *testing.T) {
	pool := staticPool(t, nil, "127.0.0.1:1", "127.0.0.1:2")
	picker, err := pool.NewPicker(42)
	if err != nil {
		t.Fatal(err)
	}
	defer picker.Close()
	const n = 64
	picks := make(chan *Pick, 2*n)
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				var pick *Pick
				var err error
				if g == 0 {
					pick, err = pool.Select()
				} else {
					pick, err = picker.Select()
				}
				if err != nil {
					t.Errorf("select: %v", err)
					return
				}
				grow(64)
				picks <- pick
			}
		}(g)
	}
	wg.Wait()
	close(picks)
	runtime.GC()
	var releasers sync.WaitGroup
	for pick := range picks {
		releasers.Add(1)
		go func(pick *Pick) {
			defer releasers.Done()
			grow(64)
			if err := pick.Release(Success); err != nil {
				t.Errorf("release of %s: %v", pick.Address(), err)
			}
		}(pick)
	}
	releasers.Wait()
	var picked uint64
	for _, addr := range []string{"127.0.0.1:1", "127.0.0.1:2"} {
		s, _ := pool.HostStats(addr)
		if s.InFlight != 0 {
			t.Errorf("%s: %d in flight", addr, s.InFlight)
		}
		picked += s.Picks
	}
	if picked != 2*n {
		t.Fatalf("%d picks counted, want %d", picked, 2*n)
	}
}

// What the test above guards against: a copy of the lc_pick at another address is refused
// and changes nothing; the Pick itself then releases normally.
func TestAMovedCopyOfAPickIsRefused(t *testing.T) {
	pool := staticPool(t, nil, "127.0.0.1:1")
	pick, err := pool.Select()
	if err != nil {
		t.Fatal(err)
	}
	if err := releaseMovedCopy(pick); !errors.Is(err, ErrPickMoved) {
		t.Fatalf("release of a copy: %v", err)
	}
	if n := inFlight(t, pool, "127.0.0.1:1"); n != 1 {
		t.Fatalf("the refused copy released: %d in flight", n)
	}
	if err := pick.Release(Success); err != nil {
		t.Fatal(err)
	}
	if n := inFlight(t, pool, "127.0.0.1:1"); n != 0 {
		t.Fatalf("%d in flight", n)
	}
	if ErrPickMoved.Error() != "leastconn: pick released at another address than it was selected into (a copy)" {
		t.Fatalf("message %q", ErrPickMoved.Error())
	}
}

// ThreadWarmup is offered for goroutines pinned to their thread; a pinned worker warms up
// and then picks as usual.
func TestThreadWarmupOnAPinnedGoroutine(t *testing.T) {
	pool := staticPool(t, nil, "127.0.0.1:1")
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		ThreadWarmup()
		ThreadWarmup() // idempotent
		pick, err := pool.Select()
		if err == nil {
			err = pick.Release(Success)
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s, _ := pool.HostStats("127.0.0.1:1"); s.Picks != 1 || s.InFlight != 0 {
		t.Fatalf("%+v", s)
	}
}

// A Select and its Release allocate the Pick and its copy of the address, nothing more
// (cgo's pointer check of the lc_pool or lc_picker argument once boxed it: a third).
func TestSelectAllocatesOnlyThePickAndItsAddress(t *testing.T) {
	pool := staticPool(t, nil, "127.0.0.1:1")
	picker, err := pool.NewPicker(1)
	if err != nil {
		t.Fatal(err)
	}
	defer picker.Close()
	for _, c := range []struct {
		name   string
		selekt func(...HostID) (*Pick, error)
	}{{"pool", pool.Select}, {"picker", picker.Select}} {
		allocs := testing.AllocsPerRun(100, func() {
			pick, err := c.selekt()
			if err != nil {
				t.Fatal(err)
			}
			if err := pick.Release(Success); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 2 {
			t.Errorf("%s: %v allocations per select and release, want 2", c.name, allocs)
		}
	}
}
