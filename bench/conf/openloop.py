#!/usr/bin/env python3
"""Open-loop HTTP/1.1 load generator for bench/protect.sh (the overload part).

Requests are due at a fixed rate whatever happens to earlier ones (open loop: a slow server
does not slow the client down, unlike wrk, whose connections each wait for their answer).
Request k of a phase is due at start + k / RATE (uniform) or after exponential gaps
(--arrivals poisson). A due request goes out on an idle keep-alive connection; if none is
idle, a new one is opened, up to --max-conns; beyond that it waits for a connection.
Latency is measured from the moment the request was due (not from when it could be sent),
so waiting for a connection counts, and there is no coordinated omission. A request without
a complete answer --timeout seconds after it was due is abandoned (its connection closed)
and counted as a timeout.

Phases: --warmup seconds at --warmup-rate (not recorded: opens connections, fills pools),
then --duration seconds at --rate (recorded). Every recorded request ends as 2xx, 503,
another status, a timeout or an error (connect/read failure).

Prints one line:
  LOAD due=N sent=N ok=N s503=N other=N timeout=N error=N duration_s=F
       offered_rps=F sent_rps=F ok_rps=F s503_rps=F
       ok_p50_us=N ok_p90_us=N ok_p99_us=N ok_max_us=N s503_p50_us=N s503_p99_us=N
       lag_p99_us=N conns_peak=N resent=N
(percentiles are -1 when there is no such response; lag = how late requests were written
after they were due: waiting for a connection, or a busy client; resent = requests sent
again because a kept-alive connection turned out closed before any answer came). With --out, writes one
line per recorded request (due offset, status or timeout/error, latency, lag) and a
per-second timeline to --out and --out.timeline.

Python 3.11 standard library only.
"""

import argparse
import asyncio
import collections
import math
import random
import resource
import sys


