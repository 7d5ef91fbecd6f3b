#!/usr/bin/env python3
"""Upstream with a fixed capacity for bench/protect.sh (the overload part).

Derived from bench/conf/slow-upstream.py (kept unchanged for bench/shadow.sh). Every request
takes DELAY_MS of "work", and at most WORKERS requests are worked on at once, like a service
with a fixed pool of workers: capacity = WORKERS / DELAY seconds (8 / 20 ms = 400 req/s).
Requests beyond wait, first come first served, in an unbounded queue (asyncio.Semaphore).
A queued request whose client has gone is still worked on when its turn comes (like most
servers with an accept backlog or a worker pool), and its answer is discarded; with
--skip-abandoned it is dropped when its turn comes instead (a server that checks).

HTTP/1.1 keep-alive, any number of connections. Python 3 standard library only; listens on
127.0.0.1 only.

    python3 limited-upstream.py --port 18283 --delay-ms 20 --workers 8 --body-file payload.json

Signals:
  SIGUSR1  prints "STATS served=N abandoned=N peak_waiting=N peak_working=N errors=N"
           (since the previous SIGUSR1) and resets the counts.
  SIGTERM / SIGINT  prints the totals since start and exits.
"""

import argparse
import asyncio
import signal
import sys

MAX_HEAD = 64 * 1024


class Stats:
    def __init__(self):
        self.waiting = 0
        self.working = 0
        self.total = 0
        self.reset()

    def reset(self):
        self.served = 0
        self.abandoned = 0
        self.errors = 0
        self.peak_waiting = self.waiting
        self.peak_working = self.working

    def line(self, tag):
        return (
            f"{tag} served={self.served} abandoned={self.abandoned} "
            f"peak_waiting={self.peak_waiting} peak_working={self.peak_working} errors={self.errors}"
        )


def parse_head(head):
    """Returns (version, headers as a dict of lower-case names), or raises ValueError."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ValueError("bad request line")
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError("bad header line")
        headers[name.strip().lower()] = value.strip()
    return parts[2], headers


async def read_body(reader, headers):
    """Reads and discards the request body (Content-Length or chunked)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return
            await reader.readexactly(size + 2)
    length = int(headers.get("content-length", "0") or 0)
    if length > 0:
        await reader.readexactly(length)


async def work(stats, slots, delay, reader, skip_abandoned):
    """Waits for a worker, then holds it for `delay`. False: skipped (the client is gone)."""
    stats.waiting += 1
    stats.peak_waiting = max(stats.peak_waiting, stats.waiting)
    try:
        if slots is not None:
            await slots.acquire()
    finally:
        stats.waiting -= 1
    if skip_abandoned and reader.at_eof():
        if slots is not None:
            slots.release()
        return False
    stats.working += 1
    stats.peak_working = max(stats.peak_working, stats.working)
    try:
        await asyncio.sleep(delay)
    finally:
        stats.working -= 1
        if slots is not None:
            slots.release()
    return True


async def serve(reader, writer, stats, slots, delay, response, skip_abandoned):
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                stats.errors += 1
                return
            version, headers = parse_head(head[:-4])
            await read_body(reader, headers)
            if not await work(stats, slots, delay, reader, skip_abandoned):
                stats.abandoned += 1
                return
            conn = headers.get("connection", "").lower()
            close = conn == "close" or (version == "HTTP/1.0" and conn != "keep-alive")
            if writer.is_closing() or reader.at_eof():
                stats.abandoned += 1
                return
            writer.write(response[close])
            try:
                await writer.drain()
            except ConnectionError:
                stats.abandoned += 1
                return
            stats.served += 1
            stats.total += 1
            if close:
                return
    except (asyncio.IncompleteReadError, ConnectionError):
        return  # the peer closed the connection (between requests: normal)
    except ValueError:
        stats.errors += 1
        return
    except asyncio.CancelledError:
        return  # shutting down with requests in progress or queued
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay-ms", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=8, help="requests worked on at once; 0: no limit")
    ap.add_argument("--skip-abandoned", action="store_true",
                    help="drop a queued request whose client has gone instead of working on it")
    ap.add_argument("--body-file", help="response body (default: a 1024-byte JSON object)")
    ap.add_argument("--content-type", default="application/json")
    args = ap.parse_args()

    if args.body_file:
        with open(args.body_file, "rb") as f:
            body = f.read()
    else:
        prefix = b'{"status":"ok","pad":"'
        body = prefix + b"x" * (1024 - len(prefix) - 2) + b'"}'
    head = (
        "HTTP/1.1 200 OK\r\n"
        f"Content-Type: {args.content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    response = {
        False: (head + "\r\n").encode() + body,
        True: (head + "Connection: close\r\n\r\n").encode() + body,
    }
    delay = args.delay_ms / 1000.0
    slots = asyncio.Semaphore(args.workers) if args.workers > 0 else None
    stats = Stats()

    server = await asyncio.start_server(
        lambda r, w: serve(r, w, stats, slots, delay, response, args.skip_abandoned),
        host=args.host,
        port=args.port,
        backlog=4096,
        limit=MAX_HEAD,
        reuse_address=True,
    )
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def dump():
        print(stats.line("STATS"), flush=True)
        stats.reset()

    loop.add_signal_handler(signal.SIGUSR1, dump)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    print(
        f"limited-upstream: listening on {args.host}:{args.port}, delay {args.delay_ms:g} ms, "
        f"{args.workers or 'unlimited'} workers, {len(body)}-byte body",
        flush=True,
    )
    async with server:
        await stop
    print(f"limited-upstream: stopping, {stats.total} requests served in all", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
