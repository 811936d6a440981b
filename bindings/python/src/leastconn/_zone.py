"""Shared zones: host state in memory that several processes map (Linux only)."""

from __future__ import annotations

import os
import sys
import weakref
from dataclasses import dataclass, fields
from typing import Any, List, Optional, Union

from . import _errors
from ._errors import ClosedError, InvalidArgumentError, InvalidLimitError, OsError
from ._handle import _Handle
from ._native import ffi, lib
from ._sources import _U32, _uint, cstring, new_from_json


def _default_capacity() -> Any:
    c = ffi.new("lc_zone_capacity *")
    _errors.check(lib.lc_zone_capacity_default(c), "zone capacity")
    return c


_DEFAULT = _default_capacity()


@dataclass(frozen=True)
class ZoneCapacity:
    """How much a zone holds, fixed when it is made; its size follows from these numbers
    alone (:attr:`size`). Every process that opens a zone file must give exactly the
    capacities it was made with. The defaults are the library's
    (``lc_zone_capacity_default``); the library checks the ranges and raises
    :class:`InvalidLimitError` for a value outside them.
    """

    #: Host slots: addresses listed at once over every pool on the zone (size it at twice
    #: that). 1 to 2**30 - 1.
    hosts: int = _DEFAULT.hosts
    #: Longest key: a pool's name on the zone, a NUL and an address, in bytes. 1 to 4095.
    address_bytes: int = _DEFAULT.address_bytes
    #: Failure timestamps kept per host: the largest ``max_fails`` a pool on the zone may
    #: use. 1 to 1024.
    fail_ring: int = _DEFAULT.fail_ring
    #: Processes attached at once. 1 to 16383.
    processes: int = _DEFAULT.processes
    #: Threads (and pickers) picking at once, over all processes. 1 to 2**31 - 1.
    threads: int = _DEFAULT.threads

    def _to_c(self) -> Any:
        c = ffi.new("lc_zone_capacity *")
        for field in fields(self):
            value = getattr(self, field.name)
            setattr(c, field.name, _uint(value, field.name, _U32, InvalidLimitError))
        return c

    @classmethod
    def _from_c(cls, c: Any) -> "ZoneCapacity":
        return cls(**{field.name: getattr(c, field.name) for field in fields(cls)})

    @property
    def size(self) -> int:
        """The zone's size in bytes: what :meth:`Zone.anonymous` and :meth:`Zone.open` map.

        Raises :class:`InvalidLimitError` when a capacity is out of range, :class:`OsError`
        off Linux (no zones there).
        """
        size: int = lib.lc_zone_size(self._to_c())
        if size == 0:
            if not sys.platform.startswith("linux"):
                raise OsError("zone size: shared zones exist on Linux only")
            raise InvalidLimitError(f"zone capacity: a capacity is out of range in {self!r}")
        return size

    @classmethod
    def fit(cls, size: int, **others: int) -> "ZoneCapacity":
        """The capacities with the most ``hosts`` whose zone fits in ``size`` bytes, the
        other fields as given in ``others`` (else the defaults). Afterwards
        ``result.size <= size``.

        Raises :class:`ZoneTooSmallError` when not even one host fits,
        :class:`InvalidLimitError` for another field out of range.
        """
        if "hosts" in others:
            raise InvalidArgumentError("ZoneCapacity.fit chooses hosts itself")
        c = cls(**others)._to_c()
        size = _uint(size, "size", 1 << 64, InvalidLimitError)
        _errors.check(lib.lc_zone_capacity_fit(size, c), f"zone capacity for {size} bytes")
        return cls._from_c(c)


@dataclass(frozen=True)
class SweepReport:
    """What :meth:`Zone.sweep` did."""

    #: Records of dead processes swept.
    processes: int
    #: In-flight units subtracted: the reservations the dead processes held.
    recovered: int
    #: Units left in doubt (a thread killed inside a pick or release): kept in the in-flight
    #: count, each on a known host, until a later sweep finds the zone quiet and removes
    #: them exactly.
    in_doubt: int


