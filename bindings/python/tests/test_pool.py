"""The Pythonic API over the C ABI: picks, releases, sources, stats, logging."""

import logging
import socket
import threading

import pytest

import leastconn
from leastconn import Callback, Grace, Multi, Pool, Static, Upstream, _log
from leastconn._native import lib

A, B, C = "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"


def in_flight(pool):
    return {s.address: s.in_flight for s in pool.stats()}


def test_least_conn_picks_the_host_with_fewest_in_flight():
    with Pool([A, B, C]) as pool:
        held = [pool.select() for _ in range(3)]
        # Three picks on three idle hosts: one each, whatever the tie breaks.
        assert sorted(p.address for p in held) == [A, B, C]
        held[0].release()
        with pool.select() as pick:
            assert pick.address == held[0].address
        for p in held[1:]:
            p.release()
        assert in_flight(pool) == {A: 0, B: 0, C: 0}


def test_with_block_releases_success_and_exception_releases_failure():
    with Pool([A], max_fails=2) as pool:
        with pool.select() as pick:
            assert pool.host_stats(A).in_flight == 1
        assert pick.released
        assert pool.host_stats(A).recent_failures == 0
        with pytest.raises(ZeroDivisionError):
            with pool.select() as pick:
                raise ZeroDivisionError("in the block")
        stats = pool.host_stats(A)
        assert (stats.in_flight, stats.recent_failures, stats.unhealthy) == (0, 1, False)


def test_failed_release_makes_host_unhealthy_and_picks_go_elsewhere():
    with Pool([A, B], max_fails=1, fail_duration=3600) as pool:
        pool.select(exclude=[pool.host_stats(B).host_id]).release(ok=False)
        assert pool.host_stats(A).unhealthy
        for _ in range(5):
            with pool.select() as pick:
                assert pick.address == B


def test_exclude_takes_picks_and_host_ids():
    with Pool([A, B, C]) as pool:
        first = pool.select()
        second = pool.select(exclude=[first])
        third = pool.select(exclude=[first.host_id, second])
        assert len({first.address, second.address, third.address}) == 3
        with pytest.raises(leastconn.NoUpstreamError) as info:
            pool.select(exclude=[first, second, third])
        assert info.value.status == 6
        for p in (first, second, third):
            p.release()


def test_first_policy_tiers_weights_and_tags():
    ups = [Upstream(A, tier=1, tag=11), Upstream(B, weight=5, tag=22), Upstream(C, tag=33)]
    with Pool(ups, policy=leastconn.Policy.FIRST) as pool:
        with pool.select() as pick:
            assert (pick.address, pick.tag, pick.index) == (B, 22, 1)
        pool.set_down(B)
        with pool.select() as pick:
            assert (pick.address, pick.tag) == (C, 33)
        pool.set_down(C)
        with pool.select() as pick:
            assert (pick.address, pick.tag) == (A, 11)
        pool.set_down(B, False)
        with pool.select() as pick:
            assert pick.address == B


def test_stats_are_dataclasses_in_list_order():
    with Pool([A, Upstream(B, max_requests=1)]) as pool:
        pick = pool.select(exclude=[pool.host_stats(A).host_id])
        stats = pool.stats()
        assert [s.address for s in stats] == [A, B]
        assert stats[1] == leastconn.HostStats(
            address=B,
            host_id=pick.host_id,
            picks=1,
            in_flight=1,
            recent_failures=0,
            max_requests=1,
            down=False,
            unhealthy=False,
            full=True,
            listed=True,
        )
        pick.release()


def test_callback_source_refresh_keeps_state_and_drains_removed_hosts():
    lists = [[A, B], [B]]
    with Pool(Callback(lambda: lists[0])) as pool:
        pick = pool.select(exclude=[pool.host_stats(B).host_id])
        assert pick.address == A
        lists.pop(0)
        report = pool.refresh()
        assert (report.upstreams, report.hosts, report.generation) == (1, 2, 2)
        drained = pool.host_stats(A)
        assert (drained.listed, drained.in_flight) == (False, 1)
        assert [s.address for s in pool.stats()] == [B]
        pick.release()
        assert pool.refresh().reclaimed == 1
        with pytest.raises(leastconn.NotFoundError):
            pool.host_stats(A)


