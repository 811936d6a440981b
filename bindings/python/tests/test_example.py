"""End to end: the asyncio reverse proxy example against three local backends."""

import json
import os
import subprocess
import sys

EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "proxy.py")


def run_example(requests, *args):
    """Runs the example with ``--json``; its result, once every request was answered by a
    live backend and the example's own checks found no problem."""
    out = subprocess.run(
        [sys.executable, EXAMPLE, "--requests", str(requests), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout)
    assert result["problems"] == []
    assert sum(result["answers"].values()) == requests
    assert set(result["answers"]) <= {"fast-1", "fast-2", "slow"}
    return result


def test_proxy_example_spreads_requests_and_leaves_nothing_in_flight():
    result = run_example(300, "--concurrency", "6")
    assert result["served"] == result["picks"]
    assert result["in_flight"] == {"fast-1": 0, "fast-2": 0, "slow": 0}
    # The bound the example derives: at most (6 - 1) // 3 + 1 = 2 slow requests at once,
    # each at least 0.1 s long, within the run's measured duration.
    assert result["served"]["slow"] <= 2 * (result["elapsed_s"] / 0.1 + 1) + 2 * 0.001 / 0.1


def test_proxy_example_retries_elsewhere_when_a_backend_refuses():
    # Every request answered by a live backend, whichever the dead one's picks were.
    result = run_example(200, "--dead-backend")
    [dead] = result["dead"].values()
    assert dead["picks"] == dead["failed"] == result["failed"]
    assert dead["in_flight"] == 0
