"""leastconn: wait-free least-connections upstream selection, from Python.

A :class:`Pool` holds upstreams (from a list, or from sources: :class:`Static`,
:class:`Callback`, :class:`Multi`, :class:`Grace`, :class:`A`, :class:`SRV`, :class:`Docker`,
:class:`Etcd`, :class:`Json`), or from a Caddy ``reverse_proxy`` handler's JSON
(:meth:`Pool.from_json`), and picks the least-loaded one for each request::

    import leastconn

    with leastconn.Pool(["10.0.0.1:8080", "10.0.0.2:8080"]) as pool:
        with pool.select() as pick:       # leaving the block releases with success,
            forward(pick.address)         # an exception releases with failure

Pools of several processes (forked workers, or unrelated processes) share their host state
exactly through a :class:`Zone` (``Pool(..., zone=zone, name="app")``), which also returns
what a crashed process held (:meth:`Zone.sweep`).

Errors raise :class:`LeastconnError` subclasses carrying the library's status and message.
The library's log records go to the ``logging`` logger ``"leastconn"``. Every pool method
may be called from any thread; see :class:`Pool` and :class:`Pick`.
"""

from . import _errors, _log
from ._errors import (
    AlreadyReleasedError,
    CancelledError,
    ClosedError,
    InvalidAddressError,
    InvalidArgumentError,
    InvalidConfigError,
    InvalidLimitError,
    InvalidUtf8Error,
    InvalidWeightError,
    LeastconnError,
    NotFoundError,
    NotInFlightError,
    NoUpstreamError,
    NullPointerError,
    OsError,
    PanicError,
    PickMovedError,
    SourceFailedError,
    ZoneBusyError,
    ZoneFullError,
    ZoneIncompatibleError,
    ZoneTooSmallError,
    status_message,
)
from ._native import ffi as _ffi
from ._native import lib as _lib
from ._pool import HostStats, Pick, Picker, Policy, Pool, RefreshReport, thread_warmup
from ._sources import (
    SRV,
    A,
    Callback,
    Docker,
    Etcd,
    Grace,
    Json,
    Multi,
    Source,
    Static,
    Upstream,
    UpstreamLike,
)
from ._zone import SweepReport, Zone, ZoneCapacity

#: The version of the library this package was built with ("MAJOR.MINOR.PATCH").
LIBRARY_VERSION: str = _ffi.string(_lib.lc_version()).decode()
__version__ = LIBRARY_VERSION

#: The largest ``Upstream.weight``.
MAX_WEIGHT: int = _lib.LC_MAX_WEIGHT
#: The largest ``Upstream.tier``.
MAX_TIER: int = _lib.LC_MAX_TIER
#: The largest ``Upstream.max_requests``.
MAX_REQUESTS: int = _lib.LC_MAX_REQUESTS_LIMIT

_log.install()

__all__ = [
    "A",
    "SRV",
    "AlreadyReleasedError",
    "Callback",
    "CancelledError",
    "ClosedError",
    "Docker",
    "Etcd",
    "Grace",
    "HostStats",
    "InvalidAddressError",
    "InvalidArgumentError",
    "InvalidConfigError",
    "InvalidLimitError",
    "InvalidUtf8Error",
    "InvalidWeightError",
    "Json",
    "LIBRARY_VERSION",
    "LeastconnError",
    "MAX_REQUESTS",
    "MAX_TIER",
    "MAX_WEIGHT",
    "Multi",
    "NoUpstreamError",
    "NotFoundError",
    "NotInFlightError",
    "NullPointerError",
    "OsError",
    "PanicError",
    "Pick",
    "PickMovedError",
    "Picker",
    "Policy",
    "Pool",
    "RefreshReport",
    "Source",
    "SourceFailedError",
    "Static",
    "SweepReport",
    "Upstream",
    "UpstreamLike",
    "Zone",
    "ZoneBusyError",
    "ZoneCapacity",
    "ZoneFullError",
    "ZoneIncompatibleError",
    "ZoneTooSmallError",
    "status_message",
    "thread_warmup",
]

# Status codes added to the C ABI after this file was written get generated classes
# (LC_ERR_SOME_NEW_CODE -> SomeNewCodeError); export them too.
for _cls in sorted(set(_errors._BY_STATUS.values()), key=lambda c: c.__name__):
    if _cls.__name__ not in globals():
        globals()[_cls.__name__] = _cls
        __all__.append(_cls.__name__)
