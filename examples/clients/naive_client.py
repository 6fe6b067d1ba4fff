#!/usr/bin/env python3
"""A client with the mistakes the grader exists to catch. Do not copy it.

It polls in a tight loop, ignores Retry-After, re-uploads whenever a poll goes wrong, polls
twice more after the job has ended "to be sure", and exits 0 whatever happened.

Usage: naive_client.py PROVIDER BASE_URL API_KEY ACCOUNT FILE
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid


def upload(provider, base_url, headers, account, name, data):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    if provider == "fansly":
        url = f"{base_url}/api/fansly/{account}/media/upload"
    else:
        url = f"{base_url}/api/{account}/media/upload"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"async\"\r\n\r\ntrue\r\n").encode() + body
    request = urllib.request.Request(url, data=body, method="POST", headers={
        **headers, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        reply = json.loads(response.read())
    if provider == "fansly":
        job = reply["data"]["jobId"]
        return f"{base_url}/api/fansly/media/upload/{job}/status"
    return f"{base_url}/api/{account}/media/uploads/{reply['prefixed_id']}/status"


def main():
    provider, base_url, api_key, account, path = sys.argv[1:6]
    headers = {"x-api-key": api_key} if provider == "fansly" else {"Authorization": f"Bearer {api_key}"}
    with open(path, "rb") as handle:
        data = handle.read()
    status_url = upload(provider, base_url, headers, account, os.path.basename(path), data)
    started = time.monotonic()
    extra = None
    while time.monotonic() - started < 6:
        try:
            with urllib.request.urlopen(urllib.request.Request(status_url, headers=headers), timeout=30) as response:
                body = json.loads(response.read())
        except Exception:  # Any hiccup: start over with a fresh upload.
            status_url = upload(provider, base_url, headers, account, os.path.basename(path), data)
            continue
        state = body["data"]["state"] if provider == "fansly" else body["status"]
        if state in ("completed", "failed"):
            extra = 2 if extra is None else extra - 1
            if extra == 0:
                break
        time.sleep(0.01)
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
