#!/usr/bin/env python3
"""Turns one `cargo bench` run into the tables and the plot of benches/RESULTS.md.

Usage (from the repository root, after `cargo bench 2>&1 | tee target/bench.log`):

    python3 benches/report.py target/bench.log            # tables to stdout
    python3 benches/report.py target/bench.log --splice   # into benches/RESULTS.md

    python3 benches/report.py target/bench.log --zone     # zone/heap ratios only

Reads criterion's `target/criterion/**/new/{benchmark,estimates,sample}.json` (under
`$CARGO_TARGET_DIR` when that is set) and the `LATENCY`, `MEMORY`, `WRITER` and `TWOPROC`
lines the benches print; writes markdown to stdout and the plot to `benches/cost-vs-n.svg`.
Python 3 standard library only.
"""

import json
import math
import os
import re
import sys

ROOT = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")
PLOT = os.path.join("benches", "cost-vs-n.svg")


def load():
    """{(group, function, n): (median_ns, min_ns)} for every bench of the last run."""
    out = {}
    for dirpath, _dirs, files in os.walk(ROOT):
        if not dirpath.endswith(os.sep + "new") or "benchmark.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            b = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        with open(os.path.join(dirpath, "sample.json")) as f:
            s = json.load(f)
        best = min(t / i for t, i in zip(s["times"], s["iters"]))
        n = int(b["value_str"]) if b.get("value_str") else 0
        out[(b["group_id"], b["function_id"], n)] = (est["median"]["point_estimate"], best)
    return out


def fmt(ns):
    if ns is None:
        return "-"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.1f}"


def ratio(a, b):
    return "-" if a is None or b is None else f"{a / b:.2f}"


def get(r, g, f, n, which=0):
    v = r.get((g, f, n))
    return None if v is None else v[which]


PICK_FUNCS = ["floor", "least_conn", "least_conn_pool_select", "p2c", "first", "mutex_vec", "rwlock_arc", "caddy"]
BASELINES = ["mutex_vec", "rwlock_arc", "caddy"]


def pick_tables(r, load):
    g = f"pick_{load}"
    ns = sorted({k[2] for k in r if k[0] == g})
    if not ns:
        return ""
    lines = [f"### One thread, pick + release, {load} hosts (median ns per operation)", ""]
    lines.append("| N | " + " | ".join(PICK_FUNCS) + " |")
    lines.append("|---:|" + "---:|" * len(PICK_FUNCS))
    for n in ns:
        lines.append(f"| {n} | " + " | ".join(fmt(get(r, g, f, n)) for f in PICK_FUNCS) + " |")
    lines += ["", f"Ratios ({load}): least_conn / floor, and each baseline / least_conn "
              "(median; in brackets the same ratio from each bench's fastest sample).", ""]
    cols = ["least_conn / floor", "pool_select / picker"] + [f"{b} / least_conn" for b in BASELINES]
    lines.append("| N | " + " | ".join(cols) + " |")
    lines.append("|---:|" + "---:|" * len(cols))
    for n in ns:
        cells = []
        pairs = [("least_conn", "floor"), ("least_conn_pool_select", "least_conn")] + [(b, "least_conn") for b in BASELINES]
        for a, b in pairs:
            cells.append(f"{ratio(get(r, g, a, n), get(r, g, b, n))} ({ratio(get(r, g, a, n, 1), get(r, g, b, n, 1))})")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


CONT_FUNCS = ["private_floor", "floor", "least_conn", "least_conn_pool_select", "mutex_vec", "rwlock_arc", "caddy"]


def contention_table(r, group, title):
    if not any(k[0] == group for k in r):
        return ""
    lines = [f"### {title} (median ns per operation, per thread)", ""]
    lines.append("| N | threads | " + " | ".join(CONT_FUNCS) + " | least_conn / floor | mutex / least_conn |")
    lines.append("|---:|---:|" + "---:|" * (len(CONT_FUNCS) + 2))
    for n in (8, 64):
        for t in (1, 2):
            cells = [fmt(get(r, group, f"{f}/{t}t", n)) for f in CONT_FUNCS]
            lc = get(r, group, f"least_conn/{t}t", n)
            cells.append(ratio(lc, get(r, group, f"floor/{t}t", n)))
            cells.append(ratio(get(r, group, f"mutex_vec/{t}t", n), lc))
            lines.append(f"| {n} | {t} | " + " | ".join(cells) + " |")
    lines += ["", "2 threads / 1 thread, per-operation cost (median); `private_floor` shares nothing, "
              "so its ratio is the machine's, and the last column divides it out:", ""]
    lines.append("| N | " + " | ".join(CONT_FUNCS) + " | least_conn / private_floor |")
    lines.append("|---:|" + "---:|" * (len(CONT_FUNCS) + 1))
    for n in (8, 64):
        def r21(f):
            a, b = get(r, group, f"{f}/2t", n), get(r, group, f"{f}/1t", n)
            return None if a is None or b is None else a / b
        lc, ctl = r21("least_conn"), r21("private_floor")
        norm = "-" if lc is None or ctl is None else f"{lc / ctl:.2f}"
        lines.append(f"| {n} | " + " | ".join("-" if r21(f) is None else f"{r21(f):.2f}" for f in CONT_FUNCS)
                     + f" | {norm} |")
    return "\n".join(lines) + "\n"


