"""Status codes as exceptions.

Every non-zero ``lc_status`` becomes a :class:`LeastconnError` carrying the number and the
library's own message (``lc_status_str``). Known codes have their own subclass; a code this
module was not written for still gets a subclass, generated from its ``LC_ERR_*`` name in the
header the extension was built from (``LC_ERR_SOME_NEW_CODE`` -> ``SomeNewCodeError``; an
``LC_ERR_INVALID_*`` one is also a ``ValueError``), and a
number missing even there falls back to :class:`LeastconnError` itself.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple, Type

from ._native import ffi, lib


class LeastconnError(Exception):
    """An error reported by leastconn.

    ``status`` is the library's status code (``None`` for errors raised by the binding
    itself, such as :class:`ClosedError`), ``message`` the library's description of it.
    """

    status: Optional[int]

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class NullPointerError(LeastconnError):
    """A required argument was missing (a binding bug if it ever reaches you)."""


class InvalidUtf8Error(LeastconnError, ValueError):
    """A string was not valid UTF-8."""


class InvalidAddressError(LeastconnError, ValueError):
    """An address is empty or not ``host:port``, ``[v6]:port`` or ``unix/PATH``."""


class InvalidWeightError(LeastconnError, ValueError):
    """A weight is 0 or above ``MAX_WEIGHT``."""


class InvalidLimitError(LeastconnError, ValueError):
    """A ``max_requests``, ``max_fails``, tier, duration or interval is out of range."""


class NoUpstreamError(LeastconnError):
    """No host is available: empty list, or every host down, unhealthy, full or excluded."""


class NotFoundError(LeastconnError, LookupError):
    """No host with that address is known to the pool."""


class AlreadyReleasedError(LeastconnError):
    """The pick holds no reservation: it was released already."""


class SourceFailedError(LeastconnError):
    """A source failed (returned an error or an invalid upstream, or raised)."""


class CancelledError(LeastconnError):
    """The operation was cancelled (a refresh interrupted by a stopping refresher)."""


class PanicError(LeastconnError):
    """A panic was caught inside the library (a bug; it has been logged)."""


class InvalidArgumentError(LeastconnError, ValueError):
    """An argument is invalid in a way no more specific error covers."""


class OsError(LeastconnError):
    """The operating system refused something (e.g. creating the refresher thread)."""


class PickMovedError(LeastconnError):
    """A copy of a pick was released at another address than the one it was selected into;
    nothing was released (a binding bug if it ever reaches you: a :class:`~leastconn.Pick`
    keeps its C struct where the select put it)."""


class NotInFlightError(LeastconnError):
    """The picked host had nothing in flight, so nothing was released: the reservation was
    released already through an undetectable copy. The pick is consumed."""


class InvalidConfigError(LeastconnError, ValueError):
    """A Caddy JSON configuration is malformed or asks for something unsupported; the text
    names the JSON path (``dynamic_upstreams.sources[1].port: expected a string``)."""


class ZoneIncompatibleError(LeastconnError):
    """A shared zone was made by another layout, version or boot, or with other capacities
    than those asked for, or a pool's ``max_fails`` is above the zone's ``fail_ring``; the
    library's log names what differs."""


class ZoneTooSmallError(LeastconnError):
    """The memory or file offered for a shared zone is smaller than its capacities need
    (or not even one host fits in the size given to :meth:`ZoneCapacity.fit`)."""


class ZoneFullError(LeastconnError):
    """A shared zone has no room left: no slot for a new address, or no process or thread
    record. A refresh that gets it keeps serving the current list."""


class ZoneBusyError(LeastconnError):
    """Another live process is still initialising the shared zone; try again."""


class ClosedError(LeastconnError, ValueError):
    """The pool was used after :meth:`leastconn.Pool.close` (or a zone after
    :meth:`leastconn.Zone.close`, a picker after :meth:`leastconn.Picker.close`)."""


_KNOWN: Dict[str, Type[LeastconnError]] = {
    "NULL_POINTER": NullPointerError,
    "INVALID_UTF8": InvalidUtf8Error,
    "INVALID_ADDRESS": InvalidAddressError,
    "INVALID_WEIGHT": InvalidWeightError,
    "INVALID_LIMIT": InvalidLimitError,
    "NO_UPSTREAM": NoUpstreamError,
    "NOT_FOUND": NotFoundError,
    "ALREADY_RELEASED": AlreadyReleasedError,
    "SOURCE_FAILED": SourceFailedError,
    "CANCELLED": CancelledError,
    "PANIC": PanicError,
    "INVALID_ARGUMENT": InvalidArgumentError,
    "OS": OsError,
    "PICK_MOVED": PickMovedError,
    "NOT_IN_FLIGHT": NotInFlightError,
    "INVALID_CONFIG": InvalidConfigError,
    "ZONE_INCOMPATIBLE": ZoneIncompatibleError,
    "ZONE_TOO_SMALL": ZoneTooSmallError,
    "ZONE_FULL": ZoneFullError,
    "ZONE_BUSY": ZoneBusyError,
}


def _build_table() -> Dict[int, Type[LeastconnError]]:
    table: Dict[int, Type[LeastconnError]] = {}
    for name in dir(lib):
        if not name.startswith("LC_ERR_"):
            continue
        suffix = name[len("LC_ERR_") :]
        cls = _KNOWN.get(suffix)
        if cls is None:
            # A code added to the C ABI after this module was written.
            camel = "".join(part.capitalize() for part in suffix.split("_")) + "Error"
            bases: Tuple[type, ...] = (LeastconnError,)
            if suffix.startswith("INVALID_"):
                bases += (ValueError,)
            cls = type(camel, bases, {"__doc__": f"Status ``{name}``."})
            cls.__module__ = "leastconn"
            globals()[camel] = cls
        table[getattr(lib, name)] = cls
    return table


_BY_STATUS = _build_table()


def status_message(status: int) -> str:
    """The library's description of a status code (any value is accepted)."""
    text: str = ffi.string(lib.lc_status_str(status)).decode("utf-8", "replace")
    return text


def error_for(status: int, context: str, detail: str = "") -> LeastconnError:
    """The exception for a non-zero status, its message prefixed with ``context`` and
    followed by ``detail`` (the library's own explanation, where it gives one)."""
    cls = _BY_STATUS.get(status, LeastconnError)
    text = f"{context}: {status_message(status)} (status {status})"
    if detail:
        text += f": {detail}"
    return cls(text, status)


def check(status: int, context: str) -> None:
    """Raises the exception for ``status`` unless it is ``LC_OK``."""
    if status != lib.LC_OK:
        raise error_for(status, context)
