"""Apply the rules' fixes to source text and to files without ever losing data.

Fixes are applied in rounds: each round lints the text, applies every applicable fix whose
edits do not touch another chosen fix's edits (rules in code order, then by position), and
lints the result again, so fixes on overlapping ranges are applied one at a time, each on
up-to-date code. A round whose result does not parse stops everything and the original stays
as it was. Files are written through a temporary file in the same folder and an atomic
rename, keeping the encoding (and BOM), the line breaks, the permissions and the trailing
newline. A notebook's code cells are fixed as one text and only the changed cells' sources
are written back (see ``intake.notebook``). Fixing fixed code changes nothing.
"""

from __future__ import annotations

import difflib
import io
import os
import stat
import tokenize
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Collection, Dict, List, Optional, Sequence, Tuple

import libcst as cst

from wd_guard.lint.fixes.atomic import replace_file
from wd_guard.lint.fixes.layout import keep_within
from wd_guard.lint.diagnostic import Diagnostic, Edit, Fix
from wd_guard.lint.analysis.engine import lint_source, parse
from wd_guard.lint.diagnostic import NOTEBOOK
from wd_guard.lint.intake.source import kind_of

if TYPE_CHECKING:  # pragma: no cover
    from wd_guard.lint.api import Options, Report

Keep = Callable[[List[Diagnostic], str], List[Diagnostic]]
MAX_ROUNDS = 100


class FixError(Exception):
    """Fixing would produce code that does not parse, or the file could not be written."""


