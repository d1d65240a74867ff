"""Fixtures for the tests of the README, the generated docs and the examples."""

from __future__ import annotations

from types import ModuleType

import pytest

from docs_helpers import ROOT, load_script


@pytest.fixture(scope="session")
def gen_docs() -> ModuleType:
    return load_script(ROOT / "scripts" / "gen_docs.py")