def large_n_table(r):
    g = "large_n"
    ns = sorted({k[2] for k in r if k[0] == g})
    if not ns:
        return ""
    funcs = ["floor", "least_conn", "mirror_scalar", "mirror_avx2"]
    lines = ["### Large N: packed-mirror prototype (spread load, median ns)", ""]
    lines.append("| N | " + " | ".join(funcs) + " | least_conn / mirror_scalar | least_conn / mirror_avx2 |")
    lines.append("|---:|" + "---:|" * (len(funcs) + 2))
    for n in ns:
        lc = get(r, g, "least_conn", n)
        lines.append(f"| {n} | " + " | ".join(fmt(get(r, g, f, n)) for f in funcs)
                     + f" | {ratio(lc, get(r, g, 'mirror_scalar', n))} | {ratio(lc, get(r, g, 'mirror_avx2', n))} |")
    return "\n".join(lines) + "\n"


def zone_tables(r, log=None):
    """benches/zone.rs: zone / heap per group, threads and N (issue 11 point 8: <= 1.1 on the
    Picker path), and the two-process figure against two threads of one process on a heap pool."""
    groups = [("zone_picker_idle", "Picker, idle hosts"), ("zone_picker_spread", "Picker, spread load"),
              ("zone_tls", "Pool::select + Reservation::release, idle hosts")]
    if not any(k[0] in [g for g, _ in groups] for k in r):
        return ""
    lines = ["### Zone vs heap (median ns per operation, per thread; ratio zone / heap, in brackets "
             "from each bench's fastest sample)", "",
             "| path | N | threads | heap | zone | zone / heap |", "|---|---:|---:|---:|---:|---:|"]
    for g, title in groups:
        for n in (8, 64):
            for t in (1, 2):
                h, z = f"heap/{t}t", f"zone/{t}t"
                if get(r, g, h, n) is None and get(r, g, z, n) is None:
                    continue
                lines.append(f"| {title} | {n} | {t} | {fmt(get(r, g, h, n))} | {fmt(get(r, g, z, n))} | "
                             f"{ratio(get(r, g, z, n), get(r, g, h, n))} "
                             f"({ratio(get(r, g, z, n, 1), get(r, g, h, n, 1))}) |")
    for n in (8, 64):
        z, h = get(r, "zone_2proc", "zone/1t+child", n), get(r, "zone_picker_idle", "heap/2t", n)
        if z is None:
            continue
        zb, hb = get(r, "zone_2proc", "zone/1t+child", n, 1), get(r, "zone_picker_idle", "heap/2t", n, 1)
        lines.append(f"| Picker, two processes (this one's thread) vs heap 2 threads | {n} | 1+1 | {fmt(h)} | "
                     f"{fmt(z)} | {ratio(z, h)} ({ratio(zb, hb)}) |")
        # The same harness on both sides: the other picker runs flat out for the whole bench.
        h, hb = get(r, "zone_2proc", "heap/1t+thread", n), get(r, "zone_2proc", "heap/1t+thread", n, 1)
        if h is not None:
            lines.append(f"| Picker, two processes (this one's thread) vs heap 1 thread + a second flat out | {n} | "
                         f"1+1 | {fmt(h)} | {fmt(z)} | {ratio(z, h)} ({ratio(zb, hb)}) |")
    out = "\n".join(lines) + "\n"
    for line in log_lines(log, "TWOPROC"):
        out += f"\n    {line}"
    return out + "\n"


def refresh_table(r):
    if not any(k[0] == "refresh" for k in r):
        return ""
    lines = ["### Refresh (median time per refresh)", "", "| N | same list | 10% churn |", "|---:|---:|---:|"]
    for n in (10, 1000, 10000):
        lines.append(f"| {n} | {fmt(get(r, 'refresh', 'same', n))} | {fmt(get(r, 'refresh', 'churn', n))} |")
    return "\n".join(lines) + "\n"


