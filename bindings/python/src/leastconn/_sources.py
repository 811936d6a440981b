"""Upstream specs and sources.

A source here is a plain, immutable description: nothing is allocated in the library until a
:class:`~leastconn.Pool` is built from it, so one description may feed several pools and
there is never a half-consumed handle to get wrong. Building walks the tree and hands each C
source to its parent (``multi``, ``grace``) or to the pool, which consume it.

New kinds of source are added here: a frozen dataclass deriving from :class:`Source` whose
``_build()`` returns a new ``lc_source *`` or raises.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from . import _errors
from ._errors import InvalidAddressError, InvalidArgumentError, InvalidLimitError
from ._native import ffi, lib

_U16 = 1 << 16
_U32 = 1 << 32
_U64 = 1 << 64


@dataclass(frozen=True)
class Upstream:
    """One upstream: a dial address and how to treat it.

    ``address`` is ``host:port``, ``[v6]:port`` or ``unix/PATH`` and is the host's identity
    (its state is kept per exact address across list changes). ``weight`` is the relative
    capacity (1 to ``MAX_WEIGHT``), ``max_requests`` the most requests in flight at once (0 =
    unlimited), ``tier`` 0 for primaries (a higher tier is used only when no lower one is
    available). ``tag`` is an integer handed back in every pick of this entry.
    """

    address: str
    weight: int = 1
    max_requests: int = 0
    tier: int = 0
    tag: int = 0


UpstreamLike = Union[str, Upstream]


def cstring(text: str, what: str, keep: List[Any]) -> Any:
    """A NUL-terminated copy of ``text`` kept alive by ``keep``.

    Lone surrogates are passed through so that the library reports invalid UTF-8 itself; an
    embedded NUL would silently cut the string in C, so it is refused here.
    """
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, not {type(text).__name__}")
    if "\0" in text:
        raise InvalidArgumentError(f"{what} {text!r} contains a NUL character")
    buf = ffi.new("char[]", text.encode("utf-8", "surrogatepass"))
    keep.append(buf)
    return buf


def _uint(value: int, what: str, limit: int, exc: type) -> int:
    """``value`` checked against the width of its C field (``limit``), so that a value the
    field cannot hold raises the library's typed error rather than cffi's ``OverflowError``;
    the library checks the real range (``MAX_WEIGHT``, ``MAX_TIER`` ...) itself."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value < limit:
        raise exc(f"{what} {value} is out of range")
    return value


def millis(seconds: Optional[float], what: str) -> int:
    """Seconds (a float) as whole milliseconds; ``None`` is 0 (the library's default)."""
    if seconds is None:
        return 0
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, not {type(seconds).__name__}")
    if not 0 <= seconds < 2**53 / 1000:
        raise InvalidLimitError(f"{what} {seconds!r} s is out of range")
    return round(seconds * 1000)


def fill_upstream(c: Any, up: UpstreamLike, keep: List[Any]) -> None:
    """Fills the ``lc_upstream`` ``c`` from ``up``."""
    if isinstance(up, str):
        up = Upstream(up)
    if not isinstance(up, Upstream):
        raise TypeError(f"an upstream is a str or an Upstream, not {type(up).__name__}")
    c.address = cstring(up.address, "address", keep)
    _fill_template(c, up)


def _fill_template(c: Any, src: Any) -> None:
    """Copies ``weight``, ``max_requests``, ``tier`` and ``tag`` from ``src`` (an
    :class:`Upstream`, or a source giving them to every upstream it yields) into ``c``, an
    ``lc_upstream`` or a source's config, which name those fields alike."""
    c.weight = _uint(src.weight, "weight", _U32, _errors.InvalidWeightError)
    c.max_requests = _uint(src.max_requests, "max_requests", _U32, InvalidLimitError)
    c.tier = _uint(src.tier, "tier", _U32, InvalidLimitError)
    c.tag = ffi.cast("void *", _uint(src.tag, "tag", _U64, InvalidArgumentError))


def _new_source(call: Callable[[Any], int], context: str) -> Any:
    out = ffi.new("lc_source **")
    _errors.check(call(out), context)
    return out[0]


class Source:
    """Base of every source description; see the subclasses."""

    def _build(self) -> Any:
        raise NotImplementedError


