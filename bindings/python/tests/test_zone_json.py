"""Pools from Caddy JSON on a shared zone: Pool.from_json(..., zone=, name=) shares host state
with the zone's other pools of the same name, built from JSON or not, in this process and in
an os.fork()ed child (the steps ordered by pipes; nothing sleeps), and its refusals raise the
zone's typed errors with the library's message."""

import os

import pytest

import leastconn
from leastconn import Pool, Upstream, Zone, ZoneCapacity

from test_zone import CAPS, check_exit, fork, get, in_flight, put

A = "10.0.0.1:80"
HANDLER = {
    "handler": "reverse_proxy",
    "upstreams": [{"dial": A, "max_requests": 3}],
    "load_balancing": {"selection_policy": {"policy": "least_conn"}},
    "health_checks": {"passive": {"fail_duration": "10s", "max_fails": 2}},
}


@pytest.fixture
def zone():
    with Zone.anonymous(CAPS) as z:
        yield z


def test_json_pool_shares_counts_with_a_constructed_pool_of_its_name(zone):
    with Pool.from_json(HANDLER, zone=zone, name="app") as json_pool, Pool(
        [Upstream(A, max_requests=3)], zone=zone, name="app"
    ) as built, Pool.from_json(HANDLER, zone=zone, name="other") as other:
        picks = [json_pool.select(), built.select(), json_pool.select()]
        assert (in_flight(json_pool), in_flight(built), in_flight(other)) == (3, 3, 0)
        # The document's max_requests 3, reached by both pools' picks together.
        assert json_pool.host_stats(A).full
        with pytest.raises(leastconn.NoUpstreamError):
            json_pool.select()
        with other.select():
            assert (in_flight(other), in_flight(json_pool)) == (1, 3)
        for pick in picks:
            pick.release()
        assert (in_flight(json_pool), in_flight(built), in_flight(other)) == (0, 0, 0)


def test_json_pools_share_counts_and_max_requests_across_a_fork(zone):
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()

    def child():
        with Pool.from_json(HANDLER, zone=zone, name="app") as pool:
            held = [pool.select(), pool.select()]
            assert in_flight(pool) == 2
            put(to_parent_w, b"h")  # held
            get(to_child_r, b"g")  # the parent holds the third and was refused a fourth
            assert in_flight(pool) == 3
            for pick in held:
                pick.release()
            assert in_flight(pool) == 1
            put(to_parent_w, b"r")  # released

    pid = fork(child, (to_child_r, to_parent_w), (to_child_w, to_parent_r))
    try:
        get(to_parent_r, b"h")
        with Pool.from_json(HANDLER, zone=zone, name="app") as pool:
            assert in_flight(pool) == 2  # the child's requests, seen here
            with pool.select():
                assert in_flight(pool) == 3
                with pytest.raises(leastconn.NoUpstreamError):
                    pool.select()
                put(to_child_w, b"g")
                get(to_parent_r, b"r")
                assert in_flight(pool) == 1
            assert in_flight(pool) == 0
    finally:
        # The child's read ends at the end of file should a check here fail before "g".
        os.close(to_child_w)
        check_exit(pid)
        os.close(to_parent_r)


def test_json_pool_refusals_raise_the_zone_errors(zone):
    max_fails_3 = {
        "upstreams": [{"dial": A}],
        "health_checks": {"passive": {"fail_duration": "10s", "max_fails": 3}},
    }
    with pytest.raises(leastconn.ZoneIncompatibleError) as info:
        Pool.from_json(max_fails_3, zone=zone, name="app")
    assert str(info.value).endswith("max_fails 3 is above the zone's fail_ring 2")
    with pytest.raises(leastconn.InvalidConfigError) as config_info:
        Pool.from_json({"upstreams": [{"dial": A, "colour": 1}]}, zone=zone, name="app")
    assert str(config_info.value).endswith("upstreams[0].colour: unknown field")
    cases = [
        (dict(zone=zone, name="a\0b"), leastconn.InvalidArgumentError),
        (dict(zone=zone, name="\udc80"), leastconn.InvalidUtf8Error),
        (dict(zone=zone), leastconn.InvalidArgumentError),
        (dict(name="app"), leastconn.InvalidArgumentError),
    ]
    for kwargs, error in cases:
        with pytest.raises(error):
            Pool.from_json(HANDLER, **kwargs)
    with pytest.raises(TypeError):
        Pool.from_json(HANDLER, zone="zone", name="app")
    with pytest.raises(TypeError):
        Pool.from_json(HANDLER, zone=zone, name=b"app")
    closed = Zone.anonymous(CAPS)
    closed.close()
    with pytest.raises(leastconn.ClosedError):
        Pool.from_json(HANDLER, zone=closed, name="app")
    # The ring's own size fits; the pool outlives its zone handle.
    with Pool.from_json(HANDLER, zone=zone, name="app") as pool:
        assert [s.address for s in pool.stats()] == [A]


def test_json_pool_on_a_full_zone_raises_zone_full():
    one = ZoneCapacity(hosts=8, address_bytes=64, fail_ring=2, processes=1, threads=16)
    with Zone.anonymous(one) as z, Pool.from_json(HANDLER, zone=z, name="app"):
        # This process holds the only process record; a forked child cannot register.
        def child():
            with pytest.raises(leastconn.ZoneFullError):
                Pool.from_json(HANDLER, zone=z, name="app")

        pid = fork(child, (), ())
        check_exit(pid)
