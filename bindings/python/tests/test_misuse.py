"""Misuse gives exceptions carrying the library's status and message, never a crash."""

import gc
import warnings
import weakref

import pytest

import leastconn
from leastconn import Callback, Pool, Upstream, _errors
from leastconn._native import lib

A, B = "10.0.0.1:80", "10.0.0.2:80"


def test_double_release_raises_already_released_and_changes_no_counter():
    with Pool([A]) as pool:
        pick = pool.select()
        pick.release(ok=False)
        with pytest.raises(leastconn.AlreadyReleasedError) as info:
            pick.release(ok=False)
        assert info.value.status == lib.LC_ERR_ALREADY_RELEASED
        assert leastconn.status_message(lib.LC_ERR_ALREADY_RELEASED) in str(info.value)
        stats = pool.host_stats(A)
        assert (stats.in_flight, stats.recent_failures) == (0, 1)


def test_release_after_the_with_block_raises():
    with Pool([A]) as pool:
        with pool.select() as pick:
            pass
        with pytest.raises(leastconn.AlreadyReleasedError):
            pick.release()


def test_explicit_release_inside_the_with_block_is_not_repeated():
    with Pool([A], max_fails=5) as pool:
        with pytest.raises(RuntimeError):
            with pool.select() as pick:
                pick.release(ok=True)
                raise RuntimeError("after the release")
        assert pool.host_stats(A).recent_failures == 0


def test_use_after_close_raises_closed_and_picks_stay_releasable():
    pool = Pool([A])
    pick = pool.select()
    pool.close()
    pool.close()
    assert pool.closed
    for call in (
        pool.select,
        pool.refresh,
        pool.stats,
        lambda: pool.host_stats(A),
        lambda: pool.set_down(A),
    ):
        with pytest.raises(leastconn.ClosedError):
            call()
    pick.release()
    with pytest.raises(leastconn.AlreadyReleasedError):
        pick.release()


@pytest.mark.parametrize(
    "upstream, error",
    [
        ("", leastconn.InvalidAddressError),
        ("no-port", leastconn.InvalidAddressError),
        ("host:99999", leastconn.InvalidAddressError),
        ("a\0b:80", leastconn.InvalidArgumentError),
        ("\udc80:80", leastconn.InvalidUtf8Error),
        (Upstream(A, weight=0), leastconn.InvalidWeightError),
        (Upstream(A, weight=-1), leastconn.InvalidWeightError),
        (Upstream(A, weight=leastconn.MAX_WEIGHT + 1), leastconn.InvalidWeightError),
        (Upstream(A, tier=leastconn.MAX_TIER + 1), leastconn.InvalidLimitError),
        (Upstream(A, max_requests=leastconn.MAX_REQUESTS + 1), leastconn.InvalidLimitError),
        (Upstream(A, tag=-1), leastconn.InvalidArgumentError),
    ],
)
def test_bad_upstreams_raise(upstream, error):
    with pytest.raises(error) as info:
        Pool([A, upstream])
    assert isinstance(info.value, ValueError)


def test_bad_arguments_raise():
    with pytest.raises(TypeError):
        Pool(A)
    with pytest.raises(TypeError):
        Pool([42])
    with pytest.raises(leastconn.InvalidArgumentError):
        Pool([A], policy=7)
    with pytest.raises(leastconn.InvalidLimitError):
        Pool([A], max_fails=10**6)
    with pytest.raises(leastconn.InvalidLimitError):
        Pool([A], max_fails=-1)
    with pytest.raises(leastconn.InvalidLimitError):
        Pool([A], max_fails=2**32)
    with pytest.raises(TypeError):
        Pool([A], max_fails=1.0)
    with pytest.raises(leastconn.InvalidLimitError):
        Pool([A], fail_duration=-1)
    with pytest.raises(leastconn.InvalidLimitError):
        Pool([A], max_fails=1, fail_duration=0)
    with pytest.raises(leastconn.InvalidLimitError):
        Pool([A], refresh_interval=0)
    with pytest.raises(leastconn.InvalidArgumentError):
        leastconn.Pool(leastconn.SRV("internal", service="api"))
    with pytest.raises(leastconn.InvalidAddressError):
        leastconn.Pool(leastconn.A("127.0.0.1", port=0))
    with Pool([A]) as pool:
        with pytest.raises(leastconn.InvalidArgumentError):
            pool.select(exclude=[-1])
        with pytest.raises(leastconn.NotFoundError) as info:
            pool.set_down(B)
        assert info.value.status == lib.LC_ERR_NOT_FOUND


