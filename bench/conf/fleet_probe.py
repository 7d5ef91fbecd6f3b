#!/usr/bin/env python3
"""Propagation probe for bench/fleet.sh: makes CHANGES changes to route `orders` through the
nodes in turn (POST /api/v1/routes/orders/set with a new weight each time) and, after each,
polls every other node's GET /api/v1/config until its overrides show that weight. Prints one
line per (change, node): the time from the API's answer (the commit is done by then) to the
node running the change, in milliseconds.

Usage: fleet_probe.py TOKEN CHANGES TIMEOUT_S ADMIN_URL...
Loopback only; every wait is bounded by TIMEOUT_S.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse


def conn(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=10)


def request(c, method, path, token=None, body=None):
    headers = {"content-type": "application/json"} if body is not None else {}
    if token:
        headers["authorization"] = f"Bearer {token}"
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = c.getresponse()
    data = r.read()
    return r.status, data


def weight_of(c):
    status, data = request(c, "GET", "/api/v1/config")
    if status != 200:
        return None
    for o in json.loads(data).get("overrides", []):
        if o.get("route") == "orders":
            return o.get("weight")
    return None


def main():
    token, changes, timeout_s, admins = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
    writers = [conn(a) for a in admins]
    for i in range(1, changes + 1):
        node = i % len(admins)
        weight = (i * 37) % 100  # consecutive weights always differ (37 is prime to 100)
        status, data = request(
            writers[node], "POST", "/api/v1/routes/orders/set", token,
            {"stage": "canary", "weight": weight, "message": f"bench change {i}"},
        )
        answered = time.monotonic()
        if status != 200:
            print(f"error change {i} via node {node}: {status} {data[:200]!r}", file=sys.stderr)
            sys.exit(1)
        seen = {}

        def watch(k):
            c = conn(admins[k])
            deadline = answered + timeout_s
            while time.monotonic() < deadline:
                w = weight_of(c)
                if w is not None and abs(w - weight) < 1e-9:
                    seen[k] = (time.monotonic() - answered) * 1000.0
                    return
                time.sleep(0.001)

        threads = [threading.Thread(target=watch, args=(k,)) for k in range(len(admins)) if k != node]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for k in range(len(admins)):
            if k == node:
                continue
            if k not in seen:
                print(f"timeout change {i} via node {node}: node {k} did not run it within {timeout_s}s", file=sys.stderr)
                sys.exit(1)
            print(f"{i}\t{node}\t{k}\t{seen[k]:.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
