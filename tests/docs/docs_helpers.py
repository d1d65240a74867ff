"""Paths and loaders shared by the tests of the README, the generated docs and the examples."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def load_script(path: Path) -> ModuleType:
    """Import a script that is not part of the package (``scripts/``, ``examples/``) by path."""
    spec = importlib.util.spec_from_file_location(f"_wd_guard_docs_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
