package leastconn

// #include "bridge.h"
import "C"

import (
	"errors"
	"fmt"
)

// Status is one of the library's stable status codes (lc_status): 0 is success, every other
// number an error. The numbers never change meaning; lc_status_str describes any of them.
type Status uint32

// String is the library's description of the status ("unknown status" for a number this
// version of the library does not know).
func (s Status) String() string {
	return C.GoString(C.lc_status_str(C.lc_status(s)))
}

// Error is an error status from the library, with the operation that returned it and, where
// there is one, more detail. Compare with errors.Is against the Err* values: two *Error
// match when their statuses are equal, so a status this package has no variable for (one
// added by a newer library) is still an *Error with its number and the library's message.
type Error struct {
	Status Status
	Op     string // the operation, e.g. "select"; empty for the Err* values
	Detail string // more context, e.g. the offending address; may be empty
}

func (e *Error) Error() string {
	msg := "leastconn: "
	if e.Op != "" {
		msg += e.Op + ": "
	}
	msg += e.Status.String()
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

// Is reports whether target is an *Error with the same status.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Status == e.Status
}

// The library's errors, by status, for errors.Is(err, leastconn.ErrNoUpstream).
var (
	ErrNullPointer     = &Error{Status: C.LC_ERR_NULL_POINTER}
	ErrInvalidUTF8     = &Error{Status: C.LC_ERR_INVALID_UTF8}
	ErrInvalidAddress  = &Error{Status: C.LC_ERR_INVALID_ADDRESS}
	ErrInvalidWeight   = &Error{Status: C.LC_ERR_INVALID_WEIGHT}
	ErrInvalidLimit    = &Error{Status: C.LC_ERR_INVALID_LIMIT}
	ErrNoUpstream      = &Error{Status: C.LC_ERR_NO_UPSTREAM}
	ErrNotFound        = &Error{Status: C.LC_ERR_NOT_FOUND}
	ErrAlreadyReleased = &Error{Status: C.LC_ERR_ALREADY_RELEASED}
	ErrSourceFailed    = &Error{Status: C.LC_ERR_SOURCE_FAILED}
	ErrCancelled       = &Error{Status: C.LC_ERR_CANCELLED}
	ErrPanic           = &Error{Status: C.LC_ERR_PANIC}
	ErrInvalidArgument = &Error{Status: C.LC_ERR_INVALID_ARGUMENT}
	ErrOS              = &Error{Status: C.LC_ERR_OS}
	// A release of a pick copied to another address. The package keeps every lc_pick in C
	// memory from its select to its release, so a Pick's Release never gets it.
	ErrPickMoved = &Error{Status: C.LC_ERR_PICK_MOVED}
	// A release that found its host with nothing in flight (a C-side copy of a pick released
	// twice); logged by the library. A Pick's Release never gets it either.
	ErrNotInFlight = &Error{Status: C.LC_ERR_NOT_IN_FLIGHT}
	// A malformed Caddy JSON configuration (NewPoolJSON, JSONSource): Error.Detail is the
	// library's message, which names the JSON path.
	ErrInvalidConfig = &Error{Status: C.LC_ERR_INVALID_CONFIG}
	// Shared zones (Zone, NewPoolInZone): a zone made for another layout or capacities (or
	// a pool's MaxFails above the zone's FailRing), a file too small for its capacities, a
	// zone with no room left, and a zone that another live process is still initialising.
	ErrZoneIncompatible = &Error{Status: C.LC_ERR_ZONE_INCOMPATIBLE}
	ErrZoneTooSmall     = &Error{Status: C.LC_ERR_ZONE_TOO_SMALL}
	ErrZoneFull         = &Error{Status: C.LC_ERR_ZONE_FULL}
	ErrZoneBusy         = &Error{Status: C.LC_ERR_ZONE_BUSY}
)

// Errors of the Go layer itself (no library status).
var (
	// ErrClosed: the Pool, Picker, Refresher or Source was closed (or, for a Source,
	// consumed by the pool or multi it was given to).
	ErrClosed = errors.New("leastconn: use of a closed or consumed object")
)

// refuseInCallback is the error of Close and SetLogHook called from inside a FetchFunc or a
// LogHook, where the library would wait for the very call it is in (a refresh, a refresher
// thread, the logger), or nil elsewhere.
func refuseInCallback(op string) error {
	if C.lc_go_in_callback() != 0 {
		return &Error{Status: C.LC_ERR_INVALID_ARGUMENT, Op: op, Detail: "called from inside a FetchFunc or LogHook"}
	}
	return nil
}

// check turns a status into nil or an *Error.
func check(st C.lc_status, op string) error {
	if st == C.LC_OK {
		return nil
	}
	return &Error{Status: Status(st), Op: op}
}

func checkDetail(st C.lc_status, op string, format string, args ...any) error {
	if st == C.LC_OK {
		return nil
	}
	return &Error{Status: Status(st), Op: op, Detail: fmt.Sprintf(format, args...)}
}