@dataclass
class Fixed:
    """The outcome of fixing one text: the new text, what was applied, what is left."""

    original: str
    text: str
    applied: int = 0
    remaining: List[Diagnostic] = field(default_factory=list)
    titles: List[str] = field(default_factory=list)  # "CODE title" of each fix applied

    @property
    def changed(self) -> bool:
        return self.text != self.original

    def diff(self, path: str) -> str:
        """A unified diff from the original to the fixed text (empty when unchanged), headed by
        one ``# CODE title`` line per fix applied (``patch`` and ``git apply`` skip them)."""
        lines = difflib.unified_diff(
            self.original.splitlines(keepends=True), self.text.splitlines(keepends=True), f"a/{path}", f"b/{path}"
        )
        body = "".join(line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n" for line in lines)
        if not body:
            return ""
        return "".join(f"# {title}\n" for title in dict.fromkeys(self.titles)) + body


def applicable(diagnostic: Diagnostic, unsafe: bool) -> bool:
    """Whether ``diagnostic`` has a fix that this mode applies."""
    return diagnostic.fix is not None and (unsafe or not diagnostic.fix.unsafe)


def fix_text(
    text: str,
    path: str = "<string>",
    *,
    select: Optional[Collection[str]] = None,
    unsafe: bool = False,
    keep: Optional[Keep] = None,
    line_length: Optional[int] = None,
) -> Fixed:
    """Apply every applicable fix to ``text`` until none is left; raises FixError when a fix
    would produce code that does not parse. With ``line_length``, a call a fix made longer
    than that is split one argument per line (see ``layout``)."""
    result = Fixed(text, text)
    for _ in range(MAX_ROUNDS):
        result.remaining = _lint(result.text, path, select, keep)
        ordered = [d for d in sorted(result.remaining, key=_order) if applicable(d, unsafe)]
        chosen = _non_overlapping([d.fix for d in ordered])
        if not chosen:
            return result
        candidate = _apply(result.text, chosen)
        if line_length is not None:
            candidate = keep_within(result.text, candidate, line_length)
        try:
            parse(candidate)
        except cst.ParserSyntaxError as exc:
            titles = "; ".join(fix.title for fix in chosen)
            raise FixError(f"{path}: fixing ({titles}) would produce code that does not parse: {exc.message}") from None
        result.text, result.applied = candidate, result.applied + len(chosen)
        result.titles.extend(f"{d.code} {d.fix.title}" for d in ordered if any(d.fix is fix for fix in chosen))  # type: ignore[union-attr]
    result.remaining = _lint(result.text, path, select, keep)
    return result


def _lint(text: str, path: str, select: Optional[Collection[str]], keep: Optional[Keep]) -> List[Diagnostic]:
    found = lint_source(text, path, select=select)
    return keep(found, text) if keep is not None else found


def _order(diagnostic: Diagnostic) -> Tuple[str, int, int]:
    # Rules in code order: WD101's rename runs before WD210 moves the decay of the same call.
    return (diagnostic.code, diagnostic.line, diagnostic.column)


def _non_overlapping(fixes: Sequence[Optional[Fix]]) -> List[Fix]:
    chosen: List[Fix] = []
    taken: List[Edit] = []
    for fix in fixes:
        if fix is not None and not any(_touch(a, b) for a in fix.edits for b in taken):
            chosen.append(fix)
            taken.extend(fix.edits)
    return chosen


def _touch(a: Edit, b: Edit) -> bool:
    """Edits that overlap or meet (two insertions at one place included)."""
    return a.start <= b.end and b.start <= a.end


def _apply(text: str, fixes: Sequence[Fix]) -> str:
    edits = sorted((edit for fix in fixes for edit in fix.edits), key=lambda e: e.start, reverse=True)
    for edit in edits:
        text = text[: edit.start] + edit.content + text[edit.end :]
    return text


# -- files ---------------------------------------------------------------------------------


def decode(data: bytes) -> Tuple[str, str]:
    """The text of Python source bytes and the encoding to write it back with (BOM kept)."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding), encoding


def fix_file(
    path: str,
    *,
    select: Optional[Collection[str]] = None,
    unsafe: bool = False,
    keep: Optional[Keep] = None,
    write: bool = True,
    line_length: Optional[int] = None,
) -> Fixed:
    """Fix the file at ``path`` in place (or only compute the result when ``write`` is
    False). Raises FixError, leaving the file untouched, when that cannot be done safely."""
    real = os.path.realpath(path)  # a symbolic link stays a link to the fixed file
    if kind_of(path) == NOTEBOOK:
        return _fix_notebook(path, real, select=select, unsafe=unsafe, keep=keep, write=write)
    try:
        with open(real, "rb") as handle:
            data = handle.read()
        text, encoding = decode(data)
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise FixError(f"{path}: cannot read: {exc}") from None
    result = fix_text(text, path, select=select, unsafe=unsafe, keep=keep, line_length=line_length)
    if write and result.changed:
        write_atomically(real, result.text.encode(encoding))
    return result


def _fix_notebook(path: str, real: str, *, select: Optional[Collection[str]], unsafe: bool, keep: Optional[Keep], write: bool) -> Fixed:
    """Fix a notebook's code cells; only the changed cells' sources change in its JSON, and the
    remaining findings are placed in their cells."""
    from dataclasses import replace

    from wd_guard.lint.intake.notebook import NotebookError, read, rewrite

    try:
        with open(real, "rb") as handle:
            data = handle.read()
        notebook = read(data)
    except (OSError, NotebookError) as exc:
        raise FixError(f"{path}: cannot read: {exc}") from None
    result = fix_text(notebook.text, path, select=select, unsafe=unsafe, keep=keep)
    if result.changed:
        try:
            fixed = rewrite(data, result.text)
        except NotebookError as exc:
            raise FixError(f"{path}: {exc}") from None
        if write:
            write_atomically(real, fixed)
    cells = read(fixed).cells if result.changed else notebook.cells
    placed = []
    for diagnostic in result.remaining:
        cell, line = cells.locate(diagnostic.line)
        end_cell, end_line = cells.locate(diagnostic.end_line)
        placed.append(replace(diagnostic, cell=cell, line=line, end_line=end_line if end_cell == cell else line))
    result.remaining = placed
    return result


def write_atomically(path: str, data: bytes) -> None:
    """Replace the file's content by ``data`` in one rename, keeping its permissions, flushed to
    disk first (see ``atomic.replace_file``)."""
    try:
        replace_file(path, data, mode=stat.S_IMODE(os.stat(path).st_mode), durable=True)
    except OSError as exc:
        raise FixError(f"{path}: cannot write: {exc}") from None


# -- a whole run -----------------------------------------------------------------------------


@dataclass
class FixRun:
    """What fixing the files of a lint report did."""

    applied: int = 0
    changed: List[str] = field(default_factory=list)
    diffs: List[str] = field(default_factory=list)


def fix_report(report: "Report", options: "Options", *, unsafe: bool, write: bool = True) -> FixRun:
    """Fix every file of ``report`` that has an applicable fix (honouring its codes and
    ``# noqa``), and replace its findings by what remains. A file that cannot be fixed
    safely becomes a problem of the report and is left as it was."""
    from wd_guard.lint.diagnostic import Problem
    from wd_guard.lint.output.noqa import apply_noqa

    run = FixRun()
    kept: List[Diagnostic] = []
    for path, found in _by_path(report.diagnostics):
        if not any(applicable(d, unsafe) for d in found):
            kept.extend(found)
            continue
        try:
            scoped = options.for_path(path)
            result = fix_file(
                path, select=options.codes_for(path), unsafe=unsafe, keep=apply_noqa, write=write, line_length=scoped.line_length
            )
        except FixError as exc:
            report.problems.append(Problem(path, "fix-error", str(exc)))
            kept.extend(found)
            continue
        run.applied += result.applied
        if result.changed:
            run.changed.append(path)
            run.diffs.append(result.diff(path))
        kept.extend(result.remaining if write else found)
    report.diagnostics = kept
    report.sort()
    return run


def _by_path(diagnostics: Sequence[Diagnostic]) -> List[Tuple[str, List[Diagnostic]]]:
    grouped: Dict[str, List[Diagnostic]] = {}
    for diagnostic in diagnostics:
        grouped.setdefault(diagnostic.path, []).append(diagnostic)
    return list(grouped.items())