def as_source(upstreams: Union[Source, Iterable[UpstreamLike]]) -> Source:
    """A source from a source, or a static source from a list of upstreams."""
    if isinstance(upstreams, Source):
        return upstreams
    if isinstance(upstreams, (str, bytes, Upstream)):
        raise TypeError("pass a list of upstreams (or a Source), not a single one")
    return Static(tuple(upstreams))


@dataclass(frozen=True)
class Static(Source):
    """A list that never changes (Caddy's ``to``, nginx's ``server`` lines)."""

    upstreams: Sequence[UpstreamLike]

    def _build(self) -> Any:
        ups = list(self.upstreams)
        keep: List[Any] = []
        arr = ffi.new("lc_upstream[]", len(ups)) if ups else ffi.NULL
        for i, up in enumerate(ups):
            fill_upstream(arr[i], up, keep)
        return _new_source(
            lambda out: lib.lc_source_static_new(arr, len(ups), out), "static source"
        )


# The handles of callback sources the library still holds, by address: the library frees
# them through `_lc_py_free` when it drops the source.
_live_handles: Dict[int, Any] = {}
_live_lock = threading.Lock()


class _CallbackState:
    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Iterable[UpstreamLike]]) -> None:
        self.fn = fn


@dataclass(frozen=True)
class Callback(Source):
    """A source that calls ``fn()`` on every refresh for the current list.

    ``fn`` returns an iterable of addresses or :class:`Upstream`. It runs on the thread that
    refreshes (a refresher thread, or whichever thread calls :meth:`Pool.refresh`), never
    twice at once for one pool. If it raises or yields an invalid upstream, that refresh
    fails with the exception's text logged and the pool keeps its current list; inside a
    :class:`Multi` the other sources still count. It must not close its own pool.
    """

    fn: Callable[[], Iterable[UpstreamLike]]

    def _build(self) -> Any:
        if not callable(self.fn):
            raise TypeError("Callback needs a callable")
        handle = ffi.new_handle(_CallbackState(self.fn))
        key = int(ffi.cast("uintptr_t", handle))
        with _live_lock:
            _live_handles[key] = handle
        try:
            return _new_source(
                lambda out: lib.lc_source_callback_new(
                    lib._lc_py_source, handle, lib._lc_py_free, out
                ),
                "callback source",
            )
        except BaseException:
            with _live_lock:
                _live_handles.pop(key, None)
            raise


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# How many callback sources are running on this thread (a callback may refresh another pool).
_callbacks = threading.local()


def in_callback() -> bool:
    """Whether the calling thread is inside a callback source."""
    return getattr(_callbacks, "depth", 0) > 0


@ffi.def_extern(error=lib.LC_ERR_SOURCE_FAILED)
def _lc_py_source(userdata: Any, lst: Any) -> int:
    state = ffi.from_handle(userdata)
    _callbacks.depth = getattr(_callbacks, "depth", 0) + 1
    try:
        keep: List[Any] = []
        c = ffi.new("lc_upstream *")
        for up in state.fn():
            fill_upstream(c, up, keep)
            # An invalid upstream fails this fetch; the library logs which one.
            status = lib.lc_upstream_list_push(lst, c)
            if status != lib.LC_OK:
                return int(status)
        return int(lib.LC_OK)
    except BaseException as exc:  # noqa: BLE001 - nothing may unwind into C: a source error
        message = f"callback source {state.fn!r} raised {_describe(exc)}"
        lib.lc_upstream_list_set_error(lst, message.replace("\0", "\\0").encode("utf-8", "replace"))
        return int(lib.LC_ERR_SOURCE_FAILED)
    finally:
        _callbacks.depth -= 1


@ffi.def_extern()
def _lc_py_free(userdata: Any) -> None:
    with _live_lock:
        _live_handles.pop(int(ffi.cast("uintptr_t", userdata)), None)


@dataclass(frozen=True)
class Multi(Source):
    """Several sources asked in order, their lists appended (Caddy's ``multi``).

    A source that fails is logged and skipped; the others still count.
    """

    sources: Tuple[Source, ...]

    def __init__(self, *sources: Union[Source, Iterable[UpstreamLike]]) -> None:
        object.__setattr__(self, "sources", tuple(as_source(s) for s in sources))

    def _build(self) -> Any:
        multi = _new_source(lib.lc_source_multi_new, "multi source")
        try:
            for child in self.sources:
                # lc_source_multi_add consumes the child also on error.
                _errors.check(lib.lc_source_multi_add(multi, child._build()), "multi source")
        except BaseException:
            lib.lc_source_free(multi)
            raise
        return multi