def log_lines(path, tag):
    if not path or not os.path.exists(path):
        return []
    with open(path, errors="replace") as f:
        return [line.rstrip() for line in f if line.startswith(tag + " ")]


def plot(r):
    """Log-log SVG of cost against N, both loads, one colour per subject."""
    funcs = ["floor", "least_conn", "p2c", "first", "mutex_vec", "rwlock_arc", "caddy"]
    colours = ["#000000", "#d62728", "#ff7f0e", "#9467bd", "#1f77b4", "#2ca02c", "#8c564b"]
    series = []
    for load, dash in (("idle", ""), ("spread", "4 3")):
        for f, c in zip(funcs, colours):
            pts = sorted((n, v[0]) for (g, fn, n), v in r.items() if g == f"pick_{load}" and fn == f)
            if pts:
                series.append((f, load, c, dash, pts))
    if not series:
        return
    xs = [n for s in series for n, _ in s[4]]
    ys = [v for s in series for _, v in s[4]]
    x0, x1 = math.log10(min(xs)), math.log10(max(xs))
    y0, y1 = math.floor(math.log10(min(ys))), math.ceil(math.log10(max(ys)))
    w, h, ml, mr, mt, mb = 640, 400, 60, 150, 30, 45

    def px(n):
        return ml + (math.log10(n) - x0) / max(x1 - x0, 1e-9) * (w - ml - mr)

    def py(v):
        return h - mb - (math.log10(v) - y0) / (y1 - y0) * (h - mt - mb)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{ml}" y="18" font-size="13">pick + release, one thread: ns per operation vs hosts (log-log)</text>']
    for e in range(y0, y1 + 1):
        y = py(10 ** e)
        out.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{w - mr}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end">{10 ** e:g}</text>')
    for n in sorted(set(xs)):
        x = px(n)
        out.append(f'<line x1="{x:.1f}" y1="{mt}" x2="{x:.1f}" y2="{h - mb}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{h - mb + 15}" text-anchor="middle">{n}</text>')
    out.append(f'<text x="{(ml + w - mr) / 2}" y="{h - 8}" text-anchor="middle">N (hosts)</text>')
    out.append(f'<rect x="{ml}" y="{mt}" width="{w - ml - mr}" height="{h - mt - mb}" fill="none" stroke="#888"/>')
    for i, (f, load, c, dash, pts) in enumerate(series):
        d = " ".join(f"{px(n):.1f},{py(v):.1f}" for n, v in pts)
        da = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="1.6"{da}/>')
    ly = mt + 5
    for f, c in zip(funcs, colours):
        out.append(f'<line x1="{w - mr + 10}" y1="{ly}" x2="{w - mr + 30}" y2="{ly}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{w - mr + 35}" y="{ly + 4}">{f}</text>')
        ly += 16
    out.append(f'<text x="{w - mr + 10}" y="{ly + 10}">solid: idle</text>')
    out.append(f'<text x="{w - mr + 10}" y="{ly + 26}">dashed: spread</text>')
    out.append("</svg>")
    with open(PLOT, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    log = args[0] if args else None
    if "--splice" in sys.argv:
        splice(log)
        return
    if "--zone" in sys.argv:
        print(zone_tables(load(), log))
        return
    tables(log)


def splice(log):
    """Replaces the generated part of RESULTS.md (between the two markers)."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        tables(log)
    path = os.path.join("benches", "RESULTS.md")
    with open(path) as f:
        text = f.read()
    start, end = "<!-- generated:start -->", "<!-- generated:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(head + start + "\n" + buf.getvalue().strip() + "\n" + end + tail)


def tables(log):
    r = load()
    print(pick_tables(r, "idle"))
    print(pick_tables(r, "spread"))
    print(contention_table(r, "contention", "Contention, no writer"))
    print(contention_table(r, "contention_writer", "Contention, writer refreshing every 100 us"))
    for line in log_lines(log, "WRITER"):
        print(f"    {line}")
    print()
    print(refresh_table(r))
    print("Pick latency while another thread refreshes the same pool (ns, each pick timed with "
          "`Instant`, so about 40 ns of timer overhead is included):\n")
    for line in log_lines(log, "LATENCY"):
        print(f"    {line}")
    print()
    print(large_n_table(r))
    print(zone_tables(r, log))
    print("### Bytes per host\n")
    for line in log_lines(log, "MEMORY"):
        print(f"    {line}")
    plot(r)


if __name__ == "__main__":
    main()
