#!/usr/bin/env python3
"""A tiny HTTP backend for the nginx end-to-end test: answers every request after a fixed delay.

Usage: backend.py PORT DELAY_MS NAME [CERT KEY]

Standard library only (asyncio). Speaks enough HTTP/1.x for nginx's proxy module: reads a
request head, ignores any body (the test only sends GETs), waits DELAY_MS without holding the
event loop, and answers 200 with the backend's NAME in the body and in an `X-Backend` header.
Keep-alive is honoured (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
`Connection: keep-alive`), so nginx's upstream `keepalive` can reuse connections.
With CERT and KEY it serves HTTPS and says in `X-TLS-Reused` (0 or 1) whether the client
resumed an earlier TLS session. `X-Peak` tells the most requests it has had in progress at once.

PORT 0 takes a free port; once listening it prints "backend NAME on 127.0.0.1:PORT" (run.sh
waits for that line). Requests whose path contains "/hold" are held, instead of the delay,
until released, so that a test can see where each of a set of concurrent requests landed:
  GET /_held     (sent to the backend directly) answers at once with JSON {"held": [...]}, one
                 {"worker": X-Worker, "run": X-Run} per held request (nginx sets X-Worker to
                 its worker's pid), in arrival order;
  GET /_release  answers each held request, then {"released": N}.
"""

import asyncio
import json
import ssl
import sys

in_progress = 0
peak = 0
held = []  # (record, event) per held request


def header(lines, name):
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name:
            return value.strip()
    return ""


async def serve(reader, writer, delay, name):
    global in_progress, peak
    body = name.encode() + b"\n"
    tls = writer.get_extra_info("ssl_object")
    extra = b"X-TLS-Reused: %d\r\n" % tls.session_reused if tls else b""
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method_path = lines[0].split(" ")
            path = method_path[1] if len(method_path) > 1 else ""
            version = lines[0].rsplit(" ", 1)[-1]
            connection = header(lines, "connection").lower()
            keep = connection == "keep-alive" if version == "HTTP/1.0" else connection != "close"
            if path in ("/_held", "/_release"):
                if path == "/_held":
                    doc = {"held": [record for record, _ in held]}
                else:
                    for _, event in held:
                        event.set()
                    doc = {"released": len(held)}
                    held.clear()
                data = json.dumps(doc).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                             b"Connection: close\r\n\r\n%s" % (len(data), data))
                await writer.drain()
                return
            in_progress += 1
            peak = max(peak, in_progress)
            try:
                if "/hold" in path:
                    event = asyncio.Event()
                    held.append(({"worker": header(lines, "x-worker"), "run": header(lines, "x-run")}, event))
                    await event.wait()
                elif delay > 0:
                    await asyncio.sleep(delay)
            finally:
                in_progress -= 1
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Backend: %s\r\nX-Peak: %d\r\nContent-Length: %d\r\n"
                b"%s%s\r\n%s"
                % (name.encode(), peak, len(body), extra, b"" if keep else b"Connection: close\r\n", body)
            )
            await writer.drain()
            if not keep:
                return
    except ConnectionError:
        return
    finally:
        writer.close()


async def main():
    port, delay_ms, name = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    context = None
    if len(sys.argv) > 5:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[4], sys.argv[5])
    server = await asyncio.start_server(
        lambda r, w: serve(r, w, delay_ms / 1000.0, name),
        "127.0.0.1",
        port,
        backlog=1024,
        reuse_address=True,
        ssl=context,
    )
    port = server.sockets[0].getsockname()[1]
    print(f"backend {name} on 127.0.0.1:{port}, delay {delay_ms} ms", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
