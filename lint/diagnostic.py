"""The data passed between the linter's stages: a Job in, an Outcome out.

A Job is one decoded source to analyse; its Outcome holds the Diagnostics found (one per
finding, located in the source) or the Problem that stopped it.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field, replace
from typing import FrozenSet, Optional, Tuple

from wd_guard.catalogue import Severity, get_rule


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Edit:
    """Replace ``text[start:end]`` (character offsets into the file's decoded text) by ``content``.

    ``location`` and ``end_location`` are the same range as 1-based (line, column) pairs, set
    once the text is known (``Fix.located``) for reports that show them (JSON)."""

    start: int
    end: int
    content: str
    location: Optional[Tuple[int, int]] = field(default=None, compare=False)
    end_location: Optional[Tuple[int, int]] = field(default=None, compare=False)


@dataclass(frozen=True)
class Fix:
    """A rewrite offered with a diagnostic.

    ``unsafe`` fixes change what the code does (all of wd-lint's do: they change how or where
    decay applies), so they are applied only with ``--unsafe-fixes`` and shown as available
    otherwise. The edits never overlap and are sorted by position.
    """

    title: str
    edits: Tuple[Edit, ...]
    unsafe: bool = True

    def apply(self, text: str) -> str:
        """``text`` with the edits made."""
        for edit in sorted(self.edits, key=lambda e: e.start, reverse=True):
            text = text[: edit.start] + edit.content + text[edit.end :]
        return text

    def located(self, text: str) -> "Fix":
        """This fix with the line and column of each edit in ``text``, the text it was made for."""
        starts = [0] + [match.end() for match in _LINE_BREAK.finditer(text)]

        def where(offset: int) -> Tuple[int, int]:
            line = bisect.bisect_right(starts, offset)
            return line, offset - starts[line - 1] + 1

        edits = tuple(replace(e, location=where(e.start), end_location=where(e.end)) for e in self.edits)
        return replace(self, edits=edits)

    @property
    def span(self) -> Tuple[int, int]:
        """The smallest range that holds every edit."""
        return min(e.start for e in self.edits), max(e.end for e in self.edits)


@dataclass(frozen=True)
class Diagnostic:
    """A rule's finding at a place in a file. Lines and columns are 1-based.

    ``fix`` is the rewrite the rule offers for this finding, if any; it does not take part in
    comparisons. In a notebook, ``cell`` is the cell's number (1-based, every cell counted) and
    the lines are lines of that cell.
    """

    code: str
    message: str
    line: int
    column: int
    end_line: int
    end_column: int
    path: str = ""
    fix: Optional[Fix] = field(default=None, compare=False, repr=False)
    cell: Optional[int] = None

    @property
    def severity(self) -> Severity:
        """The catalogue's default severity for this code."""
        return get_rule(self.code).severity

    def sort_key(self) -> tuple:
        return (self.path, self.cell or 0, self.line, self.column, self.code)


# What went wrong with a file; every kind makes the run exit with status 2.
UNREADABLE = "unreadable"
NOT_TEXT = "not-python-text"
SYNTAX = "syntax-error"
TOO_DEEP = "too-deeply-nested"
TOO_LARGE = "too-large"
TIMEOUT = "timeout"
CRASH = "parser-crash"
INTERNAL = "internal-error"


@dataclass(frozen=True)
class Problem:
    """A file wd-lint could not lint, with the reason and, when known, where (1-based)."""

    path: str
    kind: str
    reason: str
    line: Optional[int] = None
    column: Optional[int] = None
    cell: Optional[int] = None


# The kinds of source wd-lint reads.
PYTHON = "python"
NOTEBOOK = "notebook"  # a .ipynb file: its code cells, joined into Python text
CONFIG = "config"  # a YAML file: LightningCLI / jsonargparse and Hydra optimizer configs


@dataclass(frozen=True)
class Job:
    """One decoded source to analyse for ``codes``.

    ``kind`` says how ``text`` is read; for a notebook, ``text`` is its code cells joined into
    Python and ``cells`` maps its lines back: ``(cell number, first line, line count)``.
    """

    path: str
    text: str
    codes: FrozenSet[str]
    kind: str = PYTHON
    cells: Tuple[Tuple[int, int, int], ...] = ()


@dataclass(frozen=True)
class Outcome:
    """The engine's diagnostics for a job, or the problem that stopped it."""

    diagnostics: Tuple[Diagnostic, ...] = ()
    problem: Optional[Problem] = None