@dataclass(frozen=True)
class Grace(Source):
    """Serves ``inner``'s last good list for up to ``period`` seconds after it fails."""

    inner: Source
    period: float

    def _build(self) -> Any:
        ms = millis(self.period, "grace period")
        # lc_source_grace_new consumes the inner source also on error.
        inner = as_source(self.inner)._build()
        return _new_source(lambda out: lib.lc_source_grace_new(inner, ms, out), "grace source")


_IP_VERSIONS = {"both": "LC_IP_BOTH", "v4": "LC_IP_V4", "v6": "LC_IP_V6"}


def _strings(values: Any, what: str) -> Tuple[str, ...]:
    """A tuple of strings from a list of them (a lone string is refused, not split)."""
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{what} must be a list of str, not a single {type(values).__name__}")
    return tuple(values)


def _fill_dns_common(cfg: Any, src: Any, keep: List[Any]) -> None:
    cfg.refresh_ms = millis(src.refresh, "refresh")
    resolvers = [cstring(r, "resolver", keep) for r in _strings(src.resolvers, "resolvers")]
    if resolvers:
        arr = ffi.new("const char *[]", resolvers)
        keep.append(arr)
        cfg.resolvers = arr
        cfg.resolvers_len = len(resolvers)
    cfg.timeout_ms = millis(src.timeout, "timeout")
    if src.retries is not None:
        # Negative is refused here: the library would read -1 as "the default" (None here).
        cfg.retries = _uint(src.retries, "retries", 1 << 31, InvalidLimitError)
    _fill_template(cfg, src)


@dataclass(frozen=True)
class A(Source):
    """Caddy's ``a`` upstreams: ``ip:port`` for each address ``name`` resolves to.

    ``versions`` is ``"both"``, ``"v4"`` or ``"v6"``. Lookups run in refreshes, never in a
    pick; a result is reused for ``refresh`` seconds. No ``resolvers``: the system's
    resolution (``/etc/hosts`` applies). ``timeout`` (seconds) and ``retries`` apply to
    explicit resolvers; ``None`` keeps the library's defaults.
    """

    name: str
    port: int = 80
    versions: str = "both"
    refresh: float = 60.0
    resolvers: Sequence[str] = ()
    timeout: Optional[float] = None
    retries: Optional[int] = None
    weight: int = 1
    max_requests: int = 0
    tier: int = 0
    tag: int = 0

    def _build(self) -> Any:
        keep: List[Any] = []
        cfg = ffi.new("lc_dns_a_config *")
        _errors.check(lib.lc_dns_a_config_default(cfg), "a source")
        cfg.name = cstring(self.name, "name", keep)
        # Port 0 is refused by the library (InvalidAddressError).
        cfg.port = _uint(self.port, "port", _U16, InvalidAddressError)
        if self.versions not in _IP_VERSIONS:
            raise InvalidArgumentError(f"versions must be one of {sorted(_IP_VERSIONS)}")
        cfg.versions = getattr(lib, _IP_VERSIONS[self.versions])
        _fill_dns_common(cfg, self, keep)
        return _new_source(lambda out: lib.lc_source_dns_a_new(cfg, out), "a source")


@dataclass(frozen=True)
class SRV(Source):
    """Caddy's ``srv`` upstreams: ``target:port`` of each SRV record.

    ``service`` and ``proto`` (without underscores) are both given or both omitted (then
    ``name`` is the full SRV name). ``grace_period`` seconds: how long the last good list is
    served after lookups start failing. No ``resolvers``: those of ``/etc/resolv.conf``.
    """

    name: str
    service: Optional[str] = None
    proto: Optional[str] = None
    refresh: float = 60.0
    grace_period: float = 0.0
    resolvers: Sequence[str] = ()
    timeout: Optional[float] = None
    retries: Optional[int] = None
    weight: int = 1
    max_requests: int = 0
    tier: int = 0
    tag: int = 0

    def _build(self) -> Any:
        keep: List[Any] = []
        cfg = ffi.new("lc_dns_srv_config *")
        _errors.check(lib.lc_dns_srv_config_default(cfg), "srv source")
        cfg.name = cstring(self.name, "name", keep)
        if self.service is not None:
            cfg.service = cstring(self.service, "service", keep)
        if self.proto is not None:
            cfg.proto = cstring(self.proto, "proto", keep)
        cfg.grace_period_ms = millis(self.grace_period, "grace period")
        _fill_dns_common(cfg, self, keep)
        return _new_source(lambda out: lib.lc_source_dns_srv_new(cfg, out), "srv source")


