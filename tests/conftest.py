"""Settings for the whole suite."""

from __future__ import annotations

import os
from typing import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point the user cache folder into the test run's temporary folder, for every process the
    tests start (Lightning, matplotlib and the linter's tools may write there): a test run
    writes nothing into the home folder."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("user-cache"))
    yield
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous
