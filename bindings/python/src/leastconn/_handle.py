"""A library handle shared by the threads that use it, freed once closed and unused."""

from __future__ import annotations

import threading
from typing import Any, Callable

from ._errors import ClosedError, InvalidArgumentError
from ._native import lib
from ._sources import in_callback


class _Handle:
    """A library pointer (``lc_pool *``, ``lc_zone *``) freed by ``free`` once closed and no
    call is using it.

    The lock is held only to count users, never across a call into the library, so calls
    from many threads run in parallel; it is what turns use after close into
    :class:`ClosedError` rather than a use of freed memory. ``kind`` names the object in
    that error. ``refuse_in_callback``: :meth:`close` raises :class:`InvalidArgumentError`
    inside a callback source (for a pool, which the library cannot free from there).
    """

    def __init__(
        self, ptr: Any, free: Callable[[Any], None], kind: str, refuse_in_callback: bool = True
    ) -> None:
        self.ptr = ptr
        self.refuse_in_callback = refuse_in_callback
        self.free = free
        self.kind = kind
        self.refresher: Any = None
        self.users = 0
        self.closed = False
        self.lock = threading.Lock()

    def call(self, fn: Callable[..., int], *args: Any) -> int:
        """``fn(ptr, *args)`` with the handle kept alive for the call; returns its status."""
        with self.lock:
            if self.closed:
                raise ClosedError(f"the {self.kind} is closed")
            self.users += 1
            ptr = self.ptr
        try:
            return fn(ptr, *args)
        finally:
            with self.lock:
                self.users -= 1
                # The last call out of a closed handle frees it.
                last = self.closed and self.users == 0
                if last:
                    self.ptr = None
            if last:
                self.free(ptr)

    def close(self) -> None:
        # The library forbids freeing a pool or stopping a refresher from inside a source
        # callback (the refresher's own thread would wait for itself).
        if self.refuse_in_callback and in_callback():
            raise InvalidArgumentError(
                f"a {self.kind} cannot be closed from inside a callback source"
            )
        ptr = None
        with self.lock:
            if self.closed:
                return
            self.closed = True
            refresher, self.refresher = self.refresher, None
            if self.users == 0:
                ptr, self.ptr = self.ptr, None
        # Outside the lock: stopping waits for a refresh in progress, whose Python
        # callback may be using this pool.
        if refresher is not None:
            lib.lc_refresher_stop(refresher)
        if ptr is not None:
            self.free(ptr)
