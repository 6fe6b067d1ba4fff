"""The suite tests the installed wheel, not the source tree."""

import sysconfig
from pathlib import Path

import upload_mock


def test_the_package_and_binary_under_test_are_the_installed_wheel():
    assert "site-packages" in Path(upload_mock.__file__).parts
    scripts = Path(sysconfig.get_path("scripts")).resolve()
    assert Path(upload_mock.binary_path()).resolve().parent == scripts
