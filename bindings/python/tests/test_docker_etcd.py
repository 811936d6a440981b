"""The docker and etcd sources: defaults, every error path, and a multi that skips them
while their server is absent. No daemon or etcd is needed; the Rust suite (tests/docker.rs,
tests/etcd.rs) runs them against real Podman and etcd."""

import logging

import pytest

import leastconn
from leastconn import Docker, Etcd, Grace, Multi, Pool, Static, Upstream
from leastconn._native import ffi, lib

A = "10.0.0.1:8080"


def test_docker_defaults_are_the_librarys():
    c = ffi.new("lc_docker_config *")
    assert lib.lc_docker_config_default(c) == lib.LC_OK
    d = Docker()
    assert (d.host, d.port, dict(d.labels)) == (None, 0, {})
    assert (round(d.refresh * 1000), round(d.timeout * 1000)) == (c.refresh_ms, c.timeout_ms)
    assert (d.weight, d.max_requests, d.tier, d.tag) == (
        c.weight,
        c.max_requests,
        c.tier,
        int(ffi.cast("uintptr_t", c.tag)),
    )


def test_etcd_defaults_are_the_librarys():
    e = Etcd(["http://10.0.0.5:2379"], "/services/api/")
    assert (e.version_key, e.timeout, e.resync) == (None, 5.0, 300.0)
    assert (e.weight, e.max_requests, e.tier, e.tag) == (1, 0, 0, 0)


def build(source):
    """Builds the C source and frees it: the constructor's checks, nothing contacted."""
    ptr = source._build()
    assert ptr != ffi.NULL
    lib.lc_source_free(ptr)


