"""Install wd-guard from a wheel into a scratch environment, as pre-commit and pip users get it.

An editable checkout is slower to start than an install: its import hook loads ``pathlib`` and
``re`` at every interpreter start, and where ``PYTHONDONTWRITEBYTECODE`` is set its modules are
compiled anew each run. Timings of start-up-bound runs (one small file) are only fair on the
real thing: a wheel built from this checkout (offline, no build isolation), installed with its
bytecode compiled, beside the libcst this interpreter already has.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parent.parent
_PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]


def build_wheel(work: Path) -> Path:
    """A wheel built under ``work`` from a copy of this checkout: offline, no build isolation."""
    source = work / "source"
    source.mkdir(parents=True, exist_ok=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("wd_guard", "lint"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    _run([*_PIP, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(work / "dist"), str(source)])
    [wheel] = (work / "dist").glob("wd_guard-*.whl")
    return wheel


def install(work: Path) -> List[str]:
    """Build and install the package under ``work``; the argv of its ``wd-lint`` command."""
    wheel = build_wheel(work)
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    # libcst (and nothing of this checkout) from the running environment: a path line in a
    # .pth file adds the folder without running the import hooks that folder's own .pth set up.
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    Path(purelib, "running-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([*_PIP, "--python", str(python), "install", "--no-deps", "--no-index", "--compile", str(wheel)])
    return [str(venv / "bin" / "wd-lint")]


def _run(argv: List[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stderr}")
