"""The pool, its reservations and its statistics."""

from __future__ import annotations

import enum
import threading
import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Iterable, List, Mapping, Optional, Tuple, Type, Union

from . import _errors
from ._errors import ClosedError, InvalidArgumentError, InvalidLimitError
from ._handle import _Handle
from ._zone import Zone
from ._native import ffi, lib
from ._sources import (
    _U32,
    Source,
    UpstreamLike,
    _uint,
    as_source,
    cstring,
    json_text,
    millis,
    new_from_json,
)


class Policy(enum.IntEnum):
    """How a pick chooses among the available hosts of a tier."""

    #: Fewest in-flight requests per unit of weight, ties broken at random (Caddy's
    #: ``least_conn``).
    LEAST_CONN = lib.LC_POLICY_LEAST_CONN
    #: The first available host in list order (the ``multi`` failover pattern).
    FIRST = lib.LC_POLICY_FIRST
    #: Two random available hosts, the less loaded one wins (``random_choose 2``).
    P2C = lib.LC_POLICY_P2C


@dataclass(frozen=True)
class HostStats:
    """A point-in-time view of one host (counters read one by one while picks go on)."""

    address: str
    host_id: int
    #: Reservations ever made on this host.
    picks: int
    in_flight: int
    #: Failures inside the passive-health window.
    recent_failures: int
    #: ``max_requests`` of its first entry in the list (0 = unlimited).
    max_requests: int
    #: Marked down with :meth:`Pool.set_down`.
    down: bool
    #: Inside its passive-failure window.
    unhealthy: bool
    #: At its ``max_requests`` limit.
    full: bool
    #: In the current list (``False``: removed, kept until its last request ends).
    listed: bool

    @classmethod
    def _from_c(cls, address: str, c: Any) -> "HostStats":
        return cls(
            address=address,
            host_id=c.host_id,
            picks=c.picks,
            in_flight=c.in_flight,
            recent_failures=c.recent_failures,
            max_requests=c.max_requests,
            down=bool(c.down),
            unhealthy=bool(c.unhealthy),
            full=bool(c.full),
            listed=bool(c.listed),
        )


@dataclass(frozen=True)
class RefreshReport:
    """What a refresh did."""

    #: Entries in the new list.
    upstreams: int
    #: Host states alive after the refresh (listed, or unlisted with requests in flight).
    hosts: int
    #: Host states reclaimed by this refresh.
    reclaimed: int
    #: The new list's generation (1 for the first refresh, +1 per published refresh).
    generation: int


class Pick:
    """One host reserved for one request.

    Release it exactly once: with :meth:`release`, or by using it as a context manager
    (leaving the block releases with success, an exception with failure). The release
    lands on the host it was picked from even after that host left the list or the pool was
    closed. A pick may be released from any thread; concurrent releases of one pick are
    safe (one succeeds, the others raise :class:`AlreadyReleasedError`).

    The library binds a reservation to the address of the C struct it was selected into
    (``lc_pick.check``) and refuses a release through a copy. A ``Pick`` owns that struct
    (allocated by the select, never moved or copied), so every release of it, and of a
    ``copy.copy`` of it, which shares the struct, reaches the original.
    """

    __slots__ = ("_c", "_done", "address", "host_id", "index", "tag", "__weakref__")

    #: The host's dial address (``host:port``, ``[v6]:port`` or ``unix/PATH``).
    address: str
    #: The host's identity: pass it (or the pick) in ``exclude`` to retry elsewhere.
    host_id: int
    #: Position of the picked entry in the list it was picked from.
    index: int
    #: The ``tag`` of the picked entry.
    tag: int

    def __init__(self, c: Any) -> None:
        self._c = c
        self._done = False
        self.address = ffi.string(c.address).decode("utf-8")
        self.host_id = c.host_id
        self.index = c.index
        self.tag = int(ffi.cast("uintptr_t", c.tag))

    @property
    def released(self) -> bool:
        """Whether this object has released its reservation."""
        return self._done

    def release(self, ok: bool = True) -> None:
        """Ends the request: ``ok=False`` counts a failure towards the host's passive health.

        Raises :class:`AlreadyReleasedError` if the pick was released already.
        """
        outcome = lib.LC_OUTCOME_SUCCESS if ok else lib.LC_OUTCOME_FAILURE
        self._release(outcome, quiet_if_released=False)

    def _release(self, outcome: int, quiet_if_released: bool, picker: Any = None) -> None:
        if picker is None:
            status = lib.lc_pick_release(self._c, outcome)
        else:
            status = lib.lc_picker_release(picker, self._c, outcome)
        # LC_ERR_NOT_IN_FLIGHT consumes the pick too (the library logged it).
        if status in (lib.LC_OK, lib.LC_ERR_NOT_IN_FLIGHT):
            self._done = True
        if status == lib.LC_OK or (quiet_if_released and status == lib.LC_ERR_ALREADY_RELEASED):
            return
        raise _errors.error_for(status, f"release of {self.address}")

    def __enter__(self) -> "Pick":
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Any, tb: Any) -> None:
        # Released inside the block already (or by another thread): nothing left to do.
        if self._done:
            return
        outcome = lib.LC_OUTCOME_SUCCESS if exc_type is None else lib.LC_OUTCOME_FAILURE
        self._release(outcome, quiet_if_released=True)

    def __del__(self) -> None:
        # A pick dropped unreleased would hold its host's in-flight count forever.
        if not getattr(self, "_done", True):
            if lib.lc_pick_release(self._c, lib.LC_OUTCOME_SUCCESS) == lib.LC_OK:
                warnings.warn(
                    f"leastconn pick of {self.address} was never released; released now",
                    ResourceWarning,
                    stacklevel=2,
                )

    def __repr__(self) -> str:
        state = "released" if self._done else "reserved"
        return f"<leastconn.Pick {self.address} host_id={self.host_id} {state}>"


class Pool:
    """A least-connections pool of upstreams.

    ``upstreams`` is a list of addresses or :class:`Upstream`, or a :class:`Source`. The pool
    asks its source once now; a failure there is logged and leaves the pool empty (a later
    refresh may succeed). With ``refresh_interval`` (seconds) a library thread refreshes it
    periodically until :meth:`close`; otherwise call :meth:`refresh`.

    Passive health: ``max_fails`` failed releases within ``fail_duration`` seconds make a
    host unavailable until the oldest leaves the window (0 turns it off).

    Thread safety: every method may be called from any thread at any time, also
    concurrently with a refresh; :meth:`select` never waits for a refresh. After
    :meth:`close` every method raises :class:`ClosedError`; picks still outstanding remain
    valid and may be released. :meth:`close` from inside a callback source raises
    :class:`InvalidArgumentError` (the library cannot free a pool from there).

    Shared zone: with ``zone`` (a :class:`Zone`) and ``name`` the pool keeps its host state
    in the zone, under that name: every pool on the zone with the same name, in this
    process or another, shares the in-flight counts, ``max_requests`` limits, failure
    windows and down flags of its addresses; everything else is as without a zone. The
    pool keeps the zone mapped (the :class:`Zone` may be closed first). ``name`` NUL
    address must fit the zone's ``address_bytes``, else the refresh that lists the address
    fails (logged). Build it in the process that uses it, after any :func:`os.fork`.
    Raises, besides the errors without a zone: :class:`InvalidArgumentError` (``zone``
    without ``name`` or the reverse, a name containing NUL), :class:`InvalidUtf8Error`
    (a name with lone surrogates), :class:`ClosedError` (a closed zone),
    :class:`ZoneIncompatibleError` (``max_fails`` above the zone's ``fail_ring``),
    :class:`ZoneFullError` (no process or thread record free in the zone).
    """

    def __init__(
        self,
        upstreams: Union[Source, Iterable[UpstreamLike]],
        *,
        policy: Policy = Policy.LEAST_CONN,
        max_fails: int = 1,
        fail_duration: float = 10.0,
        refresh_interval: Optional[float] = None,
        zone: Optional[Zone] = None,
        name: Optional[str] = None,
    ) -> None:
        if zone is not None and not isinstance(zone, Zone):
            raise TypeError(f"zone must be a leastconn.Zone, not {type(zone).__name__}")
        if (zone is None) != (name is None):
            raise InvalidArgumentError("zone= and name= go together: a pool on a zone has a name")
        config = ffi.new("lc_pool_config *")
        _errors.check(lib.lc_pool_config_default(config), "pool config")
        try:
            config.policy = Policy(policy)
        except ValueError:
            raise InvalidArgumentError(f"unknown policy {policy!r}") from None
        config.max_fails = _uint(max_fails, "max_fails", _U32, InvalidLimitError)
        config.fail_duration_ms = millis(fail_duration, "fail_duration")
        interval_ms = None
        if refresh_interval is not None:
            interval_ms = millis(refresh_interval, "refresh_interval")
        # lc_pool_new consumes the source also on error.
        source = as_source(upstreams)._build()
        if zone is not None:
            assert name is not None
            self._adopt(zone._new_pool(config, name, source), interval_ms)
            return
        out = ffi.new("lc_pool **")
        _errors.check(lib.lc_pool_new(config, source, out), "pool")
        self._adopt(out[0], interval_ms)

    @classmethod
    def from_json(
        cls,
        handler: Union[str, bytes, Mapping[str, Any]],
        *,
        refresh_interval: Optional[float] = None,
        zone: Optional[Zone] = None,
        name: Optional[str] = None,
    ) -> "Pool":
        """A pool from the JSON of a Caddy ``reverse_proxy`` handler (the object ``caddy
        adapt`` prints for it), refreshed once; the root README's "Caddy JSON as the
        configuration" section lists the fields read and ignored.

        ``handler`` is the JSON text (``str`` or UTF-8 ``bytes``) or the decoded object (a
        ``dict``, serialised with :func:`json.dumps`). Policy, passive health and the
        sources come from the document; ``refresh_interval`` (seconds) starts the library's
        refresher as for the constructor. A failing first refresh is logged and leaves the
        pool empty. Raises :class:`InvalidConfigError` (also a ``ValueError``) with the
        library's message naming the JSON path
        (``dynamic_upstreams.sources[1].port: expected a string``).

        ``zone`` and ``name`` put the pool's host state in a shared zone, exactly as for the
        constructor (see the class docs): pools of the same name share it, whether built
        from JSON or not. With them it also raises, with the library's message,
        :class:`InvalidArgumentError` (``zone`` without ``name`` or the reverse, a name
        containing NUL), :class:`InvalidUtf8Error` (a name with lone surrogates),
        :class:`ClosedError` (a closed zone), :class:`ZoneIncompatibleError`
        (``health_checks.passive.max_fails`` above the zone's ``fail_ring``) and
        :class:`ZoneFullError` (no process or thread record free in the zone).
        """
        if zone is not None and not isinstance(zone, Zone):
            raise TypeError(f"zone must be a leastconn.Zone, not {type(zone).__name__}")
        if (zone is None) != (name is None):
            raise InvalidArgumentError("zone= and name= go together: a pool on a zone has a name")
        text = json_text(handler, "handler")
        interval_ms = None
        if refresh_interval is not None:
            interval_ms = millis(refresh_interval, "refresh_interval")
        if zone is not None:
            assert name is not None
            ptr = zone._new_json_pool(text, name)
        else:
            ptr = new_from_json(lib.lc_pool_new_json, "lc_pool **", text, "pool from JSON")
        self = cls.__new__(cls)
        self._adopt(ptr, interval_ms)
        return self

    def _adopt(self, ptr: Any, interval_ms: Optional[int]) -> None:
        """Takes ownership of a new ``lc_pool *`` and starts its refresher if asked."""
        self._handle = _Handle(ptr, lib.lc_pool_free, "pool")
        # Also runs at interpreter exit, so that no refresher thread outlives Python.
        self._finalizer = weakref.finalize(self, self._handle.close)
        if interval_ms is not None:
            refresher = ffi.new("lc_refresher **")
            status = lib.lc_refresher_start(self._handle.ptr, interval_ms, refresher)
            if status != lib.LC_OK:
                self.close()
                raise _errors.error_for(status, "refresher")
            self._handle.refresher = refresher[0]

    def select(self, exclude: Iterable[Union[int, Pick]] = ()) -> Pick:
        """Picks a host by the pool's policy and reserves it for one request.

        ``exclude`` lists hosts already tried for this request (picks or their
        ``host_id``), so that a retry goes elsewhere. Raises :class:`NoUpstreamError` when
        no host is available. Wait-free in the library: never waits for a refresh.
        """
        ids, arr = _exclusion(exclude)
        c = ffi.new("lc_pick *")
        status = self._handle.call(lib.lc_pool_select, arr, len(ids), c)
        if status != lib.LC_OK:
            raise _errors.error_for(status, "select")
        return Pick(c)

    def refresh(self) -> RefreshReport:
        """Asks the source for the current list now and publishes it.

        Hosts already known keep their state. Raises :class:`SourceFailedError` when the
        source fails (the current list stays).
        """
        report = ffi.new("lc_refresh_report *")
        status = self._handle.call(lib.lc_pool_refresh, report)
        _errors.check(status, "refresh")
        return RefreshReport(
            upstreams=report.upstreams,
            hosts=report.hosts,
            reclaimed=report.reclaimed,
            generation=report.generation,
        )

    def set_down(self, address: str, down: bool = True) -> None:
        """Marks a host down (no new picks) or up again; survives list changes.

        Raises :class:`NotFoundError` when the pool knows no such host.
        """
        keep: List[Any] = []
        c_address = cstring(address, "address", keep)
        status = self._handle.call(lib.lc_pool_set_down, c_address, bool(down))
        _errors.check(status, f"set_down {address!r}")

    def stats(self) -> List[HostStats]:
        """The statistics of every host of the current list, in list order."""
        found: List[HostStats] = []
        handle = ffi.new_handle(found)
        status = self._handle.call(lib.lc_pool_stats, lib._lc_py_stats, handle)
        _errors.check(status, "stats")
        return found

    def host_stats(self, address: str) -> HostStats:
        """The statistics of one host, listed or still draining after its removal.

        Raises :class:`NotFoundError` when the pool knows no such host.
        """
        keep: List[Any] = []
        c_address = cstring(address, "address", keep)
        c = ffi.new("lc_host_stats *")
        status = self._handle.call(lib.lc_pool_host_stats, c_address, c)
        _errors.check(status, f"host_stats {address!r}")
        return HostStats._from_c(address, c)

    def picker(self, seed: int = 0) -> "Picker":
        """A :class:`Picker` for this pool, for the calling thread only.

        ``seed`` seeds its random generator (tie breaks, p2c draws); 0 picks a random seed.
        """
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise InvalidArgumentError(f"seed must be an int from 0 to 2**64 - 1, not {seed!r}")
        out = ffi.new("lc_picker **")
        status = self._handle.call(lib.lc_picker_new, seed, out)
        _errors.check(status, "picker")
        return Picker(out[0])

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._handle.closed

    def close(self) -> None:
        """Stops the refresher and frees the pool (once no call is using it). Idempotent.

        Picks still outstanding remain valid and may be released.
        """
        self._handle.close()
        self._finalizer.detach()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def thread_warmup() -> None:
    """Prepares the calling thread so that the library's selects on it never allocate.

    A thread's first select otherwise allocates once inside the library (its per-thread
    record and random generator). :meth:`Pool.picker` does this for the thread that calls
    it; call this on other threads that select, e.g. as a ``ThreadPoolExecutor``
    ``initializer``. Cheap and idempotent; any thread, at any time.
    """
    lib.lc_thread_warmup()


