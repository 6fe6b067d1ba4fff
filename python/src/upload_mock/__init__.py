"""Start the upload mock (``mock-server``) from Python and drive it the way tests do.

The wheel installs the ``mock-server`` binary beside this package, so nothing here needs Rust.
A :class:`MockServer` is one process; a :class:`Session` is one test's isolated slice of it (its
own jobs numbered from 1, its own clock, default scenario and journal), reached by sending the
``X-Mock-Session`` header that :attr:`Session.headers` carries.

Only the standard library is used, so the package adds no dependency to a test environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Union

__all__ = ["MockServer", "Session", "AdminError", "binary_path"]

#: How long a freshly started server may take to print its address.
START_TIMEOUT_S = 30.0


class AdminError(RuntimeError):
    """The admin API refused a request: ``status`` and the mock's ``{"error": {code, message}}``."""

    def __init__(self, status: int, body: Any):
        self.status = status
        self.body = body
        detail = body.get("error", body) if isinstance(body, dict) else body
        super().__init__(f"admin API answered {status}: {detail}")


def binary_path() -> str:
    """Where the ``mock-server`` binary is: ``$UPLOAD_MOCK_BINARY``, the scripts directory of
    this Python environment (where the wheel installs it), or ``PATH``."""
    explicit = os.environ.get("UPLOAD_MOCK_BINARY")
    if explicit:
        return explicit
    name = "mock-server.exe" if sys.platform == "win32" else "mock-server"
    candidates = [Path(sysconfig.get_path("scripts")) / name, Path(sys.executable).parent / name]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("mock-server")
    if found:
        return found
    raise FileNotFoundError(
        "mock-server binary not found: install the upload-mock wheel into this environment, "
        "or set UPLOAD_MOCK_BINARY"
    )


