#!/usr/bin/env python3
"""A small HTTP/1.1 service for bench/rollback.sh: legacy or modern, with failure injection.

Answers every request (any method, any path) at once with 200 and a short JSON body, keeping
the connection alive. Request bodies are read (Content-Length or chunked) and discarded.

Control endpoints (the script talks to them directly, never through ficus):
  POST /_control/fail?rate=R   from now on answer 503 to a random share R (0..1) of the
                               requests; answers {"rate": R, "at_ms": <unix ms of the switch>}
  GET  /_control/log           every request served so far, one line each:
                               at_ms  method  status  shadow(0/1)
  GET  /_control/health        200

`--listen NAME=PORT` may be repeated: both services then share one process (and one event
loop), each with its own failure switch and log.

A request carrying `X-Ficus-Shadow: 1` (ficus's mirror copy) is served like any other and
logged with shadow=1, so real traffic can be told from copies.

Python 3.11 standard library only.
"""

import argparse
import asyncio
import json
import random
import sys
import time
from urllib.parse import parse_qs, urlsplit


class State:
    def __init__(self, name, seed):
        self.name = name
        self.fail_rate = 0.0
        self.rng = random.Random(seed)
        self.log = []  # (at_ms, method, status, shadow)


def response(status, body, ctype="application/json", close=False):
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}.get(status, "OK")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n"
        + ("Connection: close\r\n" if close else "")
        + "\r\n"
    )
    return head.encode() + body


async def read_body(reader, headers):
    length = headers.get("content-length")
    if length is not None:
        n = int(length)
        if n:
            await reader.readexactly(n)
        return
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return
            await reader.readexactly(size + 2)


def control(state, method, target):
    url = urlsplit(target)
    if url.path == "/_control/fail" and method == "POST":
        q = parse_qs(url.query)
        try:
            rate = float(q.get("rate", ["1"])[0])
        except ValueError:
            return response(400, b'{"error":"rate must be a number"}')
        if not 0.0 <= rate <= 1.0:
            return response(400, b'{"error":"rate must be in [0, 1]"}')
        at_ms = time.time() * 1000.0
        state.fail_rate = rate
        return response(200, json.dumps({"rate": rate, "at_ms": at_ms}).encode())
    if url.path == "/_control/log" and method == "GET":
        lines = "".join(f"{at:.3f}\t{m}\t{s}\t{sh}\n" for at, m, s, sh in state.log)
        return response(200, lines.encode(), ctype="text/tab-separated-values")
    if url.path == "/_control/health":
        return response(200, b'{"ok":true}')
    return response(404, b'{"error":"unknown control endpoint"}')


async def serve(state, reader, writer):
    ok_body = json.dumps({"status": "ok", "source": state.name}).encode()
    fail_body = json.dumps({"status": "failing", "source": state.name, "injected": True}).encode()
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head[:-4].decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                writer.write(response(400, b'{"error":"bad request line"}', close=True))
                await writer.drain()
                return
            method, target, version = parts
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            await read_body(reader, headers)
            close = version == "HTTP/1.0" or "close" in headers.get("connection", "").lower()
            if target.startswith("/_control/"):
                out = control(state, method, target)
            else:
                status = 200
                if state.fail_rate > 0.0 and state.rng.random() < state.fail_rate:
                    status = 503
                shadow = 1 if headers.get("x-ficus-shadow") == "1" else 0
                state.log.append((time.time() * 1000.0, method, status, shadow))
                out = response(status, ok_body if status == 200 else fail_body, close=close)
            writer.write(out)
            await writer.drain()
            if close:
                return
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        return
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument(
        "--listen",
        action="append",
        required=True,
        metavar="NAME=PORT",
        help="a service (legacy or modern: goes into the body) on a port; repeat it to run "
        "both in this one process, each with its own failure switch and log",
    )
    ap.add_argument("--seed", type=int, default=1, help="seed of the failure draws")
    args = ap.parse_args()
    servers = []
    for i, spec in enumerate(args.listen):
        name, _, port = spec.partition("=")
        if not name or not port.isdigit():
            ap.error(f"--listen wants NAME=PORT, got {spec!r}")
        state = State(name, args.seed + i)
        servers.append(
            await asyncio.start_server(
                lambda r, w, st=state: serve(st, r, w), args.host, int(port), backlog=1024, limit=1 << 20
            )
        )
        print(f"rollback-upstream {name} on {args.host}:{port}", file=sys.stderr, flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
