"""The shared mock for this suite accepts one API key, so a wrong key gets a real 401."""

import pytest

API_KEY = "sdk-test-key"


@pytest.fixture(scope="session")
def upload_mock_args():
    return ["--api-key", API_KEY]

# `pytester` runs a test file in a fresh pytest, to check what the plugin shows when a test fails.
pytest_plugins = ["pytester"]