class MockServer:
    """One ``mock-server`` process on a free loopback port.

    ``clock="manual"`` (the default) makes time stand still until a test moves it, so jobs
    complete and links expire exactly when the test says. Extra command-line flags go in
    ``args`` (``["--scenario", "flaky-5xx"]``). Use it as a context manager, or call
    :meth:`stop`.
    """

    def __init__(
        self,
        args: Iterable[str] = (),
        *,
        clock: str = "manual",
        binary: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
    ):
        self._stderr = tempfile.NamedTemporaryFile(prefix="mock-server-", suffix=".log", delete=False)
        command = [binary or binary_path(), "--bind", "127.0.0.1:0", "--clock", clock, *args]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, **(env or {})},
            text=True,
        )
        self.base_url = self._read_base_url()
        # Keep draining stdout so the server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _read_base_url(self) -> str:
        ready: dict = {}

        def read() -> None:
            assert self.process.stdout is not None
            ready["line"] = self.process.stdout.readline()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        line = ready.get("line", "")
        prefix = "mock-server listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(
                f"mock-server did not start (first line {line!r}); its stderr:\n{self.stderr()}"
            )
        return line[len(prefix):].strip()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for _ in self.process.stdout:
            pass

    def stderr(self, since: int = 0) -> str:
        """What the server wrote to stderr, from byte offset ``since``."""
        with open(self._stderr.name, "rb") as handle:
            handle.seek(since)
            return handle.read().decode("utf-8", "replace")

    def stderr_offset(self) -> int:
        """The current end of the server's stderr, to read only what comes after it."""
        return os.path.getsize(self._stderr.name)

    def session(self, name: Optional[str] = None) -> "Session":
        """A new isolated session (a fresh random name unless one is given)."""
        return Session(self, name or f"pytest-{uuid.uuid4().hex[:12]}")

    def admin(self, method: str, path: str, body: Any = None, headers: Optional[Mapping[str, str]] = None) -> Any:
        """One admin API request (``path`` under ``/__admin/``); the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}/__admin/{path}",
            data=data,
            method=method,
            headers={"content-type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            raise AdminError(err.code, body) from None
        return json.loads(raw) if raw else None

    def stop(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL after 10 s) and removes its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()

    def __enter__(self) -> "MockServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        try:
            os.unlink(self._stderr.name)
        except OSError:
            pass


Duration = Union[str, float, int]


class Session:
    """One test's isolated view of a :class:`MockServer`.

    Send :attr:`headers` (or :meth:`fansly_headers` / :meth:`onlyfans_headers`, which add a
    key) with every request the client under test makes; the admin helpers below act on this
    session only.
    """

    def __init__(self, server: MockServer, name: str):
        self.server = server
        self.name = name

    @property
    def base_url(self) -> str:
        """The mock's origin, e.g. ``http://127.0.0.1:41234``: point the client here."""
        return self.server.base_url

    @property
    def headers(self) -> dict:
        """The header that puts a request in this session: ``{"X-Mock-Session": name}``."""
        return {"X-Mock-Session": self.name}

    def fansly_headers(self, api_key: str = "test") -> dict:
        """What a Fansly client sends: its key and the session."""
        return {"x-api-key": api_key, **self.headers}

    def onlyfans_headers(self, api_key: str = "test") -> dict:
        """What an OnlyFans client sends: its bearer key and the session."""
        return {"Authorization": f"Bearer {api_key}", **self.headers}

    def _admin(self, method: str, path: str, body: Any = None) -> Any:
        return self.server.admin(method, path, body, headers=self.headers)

    def now(self) -> datetime:
        """This session's clock."""
        clock = self._admin("GET", "clock")
        return datetime.fromtimestamp(clock["unix_ms"] / 1000, tz=timezone.utc)

    def advance(self, by: Duration) -> datetime:
        """Moves this session's clock forward: ``"5h 1s"``, ``"500ms"``, or seconds."""
        body = {"by": by} if isinstance(by, str) else {"seconds": by}
        self._admin("POST", "clock/advance", body)
        return self.now()

    def set_clock(self, at: Union[datetime, str, int]) -> datetime:
        """Sets this session's clock (never backwards): a datetime, an RFC 3339 text, or Unix ms."""
        if isinstance(at, datetime):
            body: dict = {"unix_ms": int(at.timestamp() * 1000)}
        elif isinstance(at, str):
            body = {"at": at}
        else:
            body = {"unix_ms": at}
        self._admin("POST", "clock/set", body)
        return self.now()

    def use_scenario(self, name: str) -> None:
        """The scenario this session's later uploads follow (``"rate-limited"``, ...)."""
        self._admin("PUT", "scenario", {"name": name})

    def journal(self, route: Optional[str] = None, job: Optional[str] = None, method: Optional[str] = None) -> list:
        """The requests this session's clients sent, oldest first, filtered as the admin API does."""
        query = {"session": self.name}
        for key, value in (("route", route), ("job", job), ("method", method)):
            if value is not None:
                query[key] = value
        return self.server.admin("GET", "journal?" + urllib.parse.urlencode(query))["entries"]

    def jobs(self) -> list:
        """This session's jobs, with the state a poll would see now."""
        return self._admin("GET", "jobs")["jobs"]

    def job(self, provider: str, job_id: str) -> dict:
        """One job of this session, by provider (``fansly``/``onlyfans``) and id."""
        for job in self.jobs():
            if job["provider"] == provider and job["id"] == job_id:
                return job
        raise KeyError(f"no {provider} job {job_id!r} in session {self.name}")

    def complete(self, provider: str, job_id: str) -> Any:
        """Ends a running job now, completed."""
        return self._admin("POST", f"jobs/{provider}/{job_id}", {"outcome": "completed"})

    def fail(self, provider: str, job_id: str, reason: str) -> Any:
        """Ends a running job now, failed with the provider's error text ``reason``."""
        return self._admin("POST", f"jobs/{provider}/{job_id}", {"outcome": {"failed": reason}})

    def pin(self, provider: str, job_id: str, state: str, progress: int = 0) -> Any:
        """Holds a running job in ``state`` (``queued``/``processing``) at ``progress``."""
        return self._admin("POST", f"jobs/{provider}/{job_id}", {"state": state, "progress": progress})

    def reset(self) -> None:
        """Forgets this session: its jobs, stored files, clock and scenario."""
        self.server.admin("DELETE", f"sessions/{urllib.parse.quote(self.name, safe='')}")
