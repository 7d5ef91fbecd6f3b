#!/usr/bin/env python3
"""An OTLP/HTTP sink for bench/proxy.sh: accepts POST /v1/traces (protobuf), answers 200
with an empty ExportTraceServiceResponse, and counts export requests and bytes, so the
traced proxies export to a collector that is always there and always fast. Writes its
counts to the file given as the second argument every second and when stopped.

Usage: otlp-sink.py PORT COUNTS_FILE
"""
import http.server
import signal
import socketserver
import sys
import threading
import time

PORT = int(sys.argv[1])
OUT = sys.argv[2]
lock = threading.Lock()
counts = {"requests": 0, "bytes": 0, "other": 0}


def dump():
    with lock:
        text = " ".join(f"{k}={v}" for k, v in counts.items())
    with open(OUT, "w") as f:
        f.write(text + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        self.rfile.read(n)
        with lock:
            if self.path == "/v1/traces":
                counts["requests"] += 1
                counts["bytes"] += n
            else:
                counts["other"] += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def stop(*_):
    dump()
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
server = Server(("127.0.0.1", PORT), Handler)


def ticker():
    while True:
        time.sleep(1)
        dump()


threading.Thread(target=ticker, daemon=True).start()
server.serve_forever()
