"""pytest fixtures for the upload mock, registered through the ``pytest11`` entry point.

- ``upload_mock_server``: one ``mock-server`` process for the whole test run, on a free port,
  with a manual clock. Pass flags with ``--upload-mock-arg=--scenario=...`` (repeatable), or
  override the ``upload_mock_args`` fixture.
- ``upload_mock``: a fresh :class:`upload_mock.Session` per test, so tests never see each
  other's jobs, clocks or journals, and can run against one server. The session is forgotten
  after the test.

When a test that used ``upload_mock`` fails, what the server logged during that test is added
to the report as a ``mock-server stderr`` section.
"""

from __future__ import annotations

import pytest

from . import MockServer, Session

_OFFSET_KEY = pytest.StashKey[int]()
_SERVER_KEY = pytest.StashKey[MockServer]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("upload-mock")
    group.addoption(
        "--upload-mock-arg",
        action="append",
        default=[],
        help="an extra mock-server flag for the shared server, e.g. --upload-mock-arg=--enforce-rate-limits",
    )


@pytest.fixture(scope="session")
def upload_mock_args(request: pytest.FixtureRequest) -> list:
    """Extra flags for the shared server: ``--upload-mock-arg`` values by default; override
    this fixture in a ``conftest.py`` to fix them for a suite (``["--api-key", "k"]``)."""
    return list(request.config.getoption("--upload-mock-arg"))


@pytest.fixture(scope="session")
def upload_mock_server(upload_mock_args: list):
    """The shared ``mock-server`` process (manual clock, free port)."""
    with MockServer(upload_mock_args) as server:
        yield server


@pytest.fixture
def upload_mock(upload_mock_server: MockServer, request: pytest.FixtureRequest):
    """A session of the shared server for this test only."""
    request.node.stash[_SERVER_KEY] = upload_mock_server
    request.node.stash[_OFFSET_KEY] = upload_mock_server.stderr_offset()
    session: Session = upload_mock_server.session()
    yield session
    try:
        session.reset()
    except Exception:  # A stopped server has nothing left to forget.
        pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    server = item.stash.get(_SERVER_KEY, None)
    if server is None or not report.failed:
        return
    log = server.stderr(item.stash.get(_OFFSET_KEY, 0))
    if log.strip():
        report.sections.append(("mock-server stderr", log))