def pct(sorted_vals, p):
    if not sorted_vals:
        return -1
    # nearest rank
    k = max(0, min(len(sorted_vals) - 1, math.ceil(p / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[k]


class Pool:
    def __init__(self, host, port, max_conns):
        self.host, self.port, self.max = host, port, max_conns
        self.idle = []
        self.open = 0
        self.peak = 0
        self.waiters = collections.deque()

    async def _connect(self):
        try:
            return await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        except BaseException:
            self._closed()
            raise

    def _closed(self):
        """A connection (or a connection slot being opened) is gone."""
        self.open -= 1
        # A waiter may open a new connection in its place.
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                self.open += 1
                fut.set_result(None)
                return

    async def get(self):
        """Returns (reader, writer, reused)."""
        if self.idle:
            r, w = self.idle.pop()
            return r, w, True
        if self.open < self.max:
            self.open += 1
            self.peak = max(self.peak, self.open)
            return (*await self._connect(), False)
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            conn = await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                got = fut.result()
                if got is None:
                    self._closed()
                else:
                    self.put(got)
            raise
        if conn is None:
            return (*await self._connect(), False)
        return (*conn, True)

    def put(self, conn):
        conn = conn[:2]
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(conn)
                return
        self.idle.append(conn)

    def drop(self, conn):
        try:
            conn[1].close()
        except Exception:
            pass
        self._closed()

    def close_all(self):
        for _, w in self.idle:
            w.close()
        self.idle.clear()


async def read_response(reader):
    """Reads one response; returns (status, close)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ValueError("bad status line")
    status = int(parts[1])
    length = None
    chunked = False
    close = parts[0] == "HTTP/1.0"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        value = value.strip()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
        elif name == "connection":
            v = value.lower()
            if "close" in v:
                close = True
            elif "keep-alive" in v:
                close = False
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            await reader.readexactly(size + 2)
    elif length is not None:
        if length:
            await reader.readexactly(length)
    elif status not in (204, 304) and not 100 <= status < 200:
        await reader.read()  # until the server closes
        close = True
    return status, close


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/")
    ap.add_argument("--rate", type=float, required=True, help="requests per second, measured phase")
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--warmup-rate", type=float, default=0.0)
    ap.add_argument("--warmup", type=float, default=0.0)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--max-conns", type=int, default=2000)
    ap.add_argument("--arrivals", choices=["uniform", "poisson"], default="uniform")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="per-request records (and OUT.timeline)")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, args.max_conns + 256) if hard != resource.RLIM_INFINITY else args.max_conns + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if args.max_conns + 64 > want:
        print(f"openloop: open-file limit {want} is below --max-conns {args.max_conns}", file=sys.stderr)

    loop = asyncio.get_running_loop()
    pool = Pool(args.host, args.port, args.max_conns)
    request = (
        f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
        "User-Agent: ficus-bench-openloop\r\nAccept: */*\r\n\r\n"
    ).encode()
    records = []  # (due offset s, outcome, latency s, lag s)
    rng = random.Random(args.seed)

    async def one(due, t_start, record):
        conn = None
        lag = -1.0
        try:
            async with asyncio.timeout_at(due + args.timeout):
                while True:
                    conn = await pool.get()
                    if lag < 0:
                        lag = loop.time() - due
                    conn[1].write(request)
                    try:
                        status, close = await read_response(conn[0])
                        break
                    except (OSError, asyncio.IncompleteReadError) as e:
                        # A kept-alive connection the server closed while it was idle (the
                        # keep-alive race): nothing of an answer came, so send again on
                        # another connection, as browsers do. A fresh one failing is an error.
                        if not conn[2] or (isinstance(e, asyncio.IncompleteReadError) and e.partial):
                            raise
                        pool.drop(conn)
                        conn = None
                        retried[0] += 1
            end = loop.time()
            if close:
                pool.drop(conn)
            else:
                pool.put(conn)
            conn = None
            outcome = str(status)
            latency = end - due
        except TimeoutError:
            outcome, latency = "timeout", args.timeout
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            outcome, latency = "error", loop.time() - due
        finally:
            if conn is not None:
                pool.drop(conn)
        if record:
            records.append((due - t_start, outcome, latency, lag))

    tasks = set()
    retried = [0]

    async def phase(rate, seconds, record):
        if rate <= 0 or seconds <= 0:
            return
        start = loop.time() + 0.01
        end = start + seconds
        due = start
        k = 0
        while True:
            if args.arrivals == "uniform":
                due = start + k / rate
            elif k > 0:
                due += rng.expovariate(rate)
            if due >= end:
                break
            k += 1
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            t = asyncio.create_task(one(due, start, record))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        return start

    await phase(args.warmup_rate, args.warmup, False)
    await phase(args.rate, args.duration, True)
    if tasks:
        await asyncio.wait(list(tasks))
    pool.close_all()

    counts = collections.Counter()
    ok_lat, s503_lat, lags = [], [], []
    for _, outcome, lat, lag in records:
        if outcome in ("timeout", "error"):
            counts[outcome] += 1
        elif outcome.startswith("2"):
            counts["ok"] += 1
            ok_lat.append(lat)
        elif outcome == "503":
            counts["s503"] += 1
            s503_lat.append(lat)
        else:
            counts["other"] += 1
        if lag >= 0:
            counts["sent"] += 1
            lags.append(lag)
    ok_lat.sort()
    s503_lat.sort()
    lags.sort()
    d = args.duration
    us = lambda v: int(round(v * 1e6)) if v >= 0 else -1  # noqa: E731
    print(
        f"LOAD due={len(records)} sent={counts['sent']} ok={counts['ok']} s503={counts['s503']} "
        f"other={counts['other']} timeout={counts['timeout']} error={counts['error']} duration_s={d:g} "
        f"offered_rps={len(records) / d:.1f} sent_rps={counts['sent'] / d:.1f} "
        f"ok_rps={counts['ok'] / d:.1f} s503_rps={counts['s503'] / d:.1f} "
        f"ok_p50_us={us(pct(ok_lat, 50))} ok_p90_us={us(pct(ok_lat, 90))} "
        f"ok_p99_us={us(pct(ok_lat, 99))} ok_max_us={us(ok_lat[-1] if ok_lat else -1)} "
        f"s503_p50_us={us(pct(s503_lat, 50))} s503_p99_us={us(pct(s503_lat, 99))} "
        f"lag_p99_us={us(pct(lags, 99))} conns_peak={pool.peak} resent={retried[0]}",
        flush=True,
    )

    if args.out:
        with open(args.out, "w") as f:
            f.write("due_s\toutcome\tlatency_us\tlag_us\n")
            for due, outcome, lat, lag in sorted(records):
                f.write(f"{due:.6f}\t{outcome}\t{us(lat)}\t{us(lag)}\n")
        per = collections.defaultdict(lambda: {"ok": [], "s503": 0, "timeout": 0, "other": 0})
        for due, outcome, lat, _ in records:
            b = per[int(due)]
            if outcome.startswith("2"):
                b["ok"].append(lat)
            elif outcome == "503":
                b["s503"] += 1
            elif outcome == "timeout":
                b["timeout"] += 1
            else:
                b["other"] += 1
        with open(args.out + ".timeline", "w") as f:
            f.write("second\tok\ts503\ttimeout\tother\tok_p50_ms\tok_p99_ms\n")
            for s in sorted(per):
                b = per[s]
                ok = sorted(b["ok"])
                f.write(
                    f"{s}\t{len(ok)}\t{b['s503']}\t{b['timeout']}\t{b['other']}\t"
                    f"{pct(ok, 50) * 1e3:.1f}\t{pct(ok, 99) * 1e3:.1f}\n"
                    if ok
                    else f"{s}\t0\t{b['s503']}\t{b['timeout']}\t{b['other']}\t-\t-\n"
                )


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