def test_multi_skips_a_failing_source_and_grace_serves_the_last_good_list():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("registry unreachable")
        return [C]

    source = Multi(Static([A]), Callback(lambda: 1 / 0), Grace(Callback(flaky), 3600))
    with Pool(source) as pool:
        assert [s.address for s in pool.stats()] == [A, C]
        pool.refresh()
        assert len(calls) == 2
        assert [s.address for s in pool.stats()] == [A, C]


def test_a_source_with_an_ip_literal_needs_no_lookup():
    with Pool(leastconn.A("127.0.0.1", port=8080, weight=3)) as pool:
        with pool.select() as pick:
            assert pick.address == "127.0.0.1:8080"


def test_dns_sources_that_get_no_answer_fail_the_refresh(caplog):
    # A resolver that never answers: a UDP socket on a free port that nobody reads.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        resolver = "127.0.0.1:%d" % silent.getsockname()[1]
        quick = {"resolvers": [resolver], "timeout": 0.05, "retries": 0}
        sources = [
            leastconn.SRV("internal", service="api", proto="tcp", **quick),
            leastconn.A("backend.internal", **quick),
        ]
        for source in sources:
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="leastconn"):
                with Pool(source) as pool:
                    with pytest.raises(leastconn.NoUpstreamError):
                        pool.select()
                    with pytest.raises(leastconn.SourceFailedError):
                        pool.refresh()
            assert any(r.levelno == logging.ERROR for r in caplog.records), source


def test_one_description_feeds_several_pools():
    source = Multi([A], Callback(lambda: [B]))
    with Pool(source) as one, Pool(source) as two:
        assert [s.address for s in one.stats()] == [s.address for s in two.stats()] == [A, B]


def test_library_log_records_reach_logging(caplog):
    def broken():
        raise KeyError("no such service")

    with caplog.at_level(logging.DEBUG, logger="leastconn"):
        with Pool(Callback(broken)) as pool:
            with pytest.raises(leastconn.NoUpstreamError):
                pool.select()
    records = [r for r in caplog.records if r.name == "leastconn"]
    assert any(r.levelno == logging.ERROR and "KeyError" in r.getMessage() for r in records), [
        r.getMessage() for r in records
    ]


def test_a_refused_log_callback_warns_and_forwards_nothing(monkeypatch):
    # The library refuses when the process already has another Rust `log` logger; that
    # cannot be arranged here once the package is imported, so the refusal is simulated.
    class RefusingLib:
        LC_OK = lib.LC_OK

        def lc_log_set_callback(self, *args):
            return lib.LC_ERR_INVALID_ARGUMENT

        def __getattr__(self, name):
            return getattr(lib, name)

    registered = []
    monkeypatch.setattr(_log, "lib", RefusingLib())
    monkeypatch.setattr(_log.atexit, "register", lambda *a: registered.append(a))
    with pytest.warns(RuntimeWarning, match="not forwarded"):
        _log.install()
    assert registered == []


def test_version_and_limits():
    assert leastconn.LIBRARY_VERSION.count(".") == 2
    assert leastconn.MAX_WEIGHT == 1_000_000
    assert leastconn.status_message(6).startswith("no ")


def test_seeded_pickers_break_ties_identically():
    def sequence(seed):
        with Pool([A, B, C]) as pool, pool.picker(seed=seed) as picker:
            order = []
            for _ in range(50):
                with picker.select() as pick:
                    order.append(pick.index)
            return order

    first = sequence(42)
    assert first == sequence(42)
    assert set(first) == {0, 1, 2}
    assert first != sequence(43)


def test_picker_outlives_its_pool_and_refuses_other_threads():
    pool = Pool([A])
    picker = pool.picker(seed=1)
    pool.close()
    pick = picker.select()
    assert pick.address == A
    errors = []
    thread = threading.Thread(target=lambda: errors.append(_raises(picker.select)))
    thread.start()
    thread.join()
    assert [type(e) for e in errors] == [leastconn.InvalidArgumentError]
    pick.release()
    picker.close()
    with pytest.raises(leastconn.ClosedError):
        picker.select()
    with Pool([A]) as other, pytest.raises(leastconn.InvalidArgumentError):
        other.picker(seed=-1)


def _raises(fn):
    try:
        fn()
    except leastconn.LeastconnError as exc:
        return exc
    return None
