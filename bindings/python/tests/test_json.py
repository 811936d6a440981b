"""Caddy JSON: Pool.from_json (a reverse_proxy handler) and the Json source."""

import json
import logging

import pytest

import leastconn
from leastconn import Json, Multi, Pool, Static
from leastconn._native import lib

A, B = "10.0.0.1:8080", "10.0.0.2:8080"

HANDLER = {
    "handler": "reverse_proxy",
    "upstreams": [{"dial": A, "max_requests": 1}, {"dial": B, "weight": 3}],
    "load_balancing": {"selection_policy": {"policy": "first"}, "retries": 2},
    "health_checks": {"passive": {"fail_duration": "30s", "max_fails": 2}},
    "transport": {"protocol": "http"},
}


def addresses(pool):
    return [s.address for s in pool.stats()]


@pytest.mark.parametrize("form", [json.dumps, lambda h: json.dumps(h).encode(), lambda h: h])
def test_a_handler_loads_with_its_policy_limits_and_passive_health(form):
    with Pool.from_json(form(HANDLER)) as pool:
        assert addresses(pool) == [A, B]
        # `first`: A while it is available; its max_requests of 1 sends the next one to B.
        first = pool.select()
        second = pool.select()
        assert (first.address, second.address) == (A, B)
        first.release()
        second.release()
        assert pool.host_stats(A).max_requests == 1
        # max_fails 2 within 30 s: one failure leaves A available, the second does not.
        pool.select().release(ok=False)
        assert not pool.host_stats(A).unhealthy
        pool.select().release(ok=False)
        assert pool.host_stats(A).unhealthy
        with pool.select() as pick:
            assert pick.address == B


def test_a_handler_with_a_refresh_interval_starts_the_refresher():
    with Pool.from_json(json.dumps(HANDLER), refresh_interval=3600.0) as pool:
        # The refresher's first refresh may or may not have run yet: no generation asserted.
        assert pool.refresh().upstreams == 2
        assert addresses(pool) == [A, B]


MALFORMED = [
    ('{"upstreams":[{"dial":"h:1"}],"circuit_breaker":{}}', "circuit_breaker: unknown field"),
    ('{"upstreams":[{"dial":"h:1","weight":0}]}', "upstreams[0].weight: 0 is outside 1..=1000000"),
    (
        json.dumps(
            {
                "dynamic_upstreams": {
                    "source": "multi",
                    "sources": [
                        {"source": "a", "name": "10.0.0.1"},
                        {"source": "a", "name": "10.0.0.2", "port": 8080},
                    ],
                }
            }
        ),
        "dynamic_upstreams.sources[1].port: expected a string",
    ),
    ("[]", "expected an object"),
    ("{", None),
]


@pytest.mark.parametrize("text, message", MALFORMED)
def test_a_malformed_handler_raises_invalid_config_with_the_json_path(text, message):
    with pytest.raises(leastconn.InvalidConfigError) as info:
        Pool.from_json(text)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.status == lib.LC_ERR_INVALID_CONFIG == 16
    prefix = f"pool from JSON: {leastconn.status_message(16)} (status 16): "
    assert str(err).startswith(prefix), str(err)
    detail = str(err)[len(prefix) :]
    if message is not None:
        assert detail == message
    else:
        assert detail  # a syntax error: the library's text, whatever the parser says


def test_bad_arguments_to_from_json_raise_before_the_library():
    with pytest.raises(TypeError):
        Pool.from_json(42)
    with pytest.raises(leastconn.InvalidUtf8Error):
        Pool.from_json(b'{"upstreams":[{"dial":"\xff:1"}]}')
    with pytest.raises(leastconn.InvalidArgumentError):
        Pool.from_json('{"upstreams":[{"dial":"h:1"}]}\0')
    with pytest.raises(leastconn.InvalidLimitError):
        Pool.from_json(json.dumps(HANDLER), refresh_interval=0)


def test_the_json_source_feeds_a_multi():
    static_json = {"source": "static", "upstreams": [{"dial": B}]}
    with Pool(Multi(Static([A]), Json(static_json)), policy=leastconn.Policy.FIRST) as pool:
        assert addresses(pool) == [A, B]
        with Pool(Json(json.dumps(static_json))) as other:
            assert addresses(other) == [B]


def test_a_malformed_json_source_raises_invalid_config_with_the_json_path():
    bad = {"source": "etcd", "endpoints": [5], "key": "/services/api/"}
    with pytest.raises(leastconn.InvalidConfigError) as info:
        Pool(Multi(Static([A]), Json(bad)))
    assert str(info.value).endswith(": endpoints[0]: expected a string"), str(info.value)
    assert info.value.status == lib.LC_ERR_INVALID_CONFIG


def test_an_etcd_json_source_with_no_server_is_skipped_in_a_multi(caplog, closed_port):
    etcd = {
        "source": "etcd",
        "endpoints": [f"http://127.0.0.1:{closed_port}"],
        "key": "/services/api/",
        "timeout": "2s",
    }
    with caplog.at_level(logging.ERROR, logger="leastconn"):
        pool = Pool(Multi(Static([A]), Json(etcd)))
    with pool:
        assert addresses(pool) == [A]
        with pool.select() as pick:
            assert pick.address == A
    failed = [
        r.getMessage() for r in caplog.records if "multi: source 1 failed: " in r.getMessage()
    ]
    assert len(failed) == 1 and "etcd" in failed[0], caplog.text