LabelValues = Union[None, str, Sequence[str]]


@dataclass(frozen=True)
class Docker(Source):
    """Caddy's ``docker`` upstreams: ``ip:port`` of each running container labelled
    ``com.caddyserver.http.enable=true`` that is healthy (or has no healthcheck) and carries
    the required ``labels``, in container-name order.

    ``host`` is the daemon's socket, ``unix:///path``; ``None``: ``DOCKER_HOST`` when the
    source is built, else ``unix:///var/run/docker.sock`` (``tcp://``, ``ssh://`` are
    refused). ``port`` 0: each container's label ``com.caddyserver.http.upstream.port``.
    ``labels`` maps a key to the accepted value, a list of accepted values, or ``None`` /
    ``[]`` for any value (keys ANDed, values ORed). ``refresh`` (seconds): the safety-net
    re-list period (events re-list in between); ``timeout``: the bound on each request to
    the daemon. Nothing is contacted when the pool is built from it; the first refresh
    starts a watcher thread and waits at most twice ``timeout`` for its first listing. While
    the daemon is unreachable the source fails (inside a :class:`Multi`: logged and skipped;
    wrap it in :class:`Grace` to keep its last list).
    """

    host: Optional[str] = None
    port: int = 0
    labels: Mapping[str, LabelValues] = field(default_factory=dict)
    refresh: float = 30.0
    timeout: float = 5.0
    weight: int = 1
    max_requests: int = 0
    tier: int = 0
    tag: int = 0

    def _build(self) -> Any:
        keep: List[Any] = []
        cfg = ffi.new("lc_docker_config *")
        _errors.check(lib.lc_docker_config_default(cfg), "docker source")
        if self.host is not None:
            cfg.host = cstring(self.host, "host", keep)
        cfg.port = _uint(self.port, "port", _U16, InvalidAddressError)
        if not isinstance(self.labels, Mapping):
            raise TypeError(f"labels must be a mapping, not {type(self.labels).__name__}")
        pairs: List[Tuple[Any, Any]] = []
        for key, values in self.labels.items():
            c_key = cstring(key, "label key", keep)
            if values is None:
                values = ()
            elif isinstance(values, str):
                values = (values,)
            else:
                values = _strings(values, f"values of label {key!r}")
            if not values:
                pairs.append((c_key, ffi.NULL))
            for value in values:
                pairs.append((c_key, cstring(value, f"value of label {key!r}", keep)))
        if pairs:
            arr = ffi.new("lc_docker_label[]", len(pairs))
            keep.append(arr)
            for i, (c_key, c_value) in enumerate(pairs):
                arr[i].key = c_key
                arr[i].value = c_value
            cfg.labels = arr
            cfg.labels_len = len(pairs)
        # 0 is refused by the library (InvalidLimitError), as it should be here.
        cfg.refresh_ms = millis(self.refresh, "refresh")
        cfg.timeout_ms = millis(self.timeout, "timeout")
        _fill_template(cfg, self)
        return _new_source(lambda out: lib.lc_source_docker_new(cfg, out), "docker source")


