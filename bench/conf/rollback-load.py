#!/usr/bin/env python3
"""Open-loop load and failure injection for bench/rollback.sh (one round).

Sends requests through ficus at a fixed rate (open loop: request k is due at start + k / RATE
whatever happened to earlier ones; a slow or failing answer never delays the next request),
GET and POST mixed (--post-pct), each with an `x-user-id` drawn from --users distinct users
(so the canary split is by user). A due request goes out on an idle keep-alive connection, or
a new one (up to --max-conns). Every request is recorded: when it was due, method, user, the
status (or `timeout` / `error` for a connection failure), ficus's `x-ficus-upstream` header
(the route has `debug_header = true`) and the latency from the moment it was due.

Timeline of a round:
  1. --warmup seconds (plus a random 0..--warmup-jitter) of load with modern healthy (the
     rollout sits at its first step);
  2. t0: POST /_control/fail?rate=--fail-rate to modern (t0 = the modern service's own clock
     at the switch, unix ms);
  3. the load continues while GET /api/v1/events?kind=rollout.rolled_back is polled on the
     admin API every --poll-ms; once the event is seen, --tail more seconds, then stop. Without
     a rollback the load stops --max-wait seconds after t0.
A rollback event that is already there before t0 (a false rollback during the warm-up) ends
the round at once; it is reported as early_rollback=1. With --fail-rate 0 (a healthy round)
modern never fails: the load runs the same timeline and any rollback, before or after t0,
is a false rollback.

Prints one line (key=value, no spaces in values):
  ROLLBACK rolled_back=0|1 early_rollback=0|1 false_rollback=0|1 t0_ms= rb_ms= seen_ms= ttr_s= ...
rolled_back is a rollback of a failing modern after t0; false_rollback a rollback of a healthy
one (before t0, or at any time in a healthy round). last_* are the latency numbers of the
rollout's last verdict at the end of the load (GET /api/v1/rollouts): what the judge saw.
and writes PREFIX.requests.tsv, PREFIX.event.json (the rollback event), PREFIX.rollouts.json
(GET /api/v1/rollouts just before t0) and PREFIX.modern.tsv (the modern service's log).

Python 3.11 standard library only.
"""

import argparse
import asyncio
import json
import random
import re
import resource
import sys
import time


