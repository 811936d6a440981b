package leastconn

import (
	"fmt"
	"testing"
)

// BenchmarkSelectRelease: one Select and its Release, through cgo from Go and in a C loop,
// on one pool of 8 hosts, single goroutine. `go test -run '^$' -bench SelectRelease`.
func BenchmarkSelectRelease(b *testing.B) {
	addrs := make([]string, 8)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", 1000+i)
	}
	b.Run("cgo-empty-call", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			cgoNoop()
		}
	})
	b.Run("go/pool", func(b *testing.B) {
		pool := staticPool(b, nil, addrs...)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			pick, err := pool.Select()
			if err != nil {
				b.Fatal(err)
			}
			if err := pick.Release(Success); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("c/pool", func(b *testing.B) {
		pool := staticPool(b, nil, addrs...)
		b.ResetTimer()
		if err := benchC(pool, nil, b.N); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("go/picker", func(b *testing.B) {
		pool := staticPool(b, nil, addrs...)
		picker, err := pool.NewPicker(1)
		if err != nil {
			b.Fatal(err)
		}
		defer picker.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			pick, err := picker.Select()
			if err != nil {
				b.Fatal(err)
			}
			if err := pick.Release(Success); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("c/picker", func(b *testing.B) {
		pool := staticPool(b, nil, addrs...)
		picker, err := pool.NewPicker(1)
		if err != nil {
			b.Fatal(err)
		}
		defer picker.Close()
		b.ResetTimer()
		if err := benchC(pool, picker, b.N); err != nil {
			b.Fatal(err)
		}
	})
}
