"""The file behind a path that ``--fix`` rewrites: read as the analysis reads it, written back
as it was, with new content.

The path's target is what gets fixed (a symbolic link stays a link). It is read through the
analysis's reader, with the same checks (a regular file, within ``max-file-size`` and
``max-file-lines``): a file swapped for a FIFO or a device is refused, never read. Before the
write, the file must still be the one that was read (same device, inode, size and change
time) and writable: a read-only file is left alone. The new content replaces the file through
a private file and a rename, with the file's mode, owner and group; where that would change
what the file is (a file with several hard links, an owner this process may not give), the
file is overwritten in place instead, as most formatters do. Private files that killed
writers left beside it are removed first.
"""

from __future__ import annotations

import io
import os
import stat
import tokenize
from dataclasses import dataclass, replace
from typing import List, Optional, Tuple

from wd_guard.lint.diagnostic import NOTEBOOK, Diagnostic, Problem
from wd_guard.lint.fixes.atomic import remove_leftovers, replace_file, write_in_place
from wd_guard.lint.intake import notebook
from wd_guard.lint.intake.source import Unlintable, decode_source, kind_of, read_source

Identity = Tuple[int, int, int, int]


class NotFixable(Exception):
    """Raised with the Problem that keeps a file from being fixed."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.reason)
        self.problem = problem


@dataclass(frozen=True)
class Target:
    """A file to fix as it was read: the path named, the file behind it, text and encoding; for
    a notebook, its bytes and where its code cells sit in ``text``."""

    path: str
    real: str
    text: str
    encoding: str
    identity: Identity
    data: bytes = b""
    cells: Optional[notebook.Cells] = None

    def encode(self, text: str) -> bytes:
        """The file's new content for the fixed ``text``; raises NotFixable."""
        if self.cells is None:
            return text.encode(self.encoding)
        try:
            return notebook.rewrite(self.data, text)
        except notebook.NotebookError as exc:
            raise NotFixable(Problem(self.path, "fix-error", f"not fixed: {exc}")) from None

    def place(self, diagnostics: List[Diagnostic], text: str) -> List[Diagnostic]:
        """Findings in the fixed ``text``, located in a notebook's cells (unchanged for a source
        file). A fix may add lines to a cell, so the cells are read again from the fixed text."""
        if self.cells is None:
            return diagnostics
        cells = self.cells if text == self.text else notebook.read(self.encode(text)).cells
        placed = []
        for diagnostic in diagnostics:
            cell, line = cells.locate(diagnostic.line)
            end_cell, end_line = cells.locate(diagnostic.end_line)
            placed.append(replace(diagnostic, cell=cell, line=line, end_line=end_line if end_cell == cell else line))
        return placed


def read_target(path: str, max_size: int, max_lines: int, kind: str) -> Target:
    """The file behind ``path``, read and decoded; raises NotFixable (a Problem of ``kind``,
    or the reader's own) when it cannot be read as the analysis would."""
    real = os.path.realpath(path)
    try:
        before = _identity(os.stat(real))
        data = read_source(real, max_size, max_lines)
        if kind_of(path) == NOTEBOOK:
            book = notebook.read(data)
            return Target(path, real, book.text, "utf-8", before, data, book.cells)
        text = decode_source(path, data)
    except notebook.NotebookError as exc:
        raise NotFixable(Problem(path, kind, f"not fixed: {exc}")) from None
    except Unlintable as exc:
        raise NotFixable(Problem(path, exc.problem.kind, f"not fixed: {exc.problem.reason}", exc.problem.line)) from None
    except OSError as exc:
        raise NotFixable(Problem(path, kind, f"not fixed: cannot read: {exc.strerror or exc}")) from None
    return Target(path, real, text, source_encoding(data), before)


def source_encoding(data: bytes) -> str:
    """The encoding to write Python source back with (a BOM kept), once ``decode_source``
    has accepted ``data``."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return encoding


def check_unchanged(target: Target, kind: str) -> os.stat_result:
    """The file's status now; raises NotFixable when it is no longer the file that was read, or
    when it is read-only."""
    try:
        info = os.stat(target.real)
    except OSError as exc:
        raise NotFixable(Problem(target.path, kind, f"not fixed: cannot write: {exc.strerror or exc}")) from None
    if _identity(info) != target.identity:
        raise NotFixable(Problem(target.path, kind, "not fixed: the file changed while it was being fixed; run again"))
    if not stat.S_IMODE(info.st_mode) & 0o222 or not os.access(target.real, os.W_OK):
        raise NotFixable(Problem(target.path, kind, "not fixed: the file is read-only; make it writable to fix it"))
    return info


def write_keeping(path: str, data: bytes) -> None:
    """Replace the content of the regular file at ``path`` by ``data``, keeping its mode, owner,
    group and hard links, flushed to disk. Raises OSError."""
    info = os.stat(path)
    remove_leftovers(path)
    expected = (info.st_dev, info.st_ino)
    if info.st_nlink > 1:
        write_in_place(path, data, expected=expected)
        return
    try:
        replace_file(path, data, mode=stat.S_IMODE(info.st_mode), owner=(info.st_uid, info.st_gid), durable=True)
    except PermissionError:  # an owner this process may not give, or a folder it may not write
        write_in_place(path, data, expected=expected)


def _identity(info: os.stat_result) -> Identity:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
