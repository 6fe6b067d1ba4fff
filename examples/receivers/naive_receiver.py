#!/usr/bin/env python3
"""A webhook receiver that makes the usual mistakes, for `conformance webhooks` to catch: it
trusts any request (no Signature check) and processes every delivery it gets, so a duplicate,
a retry or a redelivery of one event is processed again.

Usage: naive_receiver.py   It prints its URL as its first line; GET <url> answers the events
processed, one JSON object per processing. Python 3 standard library only.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
PROCESSED = []


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        envelope = json.loads(body)
        with LOCK:
            PROCESSED.append(
                {
                    "idempotency_key": self.headers.get("X-OFAPI-Idempotency-Key"),
                    "event": envelope.get("event"),
                    "prefixed_id": (envelope.get("payload") or {}).get("prefixed_id"),
                }
            )
        self.answer(200, {"ok": True})

    def do_GET(self):
        with LOCK:
            self.answer(200, PROCESSED)

    def answer(self, status, document):
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        sys.stderr.write("naive_receiver: " + (format % args) + "\n")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
