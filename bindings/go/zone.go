package leastconn

// #include "bridge.h"
import "C"

import (
	"runtime"
	"unsafe"
)

// ZoneCapacity says how much a zone holds, fixed when it is made; the zone's size follows
// from these numbers alone (Size). Every process that opens a zone file must give exactly
// the capacities it was made with. Start from DefaultZoneCapacity; the library checks the
// ranges (ErrInvalidLimit outside them).
type ZoneCapacity struct {
	// Host slots: addresses listed at once over every pool on the zone (size it at twice
	// that). 1 to 2^30 - 1.
	Hosts uint32
	// Longest key: a pool's name on the zone, a NUL and an address, in bytes. 1 to 4095.
	AddressBytes uint32
	// Failure timestamps kept per host: the largest Config.MaxFails a pool on the zone may
	// use. 1 to 1024.
	FailRing uint32
	// Processes attached at once. 1 to 16383.
	Processes uint32
	// Threads (and pickers) picking at once, over all processes. 1 to 2^31 - 1.
	Threads uint32
}

// DefaultZoneCapacity is the library's default: 1024 hosts, 256 address bytes, a failure
// ring of 16, 64 processes, 256 threads.
func DefaultZoneCapacity() ZoneCapacity {
	var c C.lc_zone_capacity
	C.lc_zone_capacity_default(&c)
	return zoneCapacity(&c)
}

func zoneCapacity(c *C.lc_zone_capacity) ZoneCapacity {
	return ZoneCapacity{uint32(c.hosts), uint32(c.address_bytes), uint32(c.fail_ring), uint32(c.processes), uint32(c.threads)}
}

func (c ZoneCapacity) toC() C.lc_zone_capacity {
	return C.lc_zone_capacity{hosts: C.uint32_t(c.Hosts), address_bytes: C.uint32_t(c.AddressBytes), fail_ring: C.uint32_t(c.FailRing), processes: C.uint32_t(c.Processes), threads: C.uint32_t(c.Threads)}
}

// Size is the size in bytes of a zone with these capacities: what NewAnonymousZone and
// OpenZone map. ErrInvalidLimit when a capacity is out of range; ErrOS off Linux (no zones
// there).
func (c ZoneCapacity) Size() (int, error) {
	cc := c.toC()
	size := C.lc_zone_size(&cc)
	if size == 0 && runtime.GOOS != "linux" {
		return 0, &Error{Status: C.LC_ERR_OS, Op: "zone size", Detail: "shared zones exist on Linux only"}
	}
	if size == 0 {
		return 0, &Error{Status: C.LC_ERR_INVALID_LIMIT, Op: "zone size", Detail: "a capacity is out of range"}
	}
	return int(size), nil
}

// FitZoneCapacity returns c with the most Hosts whose zone fits in size bytes (c.Hosts is
// ignored): how to size a zone for memory of a given size. ErrZoneTooSmall when not even
// one host fits, ErrInvalidLimit for another field out of range.
func FitZoneCapacity(size int, c ZoneCapacity) (ZoneCapacity, error) {
	if size < 0 {
		return ZoneCapacity{}, &Error{Status: C.LC_ERR_ZONE_TOO_SMALL, Op: "fit zone capacity", Detail: "negative size"}
	}
	cc := c.toC()
	if st := C.lc_zone_capacity_fit(C.size_t(size), &cc); st != C.LC_OK {
		return ZoneCapacity{}, checkDetail(st, "fit zone capacity", "%d bytes", size)
	}
	return zoneCapacity(&cc), nil
}

// SweepReport says what Zone.Sweep did.
type SweepReport struct {
	Processes uint32 // records of dead processes swept
	Recovered uint64 // in-flight units subtracted: the reservations the dead processes held
	// Units left in doubt (a thread killed inside a pick or release): kept in the in-flight
	// count, each on a known host, until a later sweep finds the zone quiet and removes
	// them exactly.
	InDoubt uint64
}

// Zone is a shared zone: host state in memory that several processes map (Linux only;
// elsewhere the constructors return ErrOS). Pools built on it with NewPoolInZone keep their
// host state there: every pool on the zone with the same name, in this process or another
// one, shares the in-flight counts, MaxRequests limits, failure windows and down flags of
// its addresses; pools with other names share nothing. When a process dies (SIGKILL, a
// crash) holding picks, Sweep (and every refresh of a pool on the zone) returns what it
// held.
//
// Go cannot fork, so the processes that share a zone open it by path (OpenZone); an
// anonymous zone (NewAnonymousZone) is shared only with child processes that inherit the
// memory, which Go programs do not make, and so serves pools within one process.
//
// Every method may be called from any number of goroutines at once, Close included: calls
// that start after Close get ErrClosed. Pools on the zone keep its memory mapped, so the
// Zone may be closed before them.
type Zone struct {
	ptr *C.lc_zone
	calls
}

// NewAnonymousZone makes a zone in new anonymous shared memory (lc_zone_new_anonymous).
// Errors: ErrInvalidLimit (a capacity out of range), ErrOS.
func NewAnonymousZone(capacity ZoneCapacity) (*Zone, error) {
	c := capacity.toC()
	var out *C.lc_zone
	if st := C.lc_zone_new_anonymous(&c, &out); st != C.LC_OK {
		return nil, &Error{Status: Status(st), Op: "new anonymous zone"}
	}
	return wrapZone(out), nil
}

