#!/usr/bin/env python3
"""A webhook receiver for OnlyFansAPI's media_uploads events that passes every rule of
`conformance webhooks`: it checks the Signature over the raw body before anything else,
processes each event once by its X-OFAPI-Idempotency-Key (duplicates, retries and redeliveries
are acknowledged, not processed again), handles each event on its own (so order does not
matter), and answers at once.

Usage: good_receiver.py [SECRET]   (or CONFORMANCE_WEBHOOK_SECRET)
It prints its URL as its first line. POST <url> receives webhooks; GET <url> answers the
events processed, one JSON object per processing: the contract the grader reads.
Python 3 standard library only.
"""

import hashlib
import hmac
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = (sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CONFORMANCE_WEBHOOK_SECRET", "")).encode()
LOCK = threading.Lock()
PROCESSED = []  # what GET answers
SEEN = set()  # idempotency keys already processed
UPLOADS = {}  # prefixed_id -> last known status: each event is applied on its own


def signature_ok(body, sent):
    if not SECRET:
        return True  # a webhook without a signing secret is sent unsigned
    expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    return sent is not None and hmac.compare_digest(expected, sent)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)  # the raw bytes: the signature covers exactly these
        if not signature_ok(body, self.headers.get("Signature")):
            return self.answer(401, {"error": "bad signature"})
        try:
            envelope = json.loads(body)
        except ValueError:
            return self.answer(400, {"error": "not JSON"})
        key = self.headers.get("X-OFAPI-Idempotency-Key") or hashlib.sha256(body).hexdigest()
        payload = envelope.get("payload") or {}
        with LOCK:
            if key in SEEN:
                return self.answer(200, {"duplicate": True})
            SEEN.add(key)
            UPLOADS[payload.get("prefixed_id")] = payload.get("status")
            PROCESSED.append(
                {
                    "idempotency_key": key,
                    "event": envelope.get("event"),
                    "prefixed_id": payload.get("prefixed_id"),
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
        sys.stderr.write("good_receiver: " + (format % args) + "\n")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
