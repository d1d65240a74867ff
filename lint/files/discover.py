"""Which files ``wd-lint`` reads: the named files, and under named folders the ``*.py`` files,
the notebooks (``*.ipynb``), and the files an ``include`` pattern selects (YAML configs, say).

Folders are walked in name order. Version-control and tool folders, virtual environments
(any folder holding a ``pyvenv.cfg``), ``build``, ``dist`` and ``__pycache__`` are skipped while
walking; the ``exclude`` patterns of the configuration apply to everything, named paths
included, so that pre-commit (which names every file) honours them. A folder called
``something.py`` is a folder. Symbolic links are followed, each real folder is read once, so
link loops end. Paths that cannot be listed are returned as problems, never raised.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, List, Optional, Sequence, Set, Tuple

SKIP_DIRS = frozenset(
    {
        ".bzr", ".direnv", ".eggs", ".git", ".hg", ".hypothesis", ".ipynb_checkpoints", ".mypy_cache",
        ".nox", ".pytest_cache", ".ruff_cache", ".svn", ".tox", ".venv", "__pycache__", "__pypackages__",
        "_build", "build", "buck-out", "dist", "node_modules", "site-packages", "venv",
    }
)
SUFFIX = ".py"
SUFFIXES = (SUFFIX, ".ipynb")  # what a folder walk reads without being told


@dataclass(frozen=True)
class Unlisted:
    """A named path that does not exist, or a folder that could not be listed."""

    path: str
    reason: str


@dataclass
class Discovery:
    """The files to lint, in order and without duplicates, and the paths that failed."""

    files: List[str] = field(default_factory=list)
    problems: List[Unlisted] = field(default_factory=list)
    _seen_files: Set[str] = field(default_factory=set, repr=False)
    _seen_dirs: Set[Tuple[int, int]] = field(default_factory=set, repr=False)

    def add_file(self, path: str) -> None:
        key = os.path.realpath(path)
        if key not in self._seen_files:
            self._seen_files.add(key)
            self.files.append(path)


def matches(pattern: str, relpath: str) -> bool:
    """Whether a glob ``pattern`` matches a relative POSIX path or one of its parent folders.

    A pattern without a slash matches any single name in the path (``build``, ``*_pb2.py``);
    a pattern with one is anchored at the configuration's folder (``src/generated/``).
    """
    parts = PurePosixPath(relpath).parts
    anchored = "/" in pattern.rstrip("/")
    pattern = pattern.rstrip("/") or pattern
    if not anchored:
        return any(fnmatch.fnmatchcase(part, pattern) for part in parts)
    prefixes = ("/".join(parts[: i + 1]) for i in range(len(parts)))
    return any(fnmatch.fnmatchcase(prefix, pattern.lstrip("/")) for prefix in prefixes)


def relative_to(path: str, root: Path) -> Optional[str]:
    """``path`` relative to ``root`` in POSIX form, or None when it lies outside."""
    try:
        rel = Path(os.path.abspath(path)).relative_to(root)
    except ValueError:
        return None
    return rel.as_posix()


def is_excluded(path: str, patterns: Sequence[str], root: Path) -> bool:
    """Whether a configured pattern excludes ``path`` (names match even outside ``root``)."""
    if not patterns:
        return False
    rel = relative_to(path, root)
    if rel is None:
        rel = PurePosixPath(*Path(os.path.abspath(path)).parts[1:]).as_posix()
        patterns = [p for p in patterns if "/" not in p.rstrip("/")]
    return rel not in ("", ".") and any(matches(p, rel) for p in patterns)


def included(path: str, patterns: Sequence[str], root: Path) -> bool:
    """Whether an ``include`` pattern selects ``path``. Patterns are globs relative to the
    configuration's folder, where ``**/`` stands for any number of folders; one without a slash
    matches the file's name in any folder."""
    rel = relative_to(path, root)
    if rel is None or not patterns:
        return False
    name = rel.rsplit("/", 1)[-1]
    return any(_glob(pattern).fullmatch(rel if "/" in pattern else name) for pattern in patterns)


def _glob(pattern: str) -> "re.Pattern[str]":
    parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern.lstrip("/"))
    table = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(table.get(part, re.escape(part)) for part in parts))


def discover(
    paths: Iterable[str], exclude: Sequence[str] = (), root: Optional[Path] = None, include: Sequence[str] = ()
) -> Discovery:
    """The files under ``paths`` (the current folder when empty) that wd-lint should read."""
    root = (root or Path.cwd()).resolve()
    found = Discovery()
    for path in list(paths) or ["."]:
        if is_excluded(path, exclude, root):
            continue
        if not os.path.lexists(path):
            found.problems.append(Unlisted(path, "no such file or directory"))
        elif os.path.isdir(path):
            _walk(path, found, exclude, root, include)
        else:
            found.add_file(path)
    return found


def _walk(top: str, found: Discovery, exclude: Sequence[str], root: Path, include: Sequence[str] = ()) -> None:
    # An explicit stack instead of recursion: trees of any depth, and no os.walk error hiding.
    stack, files = [top], []
    while stack:
        folder = stack.pop()
        entries = _list(folder, found)
        if entries is None:
            continue
        subfolders = []
        for name, is_dir in entries:
            path = os.path.normpath(os.path.join(folder, name))
            if is_dir:
                if name not in SKIP_DIRS and not is_excluded(path, exclude, root):
                    subfolders.append(path)
            elif (name.endswith(SUFFIXES) or included(path, include, root)) and not is_excluded(path, exclude, root):
                files.append(path)
        stack.extend(reversed(subfolders))
    for path in sorted(files, key=lambda p: Path(p).parts):
        found.add_file(path)


def _list(folder: str, found: Discovery) -> Optional[List[Tuple[str, bool]]]:
    """Sorted (name, is_folder) entries of a folder not seen before, or None."""
    try:
        info = os.stat(folder)
        if (info.st_dev, info.st_ino) in found._seen_dirs:
            return None
        found._seen_dirs.add((info.st_dev, info.st_ino))
        if os.path.isfile(os.path.join(folder, "pyvenv.cfg")):
            return None
        with os.scandir(folder) as scan:
            entries = [(entry.name, _is_dir(entry)) for entry in scan]
    except OSError as exc:
        found.problems.append(Unlisted(folder, f"cannot list folder: {exc.strerror or exc}"))
        return None
    return sorted(entries)


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return stat.S_ISDIR(entry.stat(follow_symlinks=True).st_mode)
    except OSError:  # a dangling link or a loop: a file name to report later, if it ends in .py
        return False
