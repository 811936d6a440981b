package leastconn

// #include "bridge.h"
import "C"

import (
	"fmt"
	"log"
	"sync"
	"sync/atomic"
)

// LogLevel is the level of a library log record; a higher number is more verbose.
type LogLevel uint32

const (
	LogOff   LogLevel = C.LC_LOG_OFF
	LogError LogLevel = C.LC_LOG_ERROR // a source failed, a refresh failed
	LogWarn  LogLevel = C.LC_LOG_WARN  // a last good list served within its grace period
	LogInfo  LogLevel = C.LC_LOG_INFO
	LogDebug LogLevel = C.LC_LOG_DEBUG
	LogTrace LogLevel = C.LC_LOG_TRACE
)

func (l LogLevel) String() string {
	switch l {
	case LogOff:
		return "OFF"
	case LogError:
		return "ERROR"
	case LogWarn:
		return "WARN"
	case LogInfo:
		return "INFO"
	case LogDebug:
		return "DEBUG"
	case LogTrace:
		return "TRACE"
	}
	return fmt.Sprintf("LEVEL(%d)", uint32(l))
}

// LogHook receives the library's log records. It is called on the goroutine or library
// thread that logs (a Refresher's thread, a goroutine in Refresh), possibly from several at
// once, so it must be safe for concurrent use. SetLogHook, Pool.Close and Refresher.Close
// called from it return ErrInvalidArgument. A panic in it is recovered and the record
// dropped.
type LogHook func(level LogLevel, message string)

type hookBox struct{ hook LogHook }

var (
	currentHook atomic.Value // hookBox
	setHookMu   sync.Mutex
)

// SetLogHook sends the library's log records up to maxLevel to hook, for the whole process,
// replacing the previous hook; a nil hook or LogOff turns logging off. Nothing is logged
// until a hook is set. Any goroutine, but not from inside a LogHook or FetchFunc
// (ErrInvalidArgument).
func SetLogHook(hook LogHook, maxLevel LogLevel) error {
	if err := refuseInCallback("set log hook"); err != nil {
		return err // the library cannot replace its logger from inside a log call
	}
	setHookMu.Lock()
	defer setHookMu.Unlock()
	if maxLevel > LogTrace {
		return &Error{Status: C.LC_ERR_INVALID_ARGUMENT, Op: "set log hook", Detail: fmt.Sprintf("unknown level %d", maxLevel)}
	}
	if hook == nil || maxLevel == LogOff {
		currentHook.Store(hookBox{})
		return check(C.lc_go_log_set(0, C.LC_LOG_OFF), "set log hook")
	}
	// Stored before the library can call it; a record logged while replacing goes to the
	// old or the new hook.
	currentHook.Store(hookBox{hook})
	return check(C.lc_go_log_set(1, C.lc_log_level(maxLevel)), "set log hook")
}

// LoggerHook adapts a *log.Logger: each record becomes one line "leastconn LEVEL: message".
func LoggerHook(l *log.Logger) LogHook {
	return func(level LogLevel, message string) {
		l.Printf("leastconn %s: %s", level, message)
	}
}

//export leastconnGoLog
func leastconnGoLog(level C.lc_log_level, message *C.char) {
	defer func() { _ = recover() }()
	box, _ := currentHook.Load().(hookBox)
	if box.hook != nil {
		box.hook(LogLevel(level), C.GoString(message))
	}
}

// Version is the library's version, "MAJOR.MINOR.PATCH", as loaded at run time.
func Version() string {
	return C.GoString(C.lc_version())
}
