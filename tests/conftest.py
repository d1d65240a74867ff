"""Settings for the whole suite."""

from __future__ import annotations

import os
from typing import Dict, Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point the user cache folder (where linter workers keep compiled dataclass methods, see
    ``wd_guard.lint.compiled``) into the test run's temporary folder, for every process the
    tests start: a test run writes nothing into the home folder."""
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("user-cache"))
    yield
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture
def user_env(tmp_path: "os.PathLike[str]") -> Dict[str, str]:
    """An environment for a linter subprocess as a user's: Python writes bytecode (and the
    compiled-methods table), and the user cache folder is this test's own ``cache``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["XDG_CACHE_HOME"] = os.path.join(os.fspath(tmp_path), "cache")
    return env
