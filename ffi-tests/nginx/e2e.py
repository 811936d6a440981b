#!/usr/bin/env python3
"""Helpers for run.sh: read leastconn_status from every nginx worker, and check the runs.

  e2e.py status PORT WORKERS OUT.json [--idle SECONDS]
      Collects the status JSON of WORKERS distinct workers (fresh connections to a
      `reuseport` listener land on different workers) into OUT.json, keyed by pid. With
      --idle, polls until every host of every worker shows zero in flight, or fails after
      SECONDS.

  e2e.py tls PORT N OUT.json
      Sends N requests, each on a new connection, to /tls (proxied over TLS without
      keep-alive, so every one is a new TLS connection to the backend) and records the
      statuses and whether the backend saw a resumed session.

  e2e.py capped PORT N OUT.json PATH
      Sends N requests at once (one thread each) to PATH (/capped: a slow backend with
      max_conns=1 and a fast one; /uncapped: the same without max_conns) and records each
      response's backend and the slow backend's peak concurrency.

  e2e.py report DIR
      Reads DIR/test.json (written by run.sh), the wrk outputs, the access log, the status
      snapshots and the error log; prints the result table; exits 1 if any check fails.

Standard library only.
"""

import http.client
import json
import re
import statistics
import sys
import threading
import time


