#!/usr/bin/env python3
"""Slow HTTP/1.1 upstream for bench/shadow.sh: the "modern" service.

Answers every request after DELAY_MS milliseconds with a fixed body (the same
1 KB JSON as the legacy nginx upstream), over keep-alive connections, any
number of requests in progress at once (one asyncio task per connection; the
delay is an asyncio sleep, so concurrent requests overlap).

Python 3 standard library only. Listens on 127.0.0.1 only.

    python3 slow-upstream.py --port 18181 --delay-ms 200 --body-file payload.json

Signals:
  SIGUSR1  prints one line
           "STATS served=N shadow=N peak_in_flight=N connections=N errors=N"
           (counts since the previous SIGUSR1) to stdout, then resets them.
           shadow counts requests carrying X-Ficus-Shadow (ficus's copies),
           connections the connections accepted (keep-alive: few).
  SIGTERM / SIGINT  prints the totals since start and exits.
"""

import argparse
import asyncio
import signal
import sys

MAX_HEAD = 64 * 1024


class Stats:
    def __init__(self):
        self.in_flight = 0
        self.reset()
        self.total = 0

    def reset(self):
        self.served = 0
        self.shadow = 0
        self.conns = 0
        self.errors = 0
        self.peak = self.in_flight

    def line(self, tag):
        return (
            f"{tag} served={self.served} shadow={self.shadow} peak_in_flight={self.peak} "
            f"connections={self.conns} errors={self.errors}"
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
                # trailers until an empty line
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return
            await reader.readexactly(size + 2)
    length = int(headers.get("content-length", "0") or 0)
    if length > 0:
        await reader.readexactly(length)


async def serve(reader, writer, stats, delay, response):
    stats.conns += 1
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError:
                stats.errors += 1
                return
            version, headers = parse_head(head[:-4])
            await read_body(reader, headers)
            stats.in_flight += 1
            stats.peak = max(stats.peak, stats.in_flight)
            try:
                await asyncio.sleep(delay)
            finally:
                stats.in_flight -= 1
            conn = headers.get("connection", "").lower()
            close = conn == "close" or (version == "HTTP/1.0" and conn != "keep-alive")
            writer.write(response[close])
            await writer.drain()
            stats.served += 1
            stats.total += 1
            if "x-ficus-shadow" in headers:
                stats.shadow += 1
            if close:
                return
    except (asyncio.IncompleteReadError, ConnectionError):
        return  # the peer closed the connection (between requests: normal)
    except ValueError:
        stats.errors += 1
        return
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--delay-ms", type=float, default=200.0)
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
    stats = Stats()

    server = await asyncio.start_server(
        lambda r, w: serve(r, w, stats, delay, response),
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
        f"slow-upstream: listening on {args.host}:{args.port}, delay {args.delay_ms:g} ms, "
        f"{len(body)}-byte body",
        flush=True,
    )
    async with server:
        await stop
    print(f"slow-upstream: stopping, {stats.total} requests served in all", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
