"""Shared zones: pools of one name share counts, exact limits across os.fork()ed processes,
a SIGKILLed child's picks returned by Zone.sweep(), picker releases, refusals. The steps of
the processes are ordered by pipes; nothing sleeps."""

import gc
import os
import signal
import threading
import weakref

import pytest

import leastconn
from leastconn import Callback, Pool, SweepReport, Upstream, Zone, ZoneCapacity
from leastconn._native import lib

A = "10.0.0.1:80"
# A ring of 2 (max_fails 3 is refused); room for a few processes' threads and pickers.
CAPS = ZoneCapacity(hosts=8, address_bytes=64, fail_ring=2, processes=4, threads=16)


def in_flight(pool):
    return pool.host_stats(A).in_flight


def zone_pool(zone, name="app", max_requests=0, **kwargs):
    return Pool([Upstream(A, max_requests=max_requests)], zone=zone, name=name, **kwargs)


def put(fd, byte):
    assert os.write(fd, byte) == 1


def get(fd, want):
    assert os.read(fd, 1) == want


def fork(child, child_ends, parent_ends):
    """Runs ``child()`` in a forked process, which exits 0 when it returns and 1 when it
    raises (never running the parent's pytest machinery); returns its pid. Each process
    closes the other's pipe ends first, so that a read sees the end of file when the other
    process is gone rather than waiting forever."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for fd in parent_ends:
                os.close(fd)
            child()
            code = 0
        finally:
            os._exit(code)
    for fd in child_ends:
        os.close(fd)
    return pid


def check_exit(pid):
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status:#x}"


@pytest.fixture
def zone():
    with Zone.anonymous(CAPS) as z:
        yield z


def test_two_pools_of_one_name_share_counts_and_another_name_does_not(zone):
    with zone_pool(zone) as a, zone_pool(zone) as b, zone_pool(zone, "other") as other:
        p1 = a.select()
        p2 = b.select()
        assert (in_flight(a), in_flight(b), in_flight(other)) == (2, 2, 0)
        p3 = other.select()
        assert (in_flight(a), in_flight(b), in_flight(other)) == (2, 2, 1)
        b.set_down(A)
        assert a.host_stats(A).down and not other.host_stats(A).down
        with pytest.raises(leastconn.NoUpstreamError):
            a.select()
        b.set_down(A, False)
        p1.release()
        assert (in_flight(a), in_flight(b)) == (1, 1)
        p2.release()
        p3.release()
        assert (in_flight(a), in_flight(b), in_flight(other)) == (0, 0, 0)


def test_max_requests_1_holds_across_a_parent_and_a_forked_child(zone):
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()

    def child():
        with zone_pool(zone, max_requests=1) as pool, pool.picker(seed=1) as picker:
            pick = picker.select()
            assert (pick.address, in_flight(pool)) == (A, 1)
            put(to_parent_w, b"h")  # held
            get(to_child_r, b"g")  # the parent was refused
            picker.release(pick)
            assert in_flight(pool) == 0
            put(to_parent_w, b"r")  # released
            get(to_child_r, b"x")  # the parent is done

    pid = fork(child, (to_child_r, to_parent_w), (to_child_w, to_parent_r))
    try:
        get(to_parent_r, b"h")
        with zone_pool(zone, max_requests=1) as pool:
            assert in_flight(pool) == 1  # the child's request, seen here
            assert pool.host_stats(A).full
            with pytest.raises(leastconn.NoUpstreamError):
                pool.select()
            put(to_child_w, b"g")
            get(to_parent_r, b"r")
            assert in_flight(pool) == 0
            with pool.select():
                assert in_flight(pool) == 1
                with pytest.raises(leastconn.NoUpstreamError):
                    pool.select()
            assert in_flight(pool) == 0
    finally:
        put(to_child_w, b"x")
        check_exit(pid)
        for fd in (to_child_w, to_parent_r):
            os.close(fd)


def test_sigkilled_child_holding_two_picks_is_swept_exactly(zone):
    to_parent_r, to_parent_w = os.pipe()
    block_r, block_w = os.pipe()

    def child():
        pool = zone_pool(zone)
        held = [pool.select(), pool.select()]
        put(to_parent_w, b"h")
        os.read(block_r, 1)  # blocked outside any pick until the parent's SIGKILL
        raise AssertionError(f"not killed while holding {held}")

    pid = fork(child, (to_parent_w, block_r), (to_parent_r, block_w))
    try:
        get(to_parent_r, b"h")
        with zone_pool(zone) as pool:
            pick = pool.select()
            assert in_flight(pool) == 3
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            pid = None
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            assert in_flight(pool) == 3  # nothing returned before a sweep
            assert zone.sweep() == SweepReport(processes=1, recovered=2, in_doubt=0)
            assert in_flight(pool) == 1
            assert zone.sweep() == SweepReport(processes=0, recovered=0, in_doubt=0)
            pick.release()
            assert in_flight(pool) == 0
    finally:
        if pid is not None:  # a failure above left it running
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        for fd in (to_parent_r, block_w):
            os.close(fd)


def test_a_zone_file_is_shared_by_path_with_its_capacities(tmp_path):
    path = tmp_path / "zone"
    to_parent_r, to_parent_w = os.pipe()
    to_child_r, to_child_w = os.pipe()
    with Zone.open(path, CAPS) as first:
        assert first.capacity == CAPS
        assert first.size == CAPS.size == os.path.getsize(path)

        def child():
            # Its own handle, opened by path: another process's view of one zone.
            with Zone.open(str(path), CAPS) as z, zone_pool(z) as pool:
                pick = pool.select()
                put(to_parent_w, b"%d" % (z.creation_id % 10))
                get(to_child_r, b"x")
                pick.release(ok=False)
            put(to_parent_w, b"r")

        pid = fork(child, (to_parent_w, to_child_r), (to_parent_r, to_child_w))
        try:
            assert os.read(to_parent_r, 1) == b"%d" % (first.creation_id % 10)
            with zone_pool(first) as pool:
                assert in_flight(pool) == 1
                put(to_child_w, b"x")
                get(to_parent_r, b"r")
                stats = pool.host_stats(A)
                assert (stats.in_flight, stats.recent_failures) == (0, 1)
        finally:
            os.close(to_child_w)  # the child is not left waiting when a check above failed
            check_exit(pid)
            os.close(to_parent_r)
        with Zone.open(os.fsencode(path), CAPS) as again:
            assert again.creation_id == first.creation_id
    assert path.exists()  # closing leaves the file


def test_picker_release_of_zone_picks_and_its_refusals(zone):
    # max_fails 2: the one failure released below leaves the host available.
    with zone_pool(zone, max_fails=2) as pool, pool.picker(seed=3) as picker, Pool([A]) as heap:
        mine = picker.select()
        pooled = pool.select()
        other = heap.select()
        assert in_flight(pool) == 2
        picker.release(mine)
        assert mine.released and in_flight(pool) == 1
        with pytest.raises(leastconn.AlreadyReleasedError) as info:
            picker.release(mine)
        assert info.value.status == lib.LC_ERR_ALREADY_RELEASED
        picker.release(pooled, ok=False)  # a pool's pick, through the picker
        picker.release(other)  # a heap pool's pick
        stats = pool.host_stats(A)
        assert (stats.in_flight, stats.recent_failures, in_flight(heap)) == (0, 1, 0)
        with pytest.raises(TypeError):
            picker.release(mine.host_id)
        again = picker.select()
        errors = []

        def elsewhere():
            try:
                picker.release(again)
            except leastconn.InvalidArgumentError as exc:
                errors.append(exc)

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
        assert len(errors) == 1 and in_flight(pool) == 1
        again.release()
    with pytest.raises(leastconn.ClosedError):
        picker.release(again)


def test_zone_capacity_sizes_and_fit():
    default = ZoneCapacity()
    caps = leastconn._native.ffi.new("lc_zone_capacity *")
    lib.lc_zone_capacity_default(caps)
    assert (default.hosts, default.address_bytes, default.fail_ring) == (
        caps.hosts,
        caps.address_bytes,
        caps.fail_ring,
    )
    assert CAPS.size < default.size
    fitted = ZoneCapacity.fit(CAPS.size, address_bytes=64, fail_ring=2, processes=4, threads=16)
    assert fitted == CAPS.__class__(**{**CAPS.__dict__, "hosts": fitted.hosts})
    assert fitted.hosts >= CAPS.hosts and fitted.size <= CAPS.size
    assert ZoneCapacity.fit(fitted.size + 1, address_bytes=64, fail_ring=2, processes=4,
                            threads=16).hosts == fitted.hosts


def test_zone_is_a_context_manager_and_pools_outlive_it():
    with Zone.anonymous(CAPS) as z:
        pool = zone_pool(z)
        assert repr(z).startswith("<leastconn.Zone ")
    assert z.closed and repr(z) == "<leastconn.Zone closed>"
    z.close()
    for call in (z.sweep, lambda: z.capacity, lambda: z.size, lambda: z.creation_id):
        with pytest.raises(leastconn.ClosedError):
            call()
    with pytest.raises(leastconn.ClosedError):
        zone_pool(z)
    with pool.select():  # the pool keeps the zone's memory
        assert in_flight(pool) == 1
    pool.close()


@pytest.mark.parametrize(
    "capacity, error",
    [
        (ZoneCapacity(hosts=0), leastconn.InvalidLimitError),
        (ZoneCapacity(hosts=1 << 30), leastconn.InvalidLimitError),
        (ZoneCapacity(address_bytes=4096), leastconn.InvalidLimitError),
        (ZoneCapacity(fail_ring=0), leastconn.InvalidLimitError),
        (ZoneCapacity(processes=0), leastconn.InvalidLimitError),
        (ZoneCapacity(threads=-1), leastconn.InvalidLimitError),
        (ZoneCapacity(threads=1 << 32), leastconn.InvalidLimitError),
    ],
)
def test_bad_capacities_are_refused(capacity, error, tmp_path):
    with pytest.raises(error) as info:
        capacity.size
    with pytest.raises(error):
        Zone.anonymous(capacity)
    with pytest.raises(error):
        Zone.open(tmp_path / "zone", capacity)
    assert not (tmp_path / "zone").exists()
    assert info.value.status is None or info.value.status == lib.LC_ERR_INVALID_LIMIT


def test_too_small_is_refused(tmp_path):
    with pytest.raises(leastconn.ZoneTooSmallError) as info:
        ZoneCapacity.fit(64)
    assert info.value.status == lib.LC_ERR_ZONE_TOO_SMALL
    path = tmp_path / "zone"
    Zone.open(path, CAPS).close()
    os.truncate(path, CAPS.size // 2)
    with pytest.raises(leastconn.ZoneTooSmallError) as info:
        Zone.open(path, CAPS)
    assert info.value.status == lib.LC_ERR_ZONE_TOO_SMALL


def test_other_capacities_and_files_are_refused(tmp_path):
    path = tmp_path / "zone"
    Zone.open(path, CAPS).close()
    with pytest.raises(leastconn.ZoneIncompatibleError) as info:
        Zone.open(path, ZoneCapacity(hosts=9, address_bytes=64, fail_ring=2, processes=4,
                                     threads=16))
    assert info.value.status == lib.LC_ERR_ZONE_INCOMPATIBLE
    junk = tmp_path / "junk"
    junk.write_bytes(b"\1" * CAPS.size)
    with pytest.raises(leastconn.ZoneIncompatibleError):
        Zone.open(junk, CAPS)
    with pytest.raises(leastconn.OsError):
        Zone.open(tmp_path / "missing" / "zone", CAPS)
    with pytest.raises(leastconn.InvalidArgumentError):
        Zone.open("", CAPS)
    with pytest.raises(leastconn.InvalidArgumentError):
        Zone.open("a\0b", CAPS)
    with pytest.raises(TypeError):
        Zone.open(path, {"hosts": 8})
    with pytest.raises(TypeError):
        Zone()


def test_bad_names_and_configurations_are_refused(zone):
    cases = [
        (dict(zone=zone, name="a\0b"), leastconn.InvalidArgumentError),
        (dict(zone=zone, name="\udc80"), leastconn.InvalidUtf8Error),
        (dict(zone=zone), leastconn.InvalidArgumentError),
        (dict(name="app"), leastconn.InvalidArgumentError),
        (dict(zone=zone, name="app", max_fails=3), leastconn.ZoneIncompatibleError),
    ]
    for kwargs, error in cases:
        with pytest.raises(error):
            Pool([A], **kwargs)
    with pytest.raises(TypeError):
        Pool([A], zone="zone", name="app")
    with pytest.raises(TypeError):
        Pool([A], zone=zone, name=b"app")
    # The ring's own size fits.
    Pool([A], zone=zone, name="app", max_fails=2).close()


def test_a_name_too_long_for_the_zone_fails_the_refresh_and_keeps_the_list(zone):
    # name NUL address: one byte more than the zone's address_bytes.
    long_name = "n" * (CAPS.address_bytes - len(A))
    with Pool([A], zone=zone, name=long_name) as pool:
        assert pool.stats() == []
        with pytest.raises(leastconn.LeastconnError) as info:
            pool.refresh()
        assert info.value.status == lib.LC_ERR_ZONE_INCOMPATIBLE
    with Pool([A], zone=zone, name=long_name[1:]) as pool:
        assert [s.address for s in pool.stats()] == [A]


@pytest.mark.parametrize("refusal", ["closed zone", "NUL in the name", "max_fails"])
def test_a_refused_zone_pool_frees_its_source(refusal):
    class Fn:
        def __call__(self):
            return [A]

    fn = Fn()
    ref = weakref.ref(fn)
    z = Zone.anonymous(CAPS)
    name, kwargs = "app", {}
    if refusal == "closed zone":
        z.close()
    elif refusal == "NUL in the name":
        name = "a\0b"
    else:
        kwargs["max_fails"] = CAPS.fail_ring + 1
    with pytest.raises(leastconn.LeastconnError):
        Pool(Callback(fn), zone=z, name=name, **kwargs)
    del fn
    gc.collect()
    assert ref() is None  # the library dropped the source (its callback) on the refusal
    z.close()
