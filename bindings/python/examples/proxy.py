"""An asyncio reverse proxy that picks its backend with leastconn (standard library only).

It starts three HTTP backends on loopback (two answer at once, one waits ``--slow-delay``
seconds before answering), a proxy in front of them, and a client that sends ``--requests``
requests through the proxy, ``--concurrency`` at a time; then it prints how the requests
spread. Every port is chosen by the kernel (port 0), so runs never collide.

The proxy holds each pick from the select until the backend's whole response has been
relayed, as Caddy does, so the in-flight counts least_conn compares cover whole requests.
A backend that cannot be reached is released as a failure and the request retried with the
hosts already tried excluded; ``--dead-backend`` adds a fourth upstream that refuses every
connection to show it (each of its picks fails, and passive health then keeps it out: at
most one pick per concurrent client before the first failure is recorded).

Why the slow backend's share is bounded, whatever the machine's load: the client never has
more than C requests in flight, and least_conn picks a host only if no other available host
has fewer requests in flight. When the slow backend is picked, the other two hold at least
as many as it does, all within C - 1, so it never holds more than M = (C - 1) // 3 + 1 at
once. Each of its requests lasts at least the delay D (asyncio's sleep never ends early), so
in a run of T seconds it completes at most M * (T / D + 1) requests. The run checks that
bound, and that every request was answered and nothing is left in flight. (A dead upstream
only adds to the others' counts, so the bound holds with it too.)

    python3 examples/proxy.py [--requests 300] [--concurrency 6] [--slow-delay 0.1]
                              [--dead-backend] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from typing import Any, Dict, List, Tuple

import leastconn

# Connection errors that make the proxy try another backend.
RETRYABLE = (ConnectionError, OSError, asyncio.IncompleteReadError)


async def read_message(reader: asyncio.StreamReader) -> Tuple[bytes, bytes]:
    """An HTTP/1.1 request or response: its head and its body (Content-Length only)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head, body


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """A whole HTTP/1.1 response, as raw bytes."""
    head, body = await read_message(reader)
    return head + body


def response(status: str, body: bytes) -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


class Backend:
    """A backend that answers every request with its name, after ``delay`` seconds."""

    def __init__(self, name: str, delay: float) -> None:
        self.name = name
        self.delay = delay
        self.served = 0
        self.server: asyncio.AbstractServer

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_message(reader)
            if self.delay:
                await asyncio.sleep(self.delay)
            self.served += 1
            writer.write(response("200 OK", self.name.encode()))
            await writer.drain()
        finally:
            writer.close()


class Proxy:
    """Relays each request to the backend leastconn picks, retrying elsewhere on errors."""

    def __init__(self, pool: leastconn.Pool, tries: int = 3) -> None:
        self.pool = pool
        self.tries = tries
        self.first_pick = 0.0
        self.last_release = 0.0
        self.failed: Dict[str, int] = {}

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def forward(self, pick: leastconn.Pick, head: bytes, body: bytes) -> bytes:
        if pick.address.startswith("unix/"):
            reader, writer = await asyncio.open_unix_connection(pick.address[len("unix/") :])
        else:
            host, _, port = pick.address.rpartition(":")
            reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(head + body)
            await writer.drain()
            return await read_response(reader)
        finally:
            writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head, body = await read_message(reader)
            tried: List[leastconn.Pick] = []
            answer = response("502 Bad Gateway", b"no backend answered")
            for _ in range(self.tries):
                try:
                    pick = self.pool.select(exclude=tried)
                except leastconn.NoUpstreamError:
                    break
                if not self.first_pick:
                    self.first_pick = time.monotonic()
                tried.append(pick)
                try:
                    # Leaving the block releases the pick: success, or failure on an error.
                    with pick:
                        answer = await self.forward(pick, head, body)
                    break
                except RETRYABLE:
                    self.failed[pick.address] = self.failed.get(pick.address, 0) + 1
                    continue
                finally:
                    self.last_release = time.monotonic()
            writer.write(answer)
            await writer.drain()
        finally:
            writer.close()


