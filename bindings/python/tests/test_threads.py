"""Thread safety: threads pick while another refreshes, and close races with picks."""

import threading
from collections import Counter

import pytest

import leastconn
from leastconn import Callback, Pool
from leastconn._native import lib

THREADS = 4
PICKS = 2000
LISTS = [["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"], ["10.0.0.2:80", "10.0.0.4:80"]]


def run_threads(targets):
    errors = []

    def guard(fn):
        def run():
            try:
                fn()
            except BaseException as exc:  # reported by the test thread
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guard(fn)) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_threads_pick_while_another_refreshes():
    turn = [0]
    pool = Pool(Callback(lambda: LISTS[turn[0] % 2]), max_fails=0)
    counts = [Counter() for _ in range(THREADS)]
    done = threading.Event()

    def picker(counter):
        def run():
            for i in range(PICKS):
                with pool.select() as pick:
                    counter[pick.address] += 1
                if i % 3 == 0:
                    pool.select().release(ok=False)
                    counter["failures"] += 1

        return run

    refreshes = [0]

    def refresher():
        # At least one refresh however the threads are scheduled (the pickers may all be
        # done before this thread first runs).
        while True:
            turn[0] += 1
            pool.refresh()
            refreshes[0] += 1
            if done.is_set():
                break

    pickers = [picker(c) for c in counts]

    def pickers_then_stop():
        run_threads(pickers)
        done.set()

    run_threads([pickers_then_stop, refresher])
    total = sum(counts, Counter())
    failures = total.pop("failures")
    assert failures == THREADS * len(range(0, PICKS, 3))
    assert sum(total.values()) == THREADS * PICKS
    assert set(total) <= {a for lst in LISTS for a in lst}
    assert refreshes[0] >= 1
    pool.refresh()
    pool.refresh()
    assert all(s.in_flight == 0 for s in pool.stats())
    pool.close()


def test_close_while_threads_pick_gives_closed_error_only():
    pool = Pool(["10.0.0.1:80", "10.0.0.2:80"], max_fails=0)
    started = threading.Barrier(THREADS + 1)
    outcomes = []
    held = []

    def picker():
        started.wait()
        try:
            while True:
                pick = pool.select()
                held.append(pick)
                if len(held) > 64:
                    held.pop(0).release()
        except leastconn.ClosedError:
            outcomes.append("closed")

    def closer():
        started.wait()
        pool.close()

    run_threads([picker] * THREADS + [closer])
    assert outcomes == ["closed"] * THREADS
    for pick in held:
        pick.release()
    with pytest.raises(leastconn.ClosedError):
        pool.select()


def test_refresher_thread_calls_python_and_stops_on_close():
    calls = []
    third = threading.Event()

    def source():
        calls.append(threading.get_ident())
        if len(calls) >= 3:
            third.set()
        return ["10.0.0.1:80"]

    pool = Pool(Callback(source), refresh_interval=0.001)
    assert third.wait(timeout=60)
    # Stopping waits for the refresher thread, which may be waiting for the GIL inside
    # `source`: close must not hold the GIL (or any lock the callback needs) meanwhile.
    pool.close()
    assert len(calls) >= 3
    assert threading.get_ident() in calls
    assert any(ident != threading.get_ident() for ident in calls)


def test_close_during_a_call_frees_the_pool_only_when_the_call_ends():
    # What the race above relies on, made deterministic: a call in progress (the one
    # select makes around lc_pool_select) keeps the pool allocated across close().
    pool = Pool(["10.0.0.1:80"])
    handle = pool._handle

    def closes_mid_call(in_call):
        pool.close()
        assert handle.ptr == in_call
        with pytest.raises(leastconn.ClosedError):
            pool.select()
        return lib.LC_OK

    handle.call(closes_mid_call)
    assert handle.ptr is None