@pytest.mark.parametrize(
    "source",
    [
        Docker(),
        Docker(host="unix:///nonexistent-leastconn-test/docker.sock", port=8080),
        Docker(labels={"com.example.role": ["web", "api"], "tier": "front", "any": None}),
        Docker(labels={"any": []}, refresh=0.5, timeout=0.25),
        Docker(weight=leastconn.MAX_WEIGHT, max_requests=7, tier=2, tag=9),
        Etcd(["http://10.0.0.5:2379", "http://10.0.0.6", "10.0.0.7:2379"], "/services/api/"),
        Etcd(("http://[::1]:2379",), "/p/", version_key="/v", timeout=0.5, resync=1.0),
        Etcd(["http://10.0.0.5:2379"], "/p/", weight=2, max_requests=3, tier=1, tag=4),
    ],
)
def test_valid_configurations_build(source, monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    build(source)


@pytest.mark.parametrize(
    "source, error",
    [
        (Docker(host="tcp://10.0.0.1:2375"), leastconn.InvalidArgumentError),
        (Docker(host="ssh://host"), leastconn.InvalidArgumentError),
        (Docker(host="unix:///a\0b"), leastconn.InvalidArgumentError),
        (Docker(host="unix:///\udc80"), leastconn.InvalidUtf8Error),
        (Docker(host=5), TypeError),
        (Docker(port=65536), leastconn.InvalidAddressError),
        (Docker(port=-1), leastconn.InvalidAddressError),
        (Docker(port="80"), TypeError),
        (Docker(labels=[("k", "v")]), TypeError),
        (Docker(labels={"k": "v\0"}), leastconn.InvalidArgumentError),
        (Docker(labels={"\udc80": None}), leastconn.InvalidUtf8Error),
        (Docker(labels={5: None}), TypeError),
        (Docker(labels={"k": b"v"}), TypeError),
        (Docker(labels={"k": [5]}), TypeError),
        (Docker(refresh=0), leastconn.InvalidLimitError),
        (Docker(refresh=366 * 86400), leastconn.InvalidLimitError),
        (Docker(timeout=0), leastconn.InvalidLimitError),
        (Docker(timeout=-1), leastconn.InvalidLimitError),
        (Docker(timeout="5"), TypeError),
        (Docker(weight=0), leastconn.InvalidWeightError),
        (Docker(weight=leastconn.MAX_WEIGHT + 1), leastconn.InvalidWeightError),
        (Docker(max_requests=leastconn.MAX_REQUESTS + 1), leastconn.InvalidLimitError),
        (Docker(tier=leastconn.MAX_TIER + 1), leastconn.InvalidLimitError),
        (Docker(tag=-1), leastconn.InvalidArgumentError),
        (Etcd([], "/p/"), leastconn.InvalidArgumentError),
        (Etcd("http://10.0.0.5:2379", "/p/"), TypeError),
        (Etcd(["https://10.0.0.5:2379"], "/p/"), leastconn.InvalidArgumentError),
        (Etcd(["http://10.0.0.5:2379/v3"], "/p/"), leastconn.InvalidArgumentError),
        (Etcd(["http://user@10.0.0.5:2379"], "/p/"), leastconn.InvalidArgumentError),
        (Etcd(["http://"], "/p/"), leastconn.InvalidArgumentError),
        (Etcd(["http://h\0"], "/p/"), leastconn.InvalidArgumentError),
        (Etcd(["http://\udc80"], "/p/"), leastconn.InvalidUtf8Error),
        (Etcd([5], "/p/"), TypeError),
        (Etcd(["http://10.0.0.5:2379"], None), TypeError),
        (Etcd(["http://10.0.0.5:2379"], "/p/\udc80"), leastconn.InvalidUtf8Error),
        (Etcd(["http://10.0.0.5:2379"], "/p/", version_key="\udc80"), leastconn.InvalidUtf8Error),
        (Etcd(["http://10.0.0.5:2379"], "/p/", timeout=0), leastconn.InvalidLimitError),
        (Etcd(["http://10.0.0.5:2379"], "/p/", timeout=0.0001), leastconn.InvalidLimitError),
        (Etcd(["http://10.0.0.5:2379"], "/p/", resync=0), leastconn.InvalidLimitError),
        (Etcd(["http://10.0.0.5:2379"], "/p/", resync=-1.0), leastconn.InvalidLimitError),
        (Etcd(["http://10.0.0.5:2379"], "/p/", weight=0), leastconn.InvalidWeightError),
        (
            Etcd(["http://10.0.0.5:2379"], "/p/", max_requests=leastconn.MAX_REQUESTS + 1),
            leastconn.InvalidLimitError,
        ),
        (
            Etcd(["http://10.0.0.5:2379"], "/p/", tier=leastconn.MAX_TIER + 1),
            leastconn.InvalidLimitError,
        ),
        (Etcd(["http://10.0.0.5:2379"], "/p/", tag=2**64), leastconn.InvalidArgumentError),
    ],
)
def test_invalid_configurations_raise(source, error, monkeypatch):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with pytest.raises(error) as info:
        build(source)  # not a pool: a config wrongly accepted must not contact anything
    if issubclass(error, leastconn.LeastconnError):
        assert isinstance(info.value, ValueError)
        if info.value.status is not None:
            assert leastconn.status_message(info.value.status) in str(info.value)


def test_docker_without_host_reads_docker_host_when_built(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2375")
    with pytest.raises(leastconn.InvalidArgumentError) as info:
        Pool(Docker())
    assert info.value.status == lib.LC_ERR_INVALID_ARGUMENT
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent-leastconn-test/docker.sock")
    build(Docker())
    # An explicit host wins over DOCKER_HOST.
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.1:2375")
    build(Docker(host="unix:///nonexistent-leastconn-test/docker.sock"))


def failures(caplog):
    return [r.getMessage() for r in caplog.records if "multi: source 1 failed: " in r.getMessage()]


def test_a_multi_skips_a_docker_source_whose_daemon_is_absent(caplog, tmp_path):
    socket_path = tmp_path / "absent.sock"
    docker = Docker(host=f"unix://{socket_path}", labels={"com.example.role": "web"})
    with caplog.at_level(logging.ERROR, logger="leastconn"):
        pool = Pool(Multi(Static([A]), docker))  # the first refresh runs here
    with pool:
        assert [s.address for s in pool.stats()] == [A]
        with pool.select() as pick:
            assert pick.address == A
        (message,) = failures(caplog)
        # "cannot connect: ..." or, on a very slow machine, "no listing yet": both name it.
        assert message.startswith(
            f"multi: source 1 failed: docker daemon at {socket_path}: "
        ), message
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="leastconn"):
            assert pool.refresh().upstreams == 1
        assert len(failures(caplog)) == 1, caplog.text


def test_a_multi_skips_an_etcd_source_whose_server_is_absent(caplog, closed_port):
    etcd = Etcd([f"http://127.0.0.1:{closed_port}"], "/services/api/", timeout=2.0)
    with caplog.at_level(logging.ERROR, logger="leastconn"):
        pool = Pool(Multi(Static([A, Upstream("10.0.0.2:8080", tier=1)]), etcd))
    with pool:
        assert [s.address for s in pool.stats()] == [A, "10.0.0.2:8080"]
        with pool.select() as pick:
            assert pick.address == A
        (message,) = failures(caplog)
        # The connection error, or "no answer from etcd within 2s" on a very slow machine.
        assert "etcd" in message, message


def test_alone_an_absent_source_fails_the_refresh_and_grace_needs_a_good_list(
    tmp_path, closed_port
):
    absent = [
        Docker(host=f"unix://{tmp_path / 'absent.sock'}"),
        Etcd([f"http://127.0.0.1:{closed_port}"], "/p/", timeout=2.0),
    ]
    for source in absent + [Grace(s, 30.0) for s in absent]:
        with Pool(source) as pool:
            assert pool.stats() == []
            with pytest.raises(leastconn.SourceFailedError):
                pool.refresh()
            with pytest.raises(leastconn.NoUpstreamError):
                pool.select()