async def client(port: int, requests: int, concurrency: int) -> Dict[str, int]:
    """Sends ``requests`` GETs through the proxy, ``concurrency`` at a time; counts answers."""
    answers: Dict[str, int] = {}
    queue = iter(range(requests))

    async def worker() -> None:
        for i in queue:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET /{i} HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            raw = await read_response(reader)
            writer.close()
            status = raw.split(b" ", 2)[1].decode()
            body = raw.partition(b"\r\n\r\n")[2].decode()
            key = body if status == "200" else f"HTTP {status}"
            answers[key] = answers.get(key, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answers


async def run(requests: int, concurrency: int, slow_delay: float, dead: bool) -> Dict[str, Any]:
    backends = [Backend("fast-1", 0.0), Backend("fast-2", 0.0), Backend("slow", slow_delay)]
    addresses = [await b.start() for b in backends]
    upstreams = list(addresses)
    with tempfile.TemporaryDirectory() as tmp:
        if dead:
            # A Unix socket path nobody listens on: every connection to it is refused.
            upstreams.append(f"unix/{tmp}/dead.sock")
        return await run_pool(backends, addresses, upstreams, requests, concurrency, slow_delay)


async def run_pool(
    backends: List[Backend],
    addresses: List[str],
    upstreams: List[str],
    requests: int,
    concurrency: int,
    slow_delay: float,
) -> Dict[str, Any]:
    # One failure keeps a host out for 600 s: longer than any run, so that every failed pick
    # is still counted at the end and a dead upstream is picked at most once per client.
    with leastconn.Pool(upstreams, max_fails=1, fail_duration=600.0) as pool:
        proxy = Proxy(pool)
        port = await proxy.start()
        answers = await client(port, requests, concurrency)
        stats = {s.address: s for s in pool.stats()}
        proxy.server.close()
        for b in backends:
            b.server.close()
    elapsed = proxy.last_release - proxy.first_pick
    most_at_once = (concurrency - 1) // 3 + 1
    slow_bound = most_at_once * (elapsed / slow_delay + 1)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "slow_delay_s": slow_delay,
        "elapsed_s": round(elapsed, 3),
        "answers": answers,
        "served": {b.name: b.served for b in backends},
        "picks": {b.name: stats[a].picks for b, a in zip(backends, addresses)},
        "in_flight": {b.name: stats[a].in_flight for b, a in zip(backends, addresses)},
        "slow_bound": slow_bound,
        "dead": {
            a: {
                "picks": stats[a].picks,
                "failed": proxy.failed.get(a, 0),
                "in_flight": stats[a].in_flight,
                "recent_failures": stats[a].recent_failures,
            }
            for a in upstreams[len(addresses) :]
        },
        "failed": sum(proxy.failed.values()),
    }


def check(result: Dict[str, Any]) -> List[str]:
    """What the run must show on any machine; returns the violations."""
    problems = []
    requests = result["requests"]
    if sum(result["answers"].values()) != requests:
        problems.append(f"{sum(result['answers'].values())} of {requests} requests answered")
    if set(result["answers"]) - {"fast-1", "fast-2", "slow"}:
        problems.append(f"unexpected answers: {result['answers']}")
    answered = {name: result["answers"].get(name, 0) for name in result["served"]}
    if result["served"] != result["picks"] or answered != result["served"]:
        problems.append("picks, backend counts and answers differ")
    if any(result["in_flight"].values()):
        problems.append(f"requests left in flight: {result['in_flight']}")
    if any(d["in_flight"] for d in result["dead"].values()):
        problems.append(f"requests left in flight on the dead backend: {result['dead']}")
    for dead in result["dead"].values():
        if not dead["picks"] == dead["failed"] == dead["recent_failures"]:
            problems.append(f"a pick of the dead backend was not released as failed: {dead}")
        if dead["picks"] > result["concurrency"]:
            problems.append(f"the dead backend was picked after failing: {dead}")
    if result["failed"] != sum(d["failed"] for d in result["dead"].values()):
        problems.append(f"{result['failed']} failed attempts, not all on the dead backend")
    if result["served"]["slow"] > result["slow_bound"]:
        problems.append(f"slow backend served more than the bound {result['slow_bound']:.1f}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--slow-delay", type=float, default=0.1)
    parser.add_argument(
        "--dead-backend",
        action="store_true",
        help="add a fourth upstream that refuses connections (shows retries elsewhere)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    result = asyncio.run(run(args.requests, args.concurrency, args.slow_delay, args.dead_backend))
    problems = check(result)
    if args.json:
        print(json.dumps({**result, "problems": problems}))
    else:
        print(
            f"{result['requests']} requests, {result['concurrency']} at a time, "
            f"in {result['elapsed_s']} s; the slow backend waits {result['slow_delay_s']} s"
        )
        for name, count in result["served"].items():
            share = 100 * count / result["requests"]
            print(f"  {name:7} {count:5} requests ({share:5.1f} %)")
        for dead in result["dead"].values():
            print(f"  dead    {dead['picks']:5} picks, each failed and retried elsewhere")
        print(
            f"  slow backend bound: {result['slow_bound']:.1f} requests; "
            f"left in flight: {sum(result['in_flight'].values())}"
        )
        for problem in problems:
            print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