class Picker:
    """A per-thread selector: picks like :meth:`Pool.select`, with the current list cached
    and its own (optionally seeded) random generator.

    Use it from the thread that created it (another thread gets
    :class:`InvalidArgumentError`); its picks may be released from any thread. It keeps the
    pool's state alive, so it stays usable after :meth:`Pool.close`; :meth:`close` it (or
    use it as a context manager) when done.
    """

    def __init__(self, ptr: Any) -> None:
        self._ptr = ptr
        self._owner = threading.get_ident()
        self._finalizer = weakref.finalize(self, lib.lc_picker_free, ptr)

    def _use(self) -> Any:
        """The ``lc_picker *``, for the thread that created it while it is open."""
        if threading.get_ident() != self._owner:
            raise InvalidArgumentError("a Picker is used only by the thread that created it")
        if self._ptr is None:
            raise ClosedError("the picker is closed")
        return self._ptr

    def select(self, exclude: Iterable[Union[int, Pick]] = ()) -> Pick:
        """As :meth:`Pool.select`."""
        ptr = self._use()
        ids, arr = _exclusion(exclude)
        c = ffi.new("lc_pick *")
        status = lib.lc_picker_select(ptr, arr, len(ids), c)
        if status != lib.LC_OK:
            raise _errors.error_for(status, "select")
        return Pick(c)

    def release(self, pick: Pick, ok: bool = True) -> None:
        """Releases ``pick`` through this picker (``lc_picker_release``): as
        :meth:`Pick.release`, with the same errors, but a pick on a zone pool's host is
        attributed through the picker's own record in the zone instead of the calling
        thread's, so a thread that picks and releases only through its picker needs no
        record of its own in the zone. Any pick may be given (of any pool, zone or not); the
        counts are the same either way. Same thread as :meth:`select`.
        """
        if not isinstance(pick, Pick):
            raise TypeError(f"pick must be a leastconn.Pick, not {type(pick).__name__}")
        ptr = self._use()
        outcome = lib.LC_OUTCOME_SUCCESS if ok else lib.LC_OUTCOME_FAILURE
        pick._release(outcome, quiet_if_released=False, picker=ptr)

    def close(self) -> None:
        """Frees the picker (its picks stay valid). Idempotent."""
        if threading.get_ident() != self._owner:
            raise InvalidArgumentError("a Picker is used only by the thread that created it")
        self._ptr = None
        self._finalizer()

    def __enter__(self) -> "Picker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _exclusion(exclude: Iterable[Union[int, Pick]]) -> Tuple[List[int], Any]:
    """The host ids to exclude, and a C array of them (NULL when there are none)."""
    ids = [x.host_id if isinstance(x, Pick) else x for x in exclude]
    if not ids:
        return ids, ffi.NULL
    try:
        return ids, ffi.new("uint64_t[]", ids)
    except (OverflowError, TypeError) as exc:
        raise InvalidArgumentError(f"exclude: not host ids: {exc}") from None


@ffi.def_extern()
def _lc_py_stats(userdata: Any, address: Any, stats: Any) -> None:
    found = ffi.from_handle(userdata)
    found.append(HostStats._from_c(ffi.string(address).decode("utf-8", "replace"), stats))
