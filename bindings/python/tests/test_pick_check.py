"""The check word (lc_pick.check): a Pick releases through the very struct its select filled,
a moved copy is refused with PickMovedError, and thread warm-up is offered."""

import copy
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import leastconn
from leastconn import Pick, Pool
from leastconn._native import ffi, lib

A, B = "10.0.0.1:80", "10.0.0.2:80"


def test_pool_and_picker_picks_release_through_the_struct_they_were_selected_into():
    with Pool([A, B]) as pool, pool.picker(seed=7) as picker:
        picks = [pool.select(), picker.select(), pool.select(exclude=[]), picker.select()]
        # The library bound each reservation to its struct's address.
        assert all(p._c.check != 0 and p._c.reservation != ffi.NULL for p in picks)
        assert sum(s.in_flight for s in pool.stats()) == 4
        picks[0].release()
        picks[1].release(ok=False)
        with picks[2], picks[3]:
            pass
        assert all(p.released and p._c.reservation == ffi.NULL for p in picks)
        assert sum(s.in_flight for s in pool.stats()) == 0


def test_picks_released_on_other_threads_all_land():
    with Pool([A, B]) as pool:
        picks = [pool.select() for _ in range(50)]
        with ThreadPoolExecutor(4) as ex:
            list(ex.map(lambda p: p.release(), picks))
        assert all(p.released for p in picks)
        assert sum(s.in_flight for s in pool.stats()) == 0
        assert sum(s.picks for s in pool.stats()) == 50


def test_a_shallow_copy_of_a_pick_shares_its_struct():
    with Pool([A]) as pool:
        pick = pool.select()
        twin = copy.copy(pick)
        assert twin._c is pick._c
        twin.release()
        assert pool.host_stats(A).in_flight == 0
        with pytest.raises(leastconn.AlreadyReleasedError):
            pick.release()
        assert pool.host_stats(A).in_flight == 0


def test_a_struct_moved_to_another_address_is_refused_and_changes_nothing():
    # What a binding that copied the C struct between select and release would do.
    with Pool([A], max_fails=1) as pool:
        pick = pool.select()
        moved = Pick(ffi.new("lc_pick *", pick._c[0]))
        with pytest.raises(leastconn.PickMovedError) as info:
            moved.release(ok=False)
        assert info.value.status == lib.LC_ERR_PICK_MOVED == 14
        assert leastconn.status_message(14) in str(info.value)
        assert not moved.released
        stats = pool.host_stats(A)
        assert (stats.in_flight, stats.recent_failures) == (1, 0)
        pick.release()
        assert pool.host_stats(A).in_flight == 0


def test_a_copy_written_back_after_the_release_raises_not_in_flight_and_consumes_the_pick():
    with Pool([A]) as pool:
        pick = pool.select()
        saved = ffi.new("lc_pick *", pick._c[0])
        copy.copy(pick).release()  # the struct is released; this Pick object does not know
        assert not pick.released
        pick._c[0] = saved[0]  # the undetectable case: the bytes back at the original address
        with pytest.raises(leastconn.NotInFlightError) as info:
            pick.release()
        assert info.value.status == lib.LC_ERR_NOT_IN_FLIGHT == 15
        # Consumed: not released again when collected (which would log another error).
        assert pick.released
        # The counter did not wrap below zero.
        assert pool.host_stats(A).in_flight == 0
        with pytest.raises(leastconn.AlreadyReleasedError):
            pick.release()


def test_thread_warmup_is_offered_and_idempotent():
    leastconn.thread_warmup()
    leastconn.thread_warmup()
    with Pool([A, B]) as pool:
        seen = []

        def work(_):
            with pool.select() as pick:
                seen.append(pick.address)

        with ThreadPoolExecutor(3, initializer=leastconn.thread_warmup) as ex:
            list(ex.map(work, range(30)))
        assert len(seen) == 30 and set(seen) <= {A, B}
        assert sum(s.in_flight for s in pool.stats()) == 0
        done = threading.Event()
        t = threading.Thread(target=lambda: (leastconn.thread_warmup(), done.set()))
        t.start()
        t.join()
        assert done.is_set()