// OpenZone opens the zone in the file at path, made with capacity if there is none (mode
// 0600; lc_zone_open). Unrelated processes that open one path share one zone. Put zone
// files on a tmpfs such as /dev/shm: a file from an earlier boot is refused. The file stays
// after Close; removing it is the caller's business.
//
// Errors: ErrInvalidArgument (an empty path, or one containing NUL), ErrInvalidLimit (a
// capacity out of range), ErrZoneIncompatible (a file that is not a zone, from another
// layout or boot, or made with other capacities), ErrZoneTooSmall (a file shorter than its
// zone), ErrOS (I/O, such as a missing directory).
func OpenZone(path string, capacity ZoneCapacity) (*Zone, error) {
	cpath, err := cStringAs(path, "open zone", C.LC_ERR_INVALID_ARGUMENT)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cpath))
	c := capacity.toC()
	var out *C.lc_zone
	if st := C.lc_zone_open(cpath, &c, &out); st != C.LC_OK {
		return nil, checkDetail(st, "open zone", "%q", path)
	}
	return wrapZone(out), nil
}

func wrapZone(ptr *C.lc_zone) *Zone {
	z := &Zone{ptr: ptr, calls: newCalls()}
	runtime.SetFinalizer(z, (*Zone).Close)
	return z
}

func (z *Zone) enter() error {
	if z == nil {
		return ErrClosed
	}
	return z.calls.enter()
}

// Close frees this handle once the calls in progress return. Pools on the zone keep
// working, and the zone's state stays for them and for other processes. Closing twice, or
// a nil zone, does nothing and returns nil.
func (z *Zone) Close() error {
	if z == nil {
		return nil
	}
	z.calls.close(func() {
		C.lc_zone_free(z.ptr)
		runtime.SetFinalizer(z, nil)
	})
	return nil
}

// Capacity returns the capacities the zone was made with.
func (z *Zone) Capacity() (ZoneCapacity, error) {
	if err := z.enter(); err != nil {
		return ZoneCapacity{}, err
	}
	defer z.leave()
	var c C.lc_zone_capacity
	if st := C.lc_zone_capacity_of(z.ptr, &c); st != C.LC_OK {
		return ZoneCapacity{}, &Error{Status: Status(st), Op: "zone capacity"}
	}
	return zoneCapacity(&c), nil
}

// Size returns the zone's size in bytes.
func (z *Zone) Size() (int, error) {
	if err := z.enter(); err != nil {
		return 0, err
	}
	defer z.leave()
	return int(C.lc_zone_size_of(z.ptr)), nil
}

// CreationID identifies the zone's creation: equal in every process and through every
// handle using the same zone, different for a zone made again at the same path.
func (z *Zone) CreationID() (uint64, error) {
	if err := z.enter(); err != nil {
		return 0, err
	}
	defer z.leave()
	return uint64(C.lc_zone_creation_id(z.ptr)), nil
}

// Sweep returns what processes that died while attached to the zone held: their
// reservations are subtracted from the shared in-flight counts and their records freed;
// then the units in doubt are reconciled if the zone is quiet. Every refresh of a pool on
// the zone sweeps too; call Sweep from a timer when refreshes are rare. It registers this
// process in the zone if none of its pools did yet. Not for the hot path (it reads /proc
// once per registered process). ErrZoneFull when this process had to register and no
// process record is free.
func (z *Zone) Sweep() (SweepReport, error) {
	if err := z.enter(); err != nil {
		return SweepReport{}, err
	}
	defer z.leave()
	var r C.lc_zone_sweep_report
	if st := C.lc_zone_sweep(z.ptr, &r); st != C.LC_OK {
		return SweepReport{}, &Error{Status: Status(st), Op: "zone sweep"}
	}
	return SweepReport{uint32(r.processes), uint64(r.recovered), uint64(r.in_doubt)}, nil
}

// NewPoolInZone is NewPool with the pool's host state in zone, under name: every pool on
// the zone with the same name, in this process or another, shares the in-flight counts,
// MaxRequests limits, failure windows and down flags of its addresses; everything else is
// as NewPool. The pool keeps the zone mapped (the Zone may be closed first). name NUL
// address must fit the zone's AddressBytes, else the refresh that lists the address fails
// (logged; Refresh returns ErrZoneIncompatible). source is consumed, also on error.
//
// Errors, besides NewPool's: ErrClosed (a closed zone), ErrInvalidArgument (a name
// containing NUL), ErrInvalidUTF8 (a name that is not UTF-8), ErrZoneIncompatible
// (MaxFails above the zone's FailRing), ErrZoneFull (no process or thread record free).
func NewPoolInZone(source *Source, zone *Zone, name string, config *Config) (*Pool, error) {
	src, err := source.take()
	if err != nil {
		return nil, err
	}
	cname, err := cStringAs(name, "new pool in zone", C.LC_ERR_INVALID_ARGUMENT)
	if err != nil {
		C.lc_source_free(src)
		return nil, err
	}
	defer C.free(unsafe.Pointer(cname))
	cfg, err := poolConfig(config, src, "new pool in zone")
	if err != nil {
		return nil, err
	}
	if err := zone.enter(); err != nil {
		C.lc_source_free(src)
		return nil, err
	}
	defer zone.leave()
	var out *C.lc_pool
	if st := C.lc_pool_new_in_zone(cfg, zone.ptr, cname, src, &out); st != C.LC_OK {
		return nil, checkDetail(st, "new pool in zone", "%q", name)
	}
	return wrapPool(out), nil
}