def fetch_status(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/leastconn_status", headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"status page answered {resp.status}")
        return json.loads(body)
    finally:
        conn.close()


def collect(port, workers, attempts=400):
    seen = {}
    for _ in range(attempts):
        doc = fetch_status(port)
        seen[doc["pid"]] = doc
        if len(seen) >= workers:
            return seen
    raise RuntimeError(f"saw only {len(seen)} of {workers} workers in {attempts} status requests")


def in_flight(snapshot):
    return sum(h["in_flight"] for doc in snapshot.values() for u in doc["upstreams"] for h in u["hosts"])


def cmd_status(args):
    port, workers, out = int(args[0]), int(args[1]), args[2]
    idle = float(args[4]) if len(args) > 4 and args[3] == "--idle" else None
    deadline = time.monotonic() + (idle or 0)
    while True:
        snapshot = collect(port, workers)
        # Poll with a deadline: requests cut off by wrk's end finish on their own schedule.
        if idle is None or in_flight(snapshot) == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    with open(out, "w") as f:
        json.dump(snapshot, f, indent=1, sort_keys=True)
    if idle is not None and in_flight(snapshot) != 0:
        print(f"e2e.py: {in_flight(snapshot)} requests still in flight after {idle} s", file=sys.stderr)
        return 1
    return 0


def cmd_tls(args):
    port, n, out = int(args[0]), int(args[1]), args[2]
    results = []
    for _ in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/tls", headers={"Connection": "close"})
            resp = conn.getresponse()
            resp.read()
            results.append({"status": resp.status, "reused": resp.getheader("X-TLS-Reused")})
        finally:
            conn.close()
    with open(out, "w") as f:
        json.dump(results, f)
    return 0


def cmd_capped(args):
    port, n, out, path = int(args[0]), int(args[1]), args[2], args[3]
    results = [None] * n

    def one(i):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            resp = conn.getresponse()
            resp.read()
            results[i] = {"status": resp.status, "backend": resp.getheader("X-Backend"),
                          "peak": int(resp.getheader("X-Peak") or 0)}
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(out, "w") as f:
        json.dump(results, f)
    return 0


WRK_LINE = re.compile(r"^WRK (.*)$", re.M)


def read_wrk(path):
    with open(path) as f:
        text = f.read()
    m = WRK_LINE.search(text)
    if not m:
        raise RuntimeError(f"no summary line in {path}:\n{text}")
    fields = dict(kv.split("=") for kv in m.group(1).split())
    w = {k: float(v) for k, v in fields.items()}
    w["rps"] = w["requests"] / (w["duration_us"] / 1e6)
    w["errors"] = int(w["connect"] + w["read"] + w["write"] + w["status"] + w["timeout"])
    return w


def read_access(path):
    """run id -> list of (status, [upstream addresses tried, in order], end time in s)."""
    runs = {}
    with open(path) as f:
        for line in f:
            run, status, addrs, msec = line.rstrip("\n").split("\t")
            tried = [a.strip() for a in re.split(r"[,:] (?=\S)", addrs) if a.strip()] if addrs != "-" else []
            runs.setdefault(run, []).append((status, tried, float(msec)))
    return runs


def shares(entries, backends):
    final = [tried[-1] for status, tried, _ in entries if status == "200" and tried]
    total = len(final) or 1
    return {name: 100.0 * final.count(addr) / total for name, addr in backends.items()}


def cmd_report(args):
    d = args[0]
    with open(f"{d}/test.json") as f:
        test = json.load(f)
    backends = test["backends"]  # name -> address
    slow, dead = test["slow"], test["dead"]
    access = read_access(f"{d}/access.log")
    failures = []

    def check(ok, what):
        if not ok:
            failures.append(what)
        return "ok" if ok else "FAIL"

    rows = []
    for run in test["runs"]:
        w = read_wrk(f"{d}/wrk-{run['id']}.out")
        entries = access.get(run["id"], [])
        # 499: wrk closed the connection at its deadline with the request still in flight.
        cut = sum(1 for status, _, _ in entries if status == "499")
        non200 = sum(1 for status, _, _ in entries if status not in ("200", "499"))
        s = shares(entries, backends)
        retried = sum(1 for _, tried, _ in entries if len(tried) > 1)
        rows.append(dict(run, wrk=w, logged=len(entries), non200=non200, cut=cut, shares=s, retried=retried))

    names = list(backends)
    print()
    print(f"{'run':<16} {'balancer':<10} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'requests':>9} "
          f"{'errors':>6} {'non-2xx':>7} {'cut':>4} {'retried':>7} " + " ".join(f"{n + ' %':>8}" for n in names))
    for r in rows:
        w = r["wrk"]
        print(f"{r['id']:<16} {r['balancer']:<10} {w['rps']:>8.0f} {w['p50_ms']:>7.1f} {w['p99_ms']:>7.1f} "
              f"{int(w['requests']):>9} {w['errors']:>6} {r['non200']:>7} {r['cut']:>4} {r['retried']:>7} "
              + " ".join(f"{r['shares'][n]:>8.2f}" for n in names))
    print()

    results = []
    for r in rows:
        ok = r["wrk"]["errors"] == 0 and r["non200"] == 0 and r["cut"] <= test["connections"] and r["logged"] > 0
        if not ok:
            failures.append(f"run {r['id']}: {r['wrk']['errors']} wrk errors, {r['non200']} non-2xx, "
                            f"{r['cut']} cut, {r['logged']} logged")
    total = sum(int(r["wrk"]["requests"]) for r in rows)
    results.append((f"every request succeeded: {total} requests in {len(rows)} runs, 0 errors, 0 non-2xx "
                    f"(cut = 499s of requests in flight when wrk stopped, <= {test['connections']} connections)",
                    "ok" if not any(f.startswith("run ") for f in failures) else "FAIL"))

    cmp_rows = [r for r in rows if r["phase"] == "compare"]

    def pooled_share(balancer, name):
        entries = [e for r in cmp_rows if r["balancer"] == balancer for e in access[r["id"]]]
        return shares(entries, backends)[name]

    lc_slow, builtin_slow = pooled_share("leastconn", slow), pooled_share("least_conn", slow)
    results.append((f"slow backend share: leastconn {lc_slow:.2f}% <= least_conn {builtin_slow:.2f}% + 2",
                    check(lc_slow <= builtin_slow + 2.0, "slow share above least_conn's + 2 points")))
    results.append((f"slow backend share: leastconn {lc_slow:.2f}% < 15% (round robin: 33.3%)",
                    check(lc_slow < 15.0, "slow share not far below a third")))

    lc_rps = [r["wrk"]["rps"] for r in cmp_rows if r["balancer"] == "leastconn"]
    builtin_rps = [r["wrk"]["rps"] for r in cmp_rows if r["balancer"] == "least_conn"]
    ratio = statistics.median(lc_rps) / statistics.median(builtin_rps)
    results.append((f"throughput: median {statistics.median(lc_rps):.0f} vs {statistics.median(builtin_rps):.0f} "
                    f"req/s over {len(lc_rps)} alternating runs each = {ratio:.3f}x >= 0.95x",
                    check(ratio >= 0.95, f"throughput ratio {ratio:.3f} below 0.95")))

    # Reload: no request lost, and new workers really took over.
    with open(f"{d}/status-before-reload.json") as f:
        before = set(json.load(f))
    with open(f"{d}/status-after-reload.json") as f:
        after = set(json.load(f))
    reload_row = next(r for r in rows if r["phase"] == "reload")
    ok = reload_row["wrk"]["errors"] == 0 and reload_row["non200"] == 0 and not (before & after)
    ok = ok and reload_row["cut"] <= test["connections"]
    results.append((f"reload x{test['reloads']} under load: {int(reload_row['wrk']['requests'])} requests, "
                    f"{reload_row['wrk']['errors']} errors, {reload_row['non200']} non-2xx, "
                    f"workers {sorted(before)} -> {sorted(after)}",
                    check(ok, "reload lost requests or kept the old workers")))

    # Dead backend: unavailable after max_fails in every worker, no client error.
    dead_addr = backends[dead]
    with open(f"{d}/status-dead.json") as f:
        dead_status = json.load(f)
    for r in (r for r in rows if r["phase"] == "dead"):
        entries = access[r["id"]]
        start = min(t for _, _, t in entries)
        hits = [t for _, tried, t in entries if dead_addr in tried]
        served = sum(1 for _, tried, _ in entries if tried and tried[-1] == dead_addr)
        last_ms = 1000 * (max(hits) - start) if hits else 0
        ok = r["wrk"]["errors"] == 0 and r["non200"] == 0 and served == 0 and hits and last_ms < 1000
        what = (f"dead backend {dead} via {r['balancer']}: {len(hits)} attempts, all retried elsewhere, the last "
                f"{last_ms:.0f} ms into the {r['wrk']['duration_us'] / 1e6:.0f} s run; "
                f"{r['wrk']['errors']} client errors, {r['non200']} non-2xx")
        if r["balancer"] == "leastconn":
            marked, worker_failures = True, []
            for doc in dead_status.values():
                for u in doc["upstreams"]:
                    for h in u["hosts"] if u["name"] == "lc" else []:
                        if h["address"] == dead_addr:
                            worker_failures.append(h["failures"])
                            marked &= h["unhealthy"] and h["recent_failures"] >= test["max_fails"]
            ok = ok and marked and sum(worker_failures) == len(hits)
            what += f"; unhealthy in every worker (max_fails={test['max_fails']}) after {worker_failures} failures"
        results.append((what, check(ok, f"dead backend not handled by {r['balancer']}")))

    with open(f"{d}/status-idle.json") as f:
        idle = json.load(f)
    total_in_flight = in_flight(idle)
    picks = sum(h["picks"] for doc in idle.values() for u in doc["upstreams"] for h in u["hosts"])
    results.append((f"after the load: {total_in_flight} in flight in {len(idle)} workers ({picks} picks since "
                    f"the reload)", check(total_in_flight == 0 and picks > 0, "requests left in flight")))

    shapes = test["shapes"]
    expect = sorted(shapes["resolved"] + [shapes["down"], shapes["backup"]])
    views = [next(u["hosts"] for u in doc["upstreams"] if u["name"] == "shapes") for doc in idle.values()]
    ok = len(views) == len(idle)
    for hosts in views:
        by = {h["address"]: h for h in hosts}
        ok &= sorted(by) == expect and by[shapes["down"]]["down"] and by[shapes["backup"]]["max_requests"] == 7
        ok &= not any(by[a]["down"] for a in shapes["resolved"] + [shapes["backup"]])
    results.append((f"server {shapes['name']} -> {len(shapes['resolved'])} upstreams {shapes['resolved']}; "
                    f"`down` shown down, `backup` unix socket with max_conns=7 listed",
                    check(ok, f"status of upstream shapes {views} does not match {expect}")))

    with open(f"{d}/tls.json") as f:
        tls = json.load(f)
    ok_count = sum(1 for t in tls if t["status"] == 200)
    reused = sum(1 for t in tls if t["reused"] == "1")
    # Each worker's first connection has no session yet; TLS 1.3 sends its ticket after the
    # handshake, so allow one more per worker.
    fresh = len(tls) - reused
    results.append((f"https upstream: {ok_count}/{len(tls)} requests ok, {reused} on resumed TLS sessions",
                    check(ok_count == len(tls) and fresh <= 2 * test["workers"], "TLS sessions not resumed")))

    def burst(name):
        with open(f"{d}/{name}.json") as f:
            replies = json.load(f)
        ok_count = sum(1 for c in replies if c and c["status"] == 200)
        on_slow = [c for c in replies if c and c["backend"] == "capped"]
        return len(replies), ok_count, len(on_slow), max((c["peak"] for c in on_slow), default=0)

    n, ok_count, on_slow, peak = burst("capped")
    _, control_ok, control_on_slow, control_peak = burst("uncapped")
    # max_conns is per worker (no zone), as in nginx: at most one request per worker.
    ok = ok_count == n and control_ok == n and 0 < peak <= test["workers"] < control_peak
    results.append((f"max_conns=1: {n} concurrent requests, {ok_count} ok, {on_slow} on the capped backend, "
                    f"peak {peak} in flight (<= {test['workers']} workers); without max_conns "
                    f"{control_on_slow} went there, peak {control_peak}",
                    check(ok, "max_conns not honoured")))

    with open(f"{d}/error.log") as f:
        bad = [line.rstrip() for line in f if re.search(r"\[(alert|crit|emerg)\]", line)]
    results.append((f"error log: {len(bad)} alert/crit/emerg lines", check(not bad, "alerts in the error log")))
    for line in bad[:10]:
        print("  " + line)

    width = max(len(what) for what, _ in results)
    for what, verdict in results:
        print(f"{what:<{width}}  {verdict}")
    if failures:
        print("\nFAILED: " + "; ".join(failures))
        return 1
    return 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    commands = {"status": cmd_status, "tls": cmd_tls, "capped": cmd_capped, "report": cmd_report}
    return commands[cmd](args)


if __name__ == "__main__":
    sys.exit(main())