LOCAL = "127.0.0.1"  # an IP literal: an a source wrongly accepted would look nothing up


@pytest.mark.parametrize(
    "source, error",
    [
        (leastconn.A(LOCAL, port=0), leastconn.InvalidAddressError),
        (leastconn.A(LOCAL, port=65536), leastconn.InvalidAddressError),
        (leastconn.A(LOCAL, port="80"), TypeError),
        (leastconn.A(LOCAL, versions="v5"), leastconn.InvalidArgumentError),
        (leastconn.A(LOCAL, versions="v6"), leastconn.InvalidArgumentError),
        (leastconn.A(LOCAL, retries=-1), leastconn.InvalidLimitError),
        (leastconn.A(LOCAL, retries=2**31), leastconn.InvalidLimitError),
        (leastconn.A(LOCAL, retries=1.5), TypeError),
        (leastconn.A(LOCAL, refresh=-1), leastconn.InvalidLimitError),
        (leastconn.A(LOCAL, timeout="5"), TypeError),
        (leastconn.A(LOCAL, resolvers=["not a resolver"]), leastconn.InvalidAddressError),
        (leastconn.A(LOCAL, resolvers="10.0.0.53"), TypeError),
        (leastconn.A(LOCAL, weight=0), leastconn.InvalidWeightError),
        (leastconn.A(LOCAL, tier=leastconn.MAX_TIER + 1), leastconn.InvalidLimitError),
        (leastconn.A(LOCAL, tag=2**64), leastconn.InvalidArgumentError),
        (leastconn.A(""), leastconn.InvalidAddressError),
        (leastconn.A("a\0b"), leastconn.InvalidArgumentError),
        (leastconn.A("\udc80"), leastconn.InvalidUtf8Error),
        (leastconn.SRV("internal", service="api"), leastconn.InvalidArgumentError),
        (leastconn.SRV("internal", service="api", proto="\udc80"), leastconn.InvalidUtf8Error),
        (leastconn.SRV("bad name!"), leastconn.InvalidAddressError),
        (leastconn.SRV("internal", grace_period=-1), leastconn.InvalidLimitError),
        (leastconn.SRV("internal", retries=-1), leastconn.InvalidLimitError),
        (leastconn.SRV("internal", resolvers=["10.0.0.53:99999"]), leastconn.InvalidAddressError),
        (leastconn.SRV("internal", weight=leastconn.MAX_WEIGHT + 1), leastconn.InvalidWeightError),
        (
            leastconn.SRV("internal", max_requests=leastconn.MAX_REQUESTS + 1),
            leastconn.InvalidLimitError,
        ),
        (Callback(42), TypeError),
        (leastconn.Grace(leastconn.Static([A]), -1), leastconn.InvalidLimitError),
        (leastconn.Grace(leastconn.Static([A]), "1"), TypeError),
        (leastconn.Grace(leastconn.Static(["bad"]), 1), leastconn.InvalidAddressError),
        (leastconn.Multi([A], leastconn.Static(["bad"])), leastconn.InvalidAddressError),
    ],
)
def test_bad_sources_raise(source, error):
    with pytest.raises(error) as info:
        # Built and freed, not a pool: a config wrongly accepted must not look anything up.
        lib.lc_source_free(source._build())
    if issubclass(error, leastconn.LeastconnError):
        assert isinstance(info.value, ValueError)
        if info.value.status is not None:
            assert leastconn.status_message(info.value.status) in str(info.value)


def raises_value_error():
    raise ValueError("registry says no")