async def read_response(reader):
    """Reads one response; returns (status, close, upstream header, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ValueError("bad status line")
    status = int(parts[1])
    length = None
    chunked = False
    close = parts[0] == "HTTP/1.0"
    upstream = "-"
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
        elif name == "x-ficus-upstream":
            upstream = value
    body = b""
    if chunked:
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                break
            chunks.append((await reader.readexactly(size + 2))[:-2])
        body = b"".join(chunks)
    elif length is not None:
        if length:
            body = await reader.readexactly(length)
    elif status not in (204, 304) and not 100 <= status < 200:
        body = await reader.read()
        close = True
    return status, close, upstream, body


async def fetch(host, port, method, target, timeout=2.0):
    """One request on its own connection (admin API, control endpoints)."""
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
        try:
            writer.write(
                f"{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            status, _, _, body = await read_response(reader)
            return status, body
        finally:
            writer.close()


class Pool:
    """Keep-alive connections to ficus. The most recently used idle connection goes first;
    one idle longer than `idle_max` is closed instead of reused, so the client never sends on
    a connection the server may be closing at that moment (ficus closes idle client
    connections after its `header_read_timeout`, 10 s by default), as HTTP clients do."""

    def __init__(self, host, port, max_conns, idle_max):
        self.host, self.port, self.max = host, port, max_conns
        self.idle_max = idle_max
        self.idle = []  # (conn, idle since)
        self.open = 0
        self.peak = 0
        self.expired = 0
        self.waiters = []

    async def get(self):
        """Returns (conn, reused)."""
        loop = asyncio.get_running_loop()
        while True:
            while self.idle:
                conn, since = self.idle.pop()
                if loop.time() - since <= self.idle_max:
                    return conn, True
                self.expired += 1
                self.drop(conn)
            if self.open < self.max:
                self.open += 1
                self.peak = max(self.peak, self.open)
                try:
                    conn = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
                    return conn, False
                except BaseException:
                    self.open -= 1
                    raise
            fut = loop.create_future()
            self.waiters.append(fut)
            await fut

    def _wake(self):
        while self.waiters:
            fut = self.waiters.pop(0)
            if not fut.done():
                fut.set_result(None)
                return

    def put(self, conn):
        self.idle.append((conn, asyncio.get_running_loop().time()))
        self._wake()

    def drop(self, conn):
        try:
            conn[1].close()
        except Exception:
            pass
        self.open -= 1
        self._wake()

    def close_all(self):
        for (_, w), _ in self.idle:
            w.close()
        self.idle.clear()


def main_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True, help="ficus listener")
    ap.add_argument("--admin-port", type=int, required=True)
    ap.add_argument("--modern-port", type=int, required=True, help="modern's control endpoints")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--post-pct", type=float, default=20.0)
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--warmup", type=float, default=15.0)
    ap.add_argument(
        "--warmup-jitter",
        type=float,
        default=1.0,
        help="add a uniform random 0..J seconds to the warm-up, so that t0 falls on a random "
        "phase of the rollout controller's 1 s tick",
    )
    ap.add_argument("--fail-rate", type=float, default=0.3)
    ap.add_argument("--tail", type=float, default=5.0)
    ap.add_argument("--max-wait", type=float, default=30.0)
    ap.add_argument("--poll-ms", type=float, default=100.0)
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--max-conns", type=int, default=512)
    ap.add_argument(
        "--idle-max",
        type=float,
        default=5.0,
        help="close keep-alive connections idle longer than this (below ficus's 10 s)",
    )
    ap.add_argument("--path", default="/api/orders")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="prefix of the output files")
    return ap.parse_args()


async def main():
    args = main_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.max_conns + 256
    if hard != resource.RLIM_INFINITY:
        want = min(hard, want)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    loop = asyncio.get_running_loop()
    # One clock for everything: the loop's monotonic clock, mapped to unix ms once.
    wall0, mono0 = time.time(), loop.time()

    def to_ms(mono):
        return (wall0 + (mono - mono0)) * 1000.0

    rng = random.Random(args.seed)
    pool = Pool(args.host, args.port, args.max_conns, args.idle_max)
    records = []  # (due_ms, method, user, outcome, upstream, latency_ms, connection)
    tasks = set()
    st = {
        "t0_ms": None,
        "t0_client_ms": None,
        "rb_event": None,
        "seen_ms": None,
        "early": False,
        "end": None,
        "poll_errors": 0,
    }

    def build(method, user, k):
        if method == "GET":
            return (
                f"GET {args.path}/{user} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
                f"x-user-id: u{user}\r\nUser-Agent: ficus-bench-rollback\r\nAccept: */*\r\n\r\n"
            ).encode()
        body = json.dumps({"user": user, "item": k % 97, "qty": 1 + k % 3}).encode()
        return (
            f"POST {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
            f"x-user-id: u{user}\r\nUser-Agent: ficus-bench-rollback\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def one(due, method, user, request):
        conn = None
        upstream = "-"
        reused = None
        try:
            async with asyncio.timeout_at(due + args.timeout):
                conn, reused = await pool.get()
                conn[1].write(request)
                status, close, upstream, _ = await read_response(conn[0])
            end = loop.time()
            if close:
                pool.drop(conn)
            else:
                pool.put(conn)
            conn = None
            outcome, latency = str(status), end - due
        except TimeoutError:
            outcome, latency = "timeout", args.timeout
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            outcome, latency = "error", loop.time() - due
        finally:
            if conn is not None:
                pool.drop(conn)
        how = "-" if reused is None else ("reused" if reused else "new")
        records.append((to_ms(due), method, user, outcome, upstream, latency * 1000.0, how))

    async def poll_events():
        target = "/api/v1/events?kind=rollout.rolled_back&limit=10"
        while st["end"] is None or loop.time() < st["end"]:
            try:
                status, body = await fetch(args.host, args.admin_port, "GET", target)
                if status == 200:
                    events = json.loads(body)
                    if events and st["rb_event"] is None:
                        st["rb_event"] = min(events, key=lambda e: e["id"])
                        st["seen_ms"] = to_ms(loop.time())
                        if st["t0_ms"] is None:
                            st["early"] = True
                            st["end"] = loop.time()
                        else:
                            st["end"] = loop.time() + args.tail
                        return
                else:
                    st["poll_errors"] += 1
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
                st["poll_errors"] += 1
            await asyncio.sleep(args.poll_ms / 1000.0)

    async def inject(at):
        await asyncio.sleep(max(0.0, at - loop.time()))
        if st["early"]:
            return
        try:
            status, body = await fetch(args.host, args.admin_port, "GET", "/api/v1/rollouts")
            with open(args.out + ".rollouts.json", "wb") as f:
                f.write(body)
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as e:
            print(f"rollback-load: GET /api/v1/rollouts failed: {e}", file=sys.stderr)
        st["t0_client_ms"] = to_ms(loop.time())
        try:
            status, body = await fetch(
                args.host, args.modern_port, "POST", f"/_control/fail?rate={args.fail_rate}"
            )
            if status != 200:
                raise ValueError(f"answered {status}: {body!r}")
            st["t0_ms"] = json.loads(body)["at_ms"]
        except (OSError, TimeoutError, ValueError, KeyError, asyncio.IncompleteReadError) as e:
            print(f"rollback-load: modern's control endpoint failed: {e}", file=sys.stderr)
            st["end"] = loop.time()
            return
        if st["end"] is None:
            st["end"] = loop.time() + args.max_wait

    start = loop.time() + 0.05
    warmup = args.warmup + random.Random(args.seed * 7919 + 1).uniform(0.0, max(0.0, args.warmup_jitter))
    poller = asyncio.create_task(poll_events())
    injector = asyncio.create_task(inject(start + warmup))
    k = 0
    while True:
        due = start + k / args.rate
        if st["end"] is not None and due >= st["end"]:
            break
        k += 1
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        method = "POST" if rng.random() * 100.0 < args.post_pct else "GET"
        user = rng.randrange(args.users)
        t = asyncio.create_task(one(due, method, user, build(method, user, k)))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(list(tasks))
    injector.cancel()
    poller.cancel()
    pool.close_all()
    stopped_ms = to_ms(loop.time())

    # The rollout's last verdict: for a healthy round that was not rolled back, the latency
    # difference the judge saw and did not act on.
    last = {}
    try:
        status, body = await fetch(args.host, args.admin_port, "GET", "/api/v1/rollouts")
        for r in json.loads(body) if status == 200 else []:
            if r.get("route") == "bench":
                last = {"in_step_s": r.get("in_step_s"), "verdict": r.get("last_verdict") or {}}
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as e:
        print(f"rollback-load: GET /api/v1/rollouts at the end failed: {e}", file=sys.stderr)

    modern_log = []
    try:
        status, body = await fetch(args.host, args.modern_port, "GET", "/_control/log", timeout=10)
        with open(args.out + ".modern.tsv", "wb") as f:
            f.write(b"at_ms\tmethod\tstatus\tshadow\n" + body)
        for line in body.decode().splitlines():
            at, m, s, sh = line.split("\t")
            modern_log.append((float(at), m, int(s), sh == "1"))
    except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as e:
        print(f"rollback-load: could not read modern's log: {e}", file=sys.stderr)

    records.sort()
    with open(args.out + ".requests.tsv", "w") as f:
        f.write("due_ms\tmethod\tuser\toutcome\tupstream\tlatency_ms\tconnection\n")
        for r in records:
            f.write(f"{r[0]:.3f}\t{r[1]}\tu{r[2]}\t{r[3]}\t{r[4]}\t{r[5]:.3f}\t{r[6]}\n")
    ev = st["rb_event"]
    if ev is not None:
        with open(args.out + ".event.json", "w") as f:
            json.dump(ev, f, indent=2)

    # ------------------------------------------------------------ the numbers
    t0 = st["t0_ms"]
    rb = float(ev["at"]) if ev is not None else None
    healthy = args.fail_rate == 0.0
    out = {
        "rolled_back": int(ev is not None and not st["early"] and not healthy),
        "early_rollback": int(st["early"]),
        "false_rollback": int(ev is not None and (st["early"] or healthy)),
        "t0_ms": f"{t0:.0f}" if t0 is not None else "-",
        "t0_client_ms": f"{st['t0_client_ms']:.0f}" if st["t0_client_ms"] is not None else "-",
        "rb_ms": f"{rb:.0f}" if rb is not None else "-",
        "seen_ms": f"{st['seen_ms']:.0f}" if st["seen_ms"] is not None else "-",
        "ttr_s": f"{(rb - t0) / 1000.0:.3f}" if (rb is not None and t0 is not None) else "-",
        "warmup_s": f"{warmup:.3f}",
        "load_s": f"{(stopped_ms - to_ms(start)) / 1000.0:.1f}",
        "conns_peak": pool.peak,
        "conns_expired": pool.expired,
        "poll_errors": st["poll_errors"],
    }

    def is_err(o):
        return not o.startswith("2")

    def count(pred):
        return sum(1 for r in records if pred(r))

    out["requests"] = len(records)
    out["offered_rps"] = f"{len(records) / max(1e-9, (stopped_ms - to_ms(start)) / 1000.0):.1f}"
    for m in ("GET", "POST"):
        lm = m.lower()
        out[f"{lm}"] = count(lambda r: r[1] == m)
        out[f"{lm}_err"] = count(lambda r: r[1] == m and is_err(r[3]))
        if t0 is not None:
            out[f"{lm}_after_t0"] = count(lambda r: r[1] == m and r[0] >= t0)
            out[f"{lm}_err_after_t0"] = count(lambda r: r[1] == m and r[0] >= t0 and is_err(r[3]))
        else:
            out[f"{lm}_after_t0"] = out[f"{lm}_err_after_t0"] = "-"
    out["conn_errors"] = count(lambda r: r[3] in ("error", "timeout"))
    kinds = {}
    for r in records:
        if is_err(r[3]):
            k = f"{r[1]}:{r[3]}" + (f"({r[6]})" if r[3] in ("error", "timeout") else "")
            kinds[k] = kinds.get(k, 0) + 1
    out["error_kinds"] = ",".join(f"{k}={v}" for k, v in sorted(kinds.items())) or "-"
    if t0 is not None and rb is not None:
        window = [r for r in records if t0 <= r[0] < rb]
        out["client_t0_rb"] = len(window)
        out["client_modern_t0_rb"] = sum(1 for r in window if r[4] == "modern")
        out["client_fallback_t0_rb"] = sum(1 for r in window if r[4] == "legacy-fallback")
        out["client_err_after_rb"] = count(lambda r: r[0] >= rb and is_err(r[3]))
        errs = [r[0] for r in records if r[0] >= t0 and is_err(r[3])]
        out["last_err_minus_rb_ms"] = f"{max(errs) - rb:.0f}" if errs else "-"
        real = [x for x in modern_log if not x[3]]
        win = [x for x in real if t0 <= x[0] < rb]
        out["modern_t0_rb"] = len(win)
        out["modern_503_t0_rb"] = sum(1 for x in win if x[2] == 503)
        out["modern_get_t0_rb"] = sum(1 for x in win if x[1] == "GET")
        out["modern_post_t0_rb"] = sum(1 for x in win if x[1] == "POST")
        out["modern_after_rb"] = sum(1 for x in real if x[0] >= rb)
        out["modern_shadow_after_rb"] = sum(1 for x in modern_log if x[3] and x[0] >= rb)
        out["modern_before_t0"] = sum(1 for x in real if x[0] < t0)
    else:
        for key in (
            "client_t0_rb", "client_modern_t0_rb", "client_fallback_t0_rb", "client_err_after_rb",
            "last_err_minus_rb_ms", "modern_t0_rb", "modern_503_t0_rb", "modern_get_t0_rb",
            "modern_post_t0_rb", "modern_after_rb", "modern_shadow_after_rb", "modern_before_t0",
        ):
            out[key] = "-"
    # The judge's numbers at the rollback (the error gate's evidence).
    gate = {}
    if ev is not None:
        for g in (ev.get("data") or {}).get("verdict", {}).get("gates", []):
            if g.get("gate") == "error-rate":
                gate = g.get("observed") or {}
                out["gate_confirmed"] = int(bool(g.get("confirmed")))
        out["gates_confirmed"] = ",".join(
            g["gate"] for g in (ev.get("data") or {}).get("verdict", {}).get("gates", []) if g.get("confirmed")
        ) or "-"
    for key in ("modern_requests", "modern_errors", "legacy_requests", "legacy_errors"):
        out[f"ev_{key}"] = gate.get(key, "-")
    for key in ("modern_rate", "modern_lower_bound", "legacy_upper_bound", "confirm_limit"):
        v = gate.get(key)
        out[f"ev_{key}"] = f"{v:.5f}" if isinstance(v, (int, float)) else "-"
    # The latency gates' numbers too (a false alarm in the warm-up comes from them) and the
    # time in the step when it was judged.
    lat = {}
    if ev is not None:
        for g in (ev.get("data") or {}).get("verdict", {}).get("gates", []):
            lat[g.get("gate")] = g.get("observed") or {}
    p99, rank = lat.get("latency-p99", {}), lat.get("latency-rank", {})

    def num(v, fmt):
        return format(v, fmt) if isinstance(v, (int, float)) else "-"

    out["ev_p99_ratio"] = num(p99.get("ratio"), ".2f")
    out["ev_p99_delta_ms"] = num(p99.get("delta_ms"), ".3f")
    out["ev_latency_samples"] = f"{p99.get('modern_samples', '-')}/{p99.get('legacy_samples', '-')}"
    out["ev_median_ratio"] = num(rank.get("median_ratio"), ".3f")
    out["ev_rank_p"] = num(rank.get("p_value"), ".2g")
    m = re.search(r"after ([0-9.]+) s of", str((ev or {}).get("message", "")))
    out["ev_in_step_s"] = m.group(1) if m else "-"
    lv = {g.get("gate"): g for g in (last.get("verdict") or {}).get("gates", [])}
    lp, lr = (lv.get("latency-p99") or {}), (lv.get("latency-rank") or {})
    lpo, lro = (lp.get("observed") or {}), (lr.get("observed") or {})
    out["last_decision"] = (last.get("verdict") or {}).get("decision", "-")
    out["last_in_step_s"] = num(last.get("in_step_s"), ".1f")
    out["last_latency_samples"] = f"{lpo.get('modern_samples', '-')}/{lpo.get('legacy_samples', '-')}"
    out["last_p99_modern_ms"] = num(lpo.get("modern_p99_ms"), ".3f")
    out["last_p99_legacy_ms"] = num(lpo.get("legacy_p99_ms"), ".3f")
    out["last_p99_ratio"] = num(lpo.get("ratio"), ".2f")
    out["last_p99_delta_ms"] = num(lpo.get("delta_ms"), ".3f")
    out["last_p99_outcome"] = lp.get("outcome", "-")
    out["last_median_ratio"] = num(lro.get("median_ratio"), ".3f")
    out["last_median_delta_ms"] = num(lro.get("median_delta_ms"), ".3f")
    out["last_rank_p"] = num(lro.get("p_value"), ".2g")
    out["last_rank_outcome"] = lr.get("outcome", "-")
    print("ROLLBACK " + " ".join(f"{k}={v}" for k, v in out.items()), flush=True)
    if ev is not None:
        print("EVENT " + " ".join(str(ev.get("message", "")).split()), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
