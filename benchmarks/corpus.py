"""The files the linter benchmark reads: real ``.py`` files, copied into one scratch folder so
that every tool sees the same plain tree (no virtual environment or ``site-packages`` in the
path for a tool to skip, no cache of ours left in a user's folder)."""

from __future__ import annotations

import glob
import os
import shutil
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple

# Installed packages, relative to site-packages: Lightning, torch's optimizers and layers, and
# the training loop of transformers; library code, with training code and optimizers in it.
DEFAULT_SOURCES = (
    "lightning",
    "torch/optim",
    "torch/nn",
    "torch/distributions",
    "torch/utils/data",
    "torch/distributed/optim",
    "transformers/trainer*.py",
    "transformers/optimization.py",
    "transformers/training_args*.py",
)


@dataclass(frozen=True)
class Corpus:
    """The copied files under ``root``."""

    root: Path
    files: Tuple[Path, ...]
    labels: Tuple[str, ...]

    @property
    def lines(self) -> int:
        return sum(path.read_bytes().count(b"\n") for path in self.files)

    @property
    def size(self) -> int:
        return sum(path.stat().st_size for path in self.files)


def site_packages() -> List[Path]:
    """The folders this interpreter installs packages into."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys(Path(paths[key]) for key in ("purelib", "platlib")))


def resolve(sources: Sequence[str]) -> List[Tuple[str, List[Path]]]:
    """Each source (a folder or glob, absolute or relative to site-packages) with its files."""
    resolved = []
    for source in sources:
        bases = [Path(source)] if os.path.isabs(source) or os.path.exists(source) else [base / source for base in site_packages()]
        files: List[Path] = []
        for base in bases:
            files.extend(_python_files(base))
        resolved.append((source, sorted(set(files))))
    return resolved


def _python_files(base: Path) -> Iterable[Path]:
    if base.is_dir():
        return (path for path in base.rglob("*.py") if path.is_file() and "__pycache__" not in path.parts)
    return (Path(match) for match in glob.glob(str(base)) if match.endswith(".py") and os.path.isfile(match))


def build(sources: Sequence[str], destination: Path, copies: int = 1) -> Corpus:
    """Copy the sources' files under ``destination`` (``copies`` times, in sibling folders)."""
    copied: List[Path] = []
    labels = []
    for source, files in resolve(sources):
        if not files:
            continue
        labels.append(f"{source} ({len(files)})")
        anchor = _anchor(source, files)
        for copy in range(copies):
            for path in files:
                target = destination / f"copy{copy}" / _slug(source) / path.relative_to(anchor)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                copied.append(target)
    return Corpus(destination, tuple(copied), tuple(labels))


def _anchor(source: str, files: Sequence[Path]) -> Path:
    common = Path(os.path.commonpath([str(path) for path in files]))
    return common if common.is_dir() and len(files) > 1 else files[0].parent


def _slug(source: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in source.strip("/"))[-60:] or "files"