@dataclass(frozen=True)
class Etcd(Source):
    """Upstreams kept under the key ``prefix`` in etcd (as the Caddy module
    deanchou/caddy_etcd reads them), watched rather than read per request.

    ``endpoints`` are client URLs ``http://host:port`` (port 2379 if absent; ``host:port``
    also works), tried in order; at least one (``https`` is refused). Each key under the
    prefix holds a dial address or the module's JSON
    (``{"endpoints": ["http://10.0.0.1:8080"], "version": "v"}``); when
    ``version_key`` (``None``: the prefix followed by ``.version``) holds a non-empty value
    only JSON entries of that version count. ``timeout`` (seconds) bounds each call to etcd
    and the first refresh's wait; ``resync`` is the safety-net re-read period. Nothing is
    read when the pool is built from it: the first refresh starts a watcher thread, later
    refreshes copy its list. While no endpoint answers the source fails (inside a
    :class:`Multi`: logged and skipped; wrap it in :class:`Grace` to keep its last list).
    ``weight``, ``max_requests`` and ``tier`` apply to entries that set none.
    """

    endpoints: Sequence[str]
    prefix: str
    version_key: Optional[str] = None
    timeout: float = 5.0
    resync: float = 300.0
    weight: int = 1
    max_requests: int = 0
    tier: int = 0
    tag: int = 0

    def _build(self) -> Any:
        keep: List[Any] = []
        cfg = ffi.new("lc_etcd_config *")
        _errors.check(lib.lc_etcd_config_default(cfg), "etcd source")
        endpoints = [cstring(e, "endpoint", keep) for e in _strings(self.endpoints, "endpoints")]
        if endpoints:
            arr = ffi.new("const char *[]", endpoints)
            keep.append(arr)
            cfg.endpoints = arr
            cfg.endpoints_len = len(endpoints)
        cfg.prefix = cstring(self.prefix, "prefix", keep)
        if self.version_key is not None:
            cfg.version_key = cstring(self.version_key, "version_key", keep)
        # The C struct reads 0 as "the default"; here 0 is an error, not silently 5 s.
        for what, seconds in (("timeout", self.timeout), ("resync", self.resync)):
            ms = millis(seconds, what)
            if ms == 0:
                raise InvalidLimitError(f"{what} {seconds!r} s is out of range (at least 1 ms)")
            setattr(cfg, f"{what}_ms", ms)
        _fill_template(cfg, self)
        return _new_source(lambda out: lib.lc_source_etcd_new(cfg, out), "etcd source")


#: Room for the library's message on a JSON error; a longer one is cut to fit.
_JSON_ERROR_LEN = 4096


def json_text(document: Union[str, bytes, Mapping[str, Any]], what: str) -> str:
    """The JSON text of ``document``: a ``str``, UTF-8 ``bytes``, or a decoded object."""
    if isinstance(document, bytes):
        try:
            return document.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _errors.InvalidUtf8Error(f"{what}: {exc}") from None
    if isinstance(document, str):
        return document
    if isinstance(document, Mapping):
        return json.dumps(document)
    raise TypeError(f"{what} must be JSON text or a dict, not {type(document).__name__}")


def new_from_json(fn: Any, out_type: str, text: str, context: str) -> Any:
    """Calls ``fn(c_text, out, error, error_len)`` (``lc_pool_new_json``,
    ``lc_source_new_json``, or ``lc_pool_new_json_in_zone`` with its zone and name bound) on
    ``text``; returns the new object or raises the typed error carrying the library's
    message."""
    keep: List[Any] = []
    c_text = cstring(text, "JSON", keep)
    out = ffi.new(out_type)
    error = ffi.new("char[]", _JSON_ERROR_LEN)
    status = fn(c_text, out, error, _JSON_ERROR_LEN)
    if status != lib.LC_OK:
        detail = ffi.string(error).decode("utf-8", "replace")
        raise _errors.error_for(status, context, detail)
    return out[0]


@dataclass(frozen=True)
class Json(Source):
    """A source from the JSON of one Caddy ``dynamic_upstreams`` module object: ``a``,
    ``srv``, ``docker``, ``etcd``, leastconn's ``static``, or a ``multi`` of them, with
    leastconn's ``weight``, ``max_requests``, ``tier`` and ``grace`` extensions, e.g.
    ``{"source": "etcd", "endpoints": ["http://10.0.0.5:2379"], "key": "/services/api/"}``.

    ``document`` is the JSON text (``str`` or UTF-8 ``bytes``) or the decoded object (a
    ``dict``). It is parsed when a pool is built from it; a malformed one raises
    :class:`InvalidConfigError` with the library's message naming the JSON path.
    """

    document: Union[str, bytes, Mapping[str, Any]]

    def _build(self) -> Any:
        text = json_text(self.document, "source JSON")
        return new_from_json(lib.lc_source_new_json, "lc_source **", text, "source from JSON")


__all__ = [
    "A",
    "SRV",
    "Callback",
    "Docker",
    "Etcd",
    "Grace",
    "Json",
    "Multi",
    "Source",
    "Static",
    "Upstream",
    "UpstreamLike",
]