class Zone:
    """A shared zone: host state in memory that several processes map (Linux only; elsewhere
    every constructor raises :class:`OsError`).

    Get one with :meth:`anonymous` (before :func:`os.fork`: the children share it) or
    :meth:`open` (a file that unrelated processes open by path), then build pools on it
    with ``Pool(upstreams, zone=zone, name="app")``. Every pool on the zone with the same
    name, in this process or another one, shares the in-flight counts, ``max_requests``
    limits, failure windows and down flags of its addresses; pools with other names share
    nothing.

    Crash recovery: when a process dies (SIGKILL, crash) holding picks, :meth:`sweep` (and
    every refresh of a pool on the zone) returns what it held.

    ``fork``: build pools after the fork, in the process that uses them; a pool, picker or
    pick made before the fork is not for use in the child. The zone object itself may come
    from the parent.

    Any thread may use a zone at any time. :meth:`close` frees this process's handle (the
    pools on the zone keep the memory mapped; so do other processes); afterwards every
    method raises :class:`ClosedError`. Use it as a context manager to close it.
    """

    _handle: _Handle

    def __init__(self) -> None:
        raise TypeError("make a Zone with Zone.anonymous() or Zone.open()")

    @classmethod
    def anonymous(cls, capacity: Optional[ZoneCapacity] = None) -> "Zone":
        """A zone in new anonymous shared memory, shared with the processes forked after
        this call (``lc_zone_new_anonymous``). ``capacity`` defaults to
        ``ZoneCapacity()``.

        Raises :class:`InvalidLimitError` (a capacity out of range), :class:`OsError`.
        """
        caps = _capacity(capacity)
        out = ffi.new("lc_zone **")
        _errors.check(lib.lc_zone_new_anonymous(caps, out), "anonymous zone")
        return cls._adopt(out[0])

    @classmethod
    def open(
        cls, path: Union[str, bytes, "os.PathLike[Any]"], capacity: Optional[ZoneCapacity] = None
    ) -> "Zone":
        """The zone in the file at ``path``, made with ``capacity`` (default
        ``ZoneCapacity()``) if there is none (mode 0600; ``lc_zone_open``). Unrelated
        processes that open one path share one zone. Put zone files on a tmpfs such as
        ``/dev/shm``: a file from an earlier boot is refused. The file stays after
        :meth:`close`; removing it is the caller's business.

        Raises :class:`InvalidArgumentError` (an empty path, or one containing NUL),
        :class:`InvalidLimitError` (a capacity out of range),
        :class:`ZoneIncompatibleError` (a file that is not a zone, from another layout or
        boot, or made with other capacities), :class:`ZoneTooSmallError` (a file shorter
        than its zone), :class:`OsError` (I/O, such as a missing directory).
        """
        raw = os.fsencode(path)
        if b"\0" in raw:
            raise InvalidArgumentError(f"zone path {path!r} contains a NUL character")
        caps = _capacity(capacity)
        out = ffi.new("lc_zone **")
        status = lib.lc_zone_open(ffi.new("char[]", raw), caps, out)
        if status != lib.LC_OK:
            raise _errors.error_for(status, f"open zone {os.fsdecode(raw)!r}")
        return cls._adopt(out[0])

    @classmethod
    def _adopt(cls, ptr: Any) -> "Zone":
        self = cls.__new__(cls)
        self._handle = _Handle(ptr, lib.lc_zone_free, "zone", refuse_in_callback=False)
        self._finalizer = weakref.finalize(self, self._handle.close)
        return self

    @property
    def capacity(self) -> ZoneCapacity:
        """The capacities the zone was made with."""
        c = ffi.new("lc_zone_capacity *")
        _errors.check(self._handle.call(lib.lc_zone_capacity_of, c), "zone capacity")
        return ZoneCapacity._from_c(c)

    @property
    def size(self) -> int:
        """The zone's size in bytes (``capacity.size``)."""
        size: int = self._handle.call(lib.lc_zone_size_of)
        return size

    @property
    def creation_id(self) -> int:
        """A number that identifies the zone's creation: equal in every process and through
        every handle using the same zone, different for a zone made again at the same
        path."""
        ident: int = self._handle.call(lib.lc_zone_creation_id)
        return ident

    def sweep(self) -> SweepReport:
        """Returns what processes that died while attached to the zone held: their
        reservations are subtracted from the shared in-flight counts and their records
        freed; then the units in doubt are reconciled if the zone is quiet.

        Every refresh of a pool on the zone sweeps too; call this from a timer when
        refreshes are rare. Registers this process in the zone if none of its pools did
        yet. Not for the hot path (it reads ``/proc`` once per registered process).
        Raises :class:`ZoneFullError` when this process had to register and no process
        record is free.
        """
        c = ffi.new("lc_zone_sweep_report *")
        _errors.check(self._handle.call(lib.lc_zone_sweep, c), "zone sweep")
        return SweepReport(processes=c.processes, recovered=c.recovered, in_doubt=c.in_doubt)

    def _new_pool(self, config: Any, name: str, source: Any) -> Any:
        """``lc_pool_new_in_zone`` with this zone: the new ``lc_pool *``. Consumes the
        built ``source`` in every case."""
        keep: List[Any] = []
        out = ffi.new("lc_pool **")
        # The refusals here come before the library takes the source: free it.
        try:
            c_name = cstring(name, "zone pool name", keep)
        except (TypeError, InvalidArgumentError):
            lib.lc_source_free(source)
            raise
        try:
            status = self._handle.call(
                lambda zone: lib.lc_pool_new_in_zone(config, zone, c_name, source, out)
            )
        except ClosedError:
            lib.lc_source_free(source)
            raise
        _errors.check(status, f"pool {name!r} on a zone")
        return out[0]

    def _new_json_pool(self, text: str, name: str) -> Any:
        """``lc_pool_new_json_in_zone`` with this zone: the new ``lc_pool *``, or the typed
        error carrying the library's message."""
        keep: List[Any] = []
        c_name = cstring(name, "zone pool name", keep)
        return new_from_json(
            lambda c_text, out, error, n: self._handle.call(
                lambda zone: lib.lc_pool_new_json_in_zone(c_text, zone, c_name, out, error, n)
            ),
            "lc_pool **",
            text,
            f"pool {name!r} from JSON on a zone",
        )

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._handle.closed

    def close(self) -> None:
        """Frees this handle (once no call is using it). Idempotent. Pools on the zone keep
        working; the zone's state stays for them and for other processes."""
        self._handle.close()
        self._finalizer.detach()

    def __enter__(self) -> "Zone":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "<leastconn.Zone closed>"
        return f"<leastconn.Zone {self.size} bytes {self.capacity}>"


def _capacity(capacity: Optional[ZoneCapacity]) -> Any:
    if capacity is None:
        capacity = ZoneCapacity()
    if not isinstance(capacity, ZoneCapacity):
        raise TypeError(f"capacity must be a ZoneCapacity, not {type(capacity).__name__}")
    return capacity._to_c()

