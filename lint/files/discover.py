"""Which files ``wd-lint`` reads: the named files, and under named folders the ``*.py`` files,
the notebooks (``*.ipynb``), and the files an ``include`` pattern selects (YAML configs, say).

Folders are walked in name order. Virtual environments (any folder holding a ``pyvenv.cfg``)
are always skipped; the default excludes (version-control and tool folders, ``build``,
``dist``, ``__pycache__``: ``SKIP_DIRS``) are skipped while walking unless the settings
replace them; ``exclude`` patterns apply to everything, named paths included, so that
pre-commit (which names every file) honours them. With ``respect_gitignore``, walks also skip
what ``.gitignore`` and ``.ignore`` files say (see ``ignores``). A folder called
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
from typing import Callable, Iterable, List, Optional, Sequence, Set, Tuple

from wd_guard.lint.files.ignores import Ignores

SKIP_DIRS = frozenset(
    {
        ".bzr", ".direnv", ".eggs", ".git", ".hg", ".hypothesis", ".ipynb_checkpoints", ".mypy_cache",
        ".nox", ".pytest_cache", ".ruff_cache", ".svn", ".tox", ".venv", "__pycache__", "__pypackages__",
        "_build", "build", "buck-out", "dist", "node_modules", "site-packages", "venv",
    }
)
SUFFIX = ".py"
SUFFIXES = (SUFFIX, ".ipynb")  # what a folder walk reads without being told

# Whether a path is excluded; ``walked`` is True for what a folder walk met, False for a path
# named on the command line (default excludes apply to the former only).
Excluded = Callable[[str, bool], bool]


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
    paths: Iterable[str],
    exclude: Sequence[str] = (),
    root: Optional[Path] = None,
    *,
    excluded: Optional[Excluded] = None,
    respect_gitignore: bool = False,
    include: Optional[Callable[[str], bool]] = None,
) -> Discovery:
    """The files under ``paths`` (the current folder when empty) that wd-lint should read.

    ``excluded`` decides what to skip (it then replaces ``exclude``, ``root`` and the default
    ``SKIP_DIRS``); ``respect_gitignore`` makes walks honour ignore files; ``include`` says
    which further files a walk takes besides ``SUFFIXES`` (see :func:`included`)."""
    if excluded is None:
        excluded = default_exclusion(exclude, (root or Path.cwd()).resolve())
    found = Discovery()
    for path in list(paths) or ["."]:
        if excluded(path, False):
            continue
        if not os.path.lexists(path):
            found.problems.append(Unlisted(path, "no such file or directory"))
        elif os.path.isdir(path):
            _walk(path, found, excluded, Ignores.above(path) if respect_gitignore else None, include)
        else:
            found.add_file(path)
    return found


def default_exclusion(exclude: Sequence[str], root: Path, skip: Iterable[str] = SKIP_DIRS) -> Excluded:
    """``exclude`` patterns anchored at ``root`` everywhere, and the folder names ``skip`` in walks."""
    names = frozenset(skip)

    def excluded(path: str, walked: bool) -> bool:
        return (walked and os.path.basename(path) in names) or is_excluded(path, exclude, root)

    return excluded


def _walk(
    top: str, found: Discovery, excluded: Excluded, ignores: Optional[Ignores], include: Optional[Callable[[str], bool]] = None
) -> None:
    # An explicit stack instead of recursion: trees of any depth, and no os.walk error hiding.
    stack, files = [(top, ignores)], []
    while stack:
        folder, rules = stack.pop()
        entries = _list(folder, found)
        if entries is None:
            continue
        subfolders = []
        for name, is_dir in entries:
            path = os.path.normpath(os.path.join(folder, name))
            if rules is not None and rules.ignored(path, is_dir):
                continue
            if is_dir:
                if not excluded(path, True):
                    subfolders.append((path, rules.enter(path) if rules is not None else None))
            elif (name.endswith(SUFFIXES) or (include is not None and include(path))) and not excluded(path, True):
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
