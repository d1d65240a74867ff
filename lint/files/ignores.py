"""Ignore files in folder walks: ``.gitignore``, ``.ignore``, ``.git/info/exclude`` and git's
global excludes file, matched with pathspec's implementation of git's rules.

A walk starts with the ignore files of every folder above its top (a ``.gitignore`` at the
repository root applies to ``wd-lint src/``) and adds each folder's own as it goes down; a
pattern is read relative to the folder of the file that holds it, and the deepest match
decides, so ``!keep.py`` in a subfolder re-includes what a parent ignored. Inside a git
repository its ``.git/info/exclude`` and the global excludes file (``core.excludesFile``, or
``$XDG_CONFIG_HOME/git/ignore``) apply too. Only walks are filtered: a file named on the
command line is linted even when ignored. An ignore file that cannot be read is skipped.
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from pathspec import GitIgnoreSpec

IGNORE_FILES = (".gitignore", ".ignore")


@dataclass(frozen=True)
class Matcher:
    """The patterns of one ignore file (or several of one folder), anchored at ``base``."""

    base: str
    spec: GitIgnoreSpec

    def decide(self, path: str, is_dir: bool) -> Optional[bool]:
        """True: ignored; False: re-included by a ``!`` pattern; None: no pattern matched."""
        rel = os.path.relpath(path, self.base)
        if rel.startswith(".."):
            return None
        rel = rel.replace(os.sep, "/") + ("/" if is_dir else "")
        return self.spec.check_file(rel).include


class Ignores:
    """The ignore rules that apply inside a folder; ``enter`` gives those of a subfolder."""

    def __init__(self, matchers: Tuple[Matcher, ...] = ()) -> None:
        self.matchers = matchers

    @classmethod
    def above(cls, top: str) -> "Ignores":
        """The rules for the walk of ``top``: git's files of its repository and the ignore
        files of every folder from the filesystem root down to ``top`` itself."""
        top = os.path.abspath(top)
        folders = [str(folder) for folder in reversed(Path(top).parents)] + [top]
        matchers: List[Matcher] = []
        repository = _repository_root(top)
        if repository is not None:
            for extra in (_global_excludes(), os.path.join(repository, ".git", "info", "exclude")):
                lines = _read(extra) if extra else None
                if lines:
                    matchers.append(Matcher(repository, GitIgnoreSpec.from_lines(lines)))
        for folder in folders:
            found = _folder_matcher(folder)
            if found is not None:
                matchers.append(found)
        return cls(tuple(matchers))

    def enter(self, folder: str) -> "Ignores":
        """The rules inside ``folder``, a subfolder reached by the walk."""
        found = _folder_matcher(os.path.abspath(folder))
        return self if found is None else Ignores(self.matchers + (found,))

    def ignored(self, path: str, is_dir: bool) -> bool:
        """Whether the deepest ignore file with a matching pattern ignores ``path``."""
        path = os.path.abspath(path)
        for matcher in reversed(self.matchers):
            decision = matcher.decide(path, is_dir)
            if decision is not None:
                return decision
        return False


def _folder_matcher(folder: str) -> Optional[Matcher]:
    lines: List[str] = []
    for name in IGNORE_FILES:
        lines.extend(_read(os.path.join(folder, name)) or ())
    return Matcher(folder, GitIgnoreSpec.from_lines(lines)) if lines else None


def _read(path: str) -> Optional[Sequence[str]]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read().splitlines()
    except OSError:  # absent, a folder, or unreadable: no patterns from it
        return None


def _repository_root(folder: str) -> Optional[str]:
    for candidate in (folder, *map(str, Path(folder).parents)):
        if os.path.exists(os.path.join(candidate, ".git")):
            return candidate
    return None


@functools.lru_cache(maxsize=None)
def _global_excludes() -> Optional[str]:
    """git's ``core.excludesFile``, or its default, ``$XDG_CONFIG_HOME/git/ignore``."""
    try:
        done = subprocess.run(
            ["git", "config", "--path", "--get", "core.excludesFile"],
            capture_output=True, text=True, timeout=5, check=False,
        )
        configured = done.stdout.strip() if done.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):  # no git: its default location still applies
        configured = ""
    if configured:
        return os.path.expanduser(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "git", "ignore")