@pytest.mark.parametrize(
    "fn, logged",
    [
        (raises_value_error, "ValueError: registry says no"),
        (lambda: 42, "TypeError"),
        (lambda: [A, 42], "TypeError"),
        (lambda: ["not an address"], "invalid upstream address"),
        (lambda: [Upstream(A, weight=0)], "weight"),
    ],
)
def test_a_failing_callback_source_is_a_source_error(fn, logged, caplog):
    good = [True]

    def source():
        return [A] if good[0] else fn()

    with Pool(Callback(source)) as pool:
        good[0] = False
        with caplog.at_level("ERROR", logger="leastconn"):
            with pytest.raises(leastconn.SourceFailedError) as info:
                pool.refresh()
        assert info.value.status == lib.LC_ERR_SOURCE_FAILED
        assert any(logged in r.getMessage() for r in caplog.records), caplog.text
        # The current list stays.
        with pool.select() as pick:
            assert pick.address == A


def test_a_callback_raising_base_exception_is_a_source_error():
    def exits():
        raise SystemExit(3)

    with Pool(Callback(exits)) as pool:
        with pytest.raises(leastconn.SourceFailedError):
            pool.refresh()


def test_an_unreleased_pick_is_released_when_collected():
    with Pool([A]) as pool:
        pick = pool.select()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del pick
            gc.collect()
        assert pool.host_stats(A).in_flight == 0
        assert [w.category for w in caught] == [ResourceWarning]


def test_callback_lives_as_long_as_the_pool_and_no_longer():
    class Fn:
        def __call__(self):
            return [A]

    fn = Fn()
    ref = weakref.ref(fn)
    pool = Pool(Callback(fn))
    del fn
    gc.collect()
    assert ref() is not None
    assert pool.refresh().upstreams == 1
    pool.close()
    gc.collect()
    assert ref() is None


def test_every_status_code_has_an_exception_class():
    for name in dir(lib):
        if name.startswith("LC_ERR_"):
            status = getattr(lib, name)
            error = _errors.error_for(status, "op")
            assert type(error) is not leastconn.LeastconnError, name
            assert isinstance(error, leastconn.LeastconnError)
            assert error.status == status
            assert getattr(leastconn, type(error).__name__) is type(error)
    unknown = _errors.error_for(4_000_000_000, "op")
    assert type(unknown) is leastconn.LeastconnError
    assert unknown.status == 4_000_000_000
    assert "unknown status" in str(unknown)


def test_a_status_added_to_the_abi_later_gets_its_own_class(monkeypatch):
    class NewerLib:
        LC_ERR_PICK_MOVED = 14
        LC_ERR_INVALID_CONFIG = 16

        def __dir__(self):
            return dir(lib) + ["LC_ERR_PICK_MOVED", "LC_ERR_INVALID_CONFIG"]

        def __getattr__(self, name):
            return getattr(lib, name)

    monkeypatch.setattr(_errors, "lib", NewerLib())
    monkeypatch.setitem(_errors.__dict__, "PickMovedError", None)
    monkeypatch.setitem(_errors.__dict__, "InvalidConfigError", None)
    table = _errors._build_table()
    moved, invalid = table[14], table[16]
    assert (moved.__name__, invalid.__name__) == ("PickMovedError", "InvalidConfigError")
    assert issubclass(moved, leastconn.LeastconnError)
    assert not issubclass(moved, ValueError)
    assert issubclass(invalid, leastconn.LeastconnError) and issubclass(invalid, ValueError)
    assert table[lib.LC_ERR_NO_UPSTREAM] is leastconn.NoUpstreamError


def test_closing_a_pool_from_its_callback_source_is_refused():
    pools = []

    def closes_its_pool():
        if pools:
            pools[0].close()
        return [A]

    with Pool(Callback(closes_its_pool), refresh_interval=3600) as pool:
        pools.append(pool)
        with pytest.raises(leastconn.SourceFailedError):
            pool.refresh()
        assert not pool.closed
        with pool.select() as pick:
            assert pick.address == A
    assert pool.closed
