"""Apply the rules' fixes to source text and to files without ever losing data.

Fixes are applied in rounds: each round lints the text, applies every applicable fix whose
edits do not touch another chosen fix's edits (rules in code order, then by position), and
lints the result again, so fixes on overlapping ranges are applied one at a time, each on
up-to-date code. A round whose result does not parse stops everything and the original stays
as it was. Files are read and written back as ``target`` describes (the encoding and BOM, the
line breaks, the trailing newline, the mode, owner and links kept). A notebook's code cells
are fixed as one text and only the changed cells' sources are written back (see
``intake.notebook``). Fixing fixed code changes nothing.

A run fixes its files in the analysis's worker processes (``run_jobs`` with ``fix_job``): a
file whose fixing crashes the parser, exhausts the stack or takes too long is reported and
left as it was, and every other file is still fixed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Collection, Dict, FrozenSet, List, Optional, Sequence, Tuple, Union

import libcst as cst

from wd_guard.lint.analysis import workers
from wd_guard.lint.analysis.engine import lint_source, parse
from wd_guard.lint.diagnostic import Diagnostic, Edit, Fix, Problem
from wd_guard.lint.files.settings import DEFAULT_MAX_FILE_LINES, DEFAULT_MAX_FILE_SIZE
from wd_guard.lint.fixes.layout import keep_within
from wd_guard.lint.fixes.target import NotFixable, Target, check_unchanged, read_target, write_keeping

if TYPE_CHECKING:  # pragma: no cover
    from wd_guard.lint.api import Options, Report

Keep = Callable[[List[Diagnostic], str], List[Diagnostic]]
MAX_ROUNDS = 100
FIX_ERROR = "fix-error"  # the kind of Problem for a file that could not be fixed


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


def fix_file(
    path: str,
    *,
    select: Optional[Collection[str]] = None,
    unsafe: bool = False,
    keep: Optional[Keep] = None,
    write: bool = True,
    line_length: Optional[int] = None,
) -> Fixed:
    """Fix the file at ``path`` in place, in this process (or only compute the result when
    ``write`` is False). Raises FixError, leaving the file untouched, when that cannot be done
    safely."""
    try:
        target = read_target(path, DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_FILE_LINES, FIX_ERROR)
        result = fix_text(target.text, path, select=select, unsafe=unsafe, keep=keep, line_length=line_length)
        if write and result.changed:
            _write_back(target, result.text)
    except NotFixable as exc:
        raise FixError(f"{path}: {exc.problem.reason}") from None
    result.remaining = target.place(result.remaining, result.text)
    return result


def _write_back(target: Target, text: str) -> None:
    """Write ``text`` to the target if it is still the file that was read; raises NotFixable."""
    check_unchanged(target, FIX_ERROR)
    data = target.encode(text)
    try:
        write_atomically(target.real, data)
    except FixError as exc:
        raise NotFixable(Problem(target.path, FIX_ERROR, str(exc))) from None


def write_atomically(path: str, data: bytes) -> None:
    """Replace the file's content by ``data``, keeping its mode, owner and links, flushed to
    disk first (see ``target.write_keeping``); raises FixError."""
    try:
        write_keeping(path, data)
    except OSError as exc:
        raise FixError(f"{path}: cannot write: {exc.strerror or exc}") from None


# -- a whole run, in the worker processes ---------------------------------------------------


@dataclass(frozen=True)
class FixJob:
    """One file's text to fix, with the codes that apply to it."""

    path: str
    text: str
    codes: FrozenSet[str]
    unsafe: bool
    line_length: Optional[int] = None


@dataclass(frozen=True)
class FixOutcome:
    """What fixing one file gave: the result, or the Problem that stopped it."""

    fixed: Optional[Fixed] = None
    problem: Optional[Problem] = None


def fix_job(job: FixJob) -> FixOutcome:
    """What a worker does for one file: its fixed text; every failure a Problem, none raised."""
    from wd_guard.lint.output.noqa import apply_noqa

    def work() -> Union[Fixed, Problem]:
        try:
            return fix_text(job.text, job.path, select=job.codes, unsafe=job.unsafe, keep=apply_noqa, line_length=job.line_length)
        except FixError as exc:
            return Problem(job.path, FIX_ERROR, str(exc))

    result = workers.guarded(job.path, job.text, work, "fixing")
    return FixOutcome(problem=result) if isinstance(result, Problem) else FixOutcome(fixed=result)


def failed_fix(problem: Problem) -> FixOutcome:
    """The outcome of a fix whose worker timed out or died: the file is left as it was."""
    return FixOutcome(problem=Problem(problem.path, problem.kind, f"not fixed: {problem.reason}", problem.line, problem.column))


@dataclass
class FixRun:
    """What fixing the files of a lint report did."""

    applied: int = 0
    changed: List[str] = field(default_factory=list)
    diffs: List[str] = field(default_factory=list)


def fix_report(report: "Report", options: "Options", *, unsafe: bool, write: bool = True) -> FixRun:
    """Fix every file of ``report`` that has an applicable fix (honouring its codes and
    ``# noqa``), in the worker processes, and replace its findings by what remains. A file
    that cannot be fixed safely becomes a problem of the report and is left as it was."""
    run = FixRun()
    kept: List[Diagnostic] = []
    targets: Dict[str, Tuple[Target, List[Diagnostic]]] = {}
    jobs: List[FixJob] = []
    for path, found in _by_path(report.diagnostics):
        if not any(applicable(d, unsafe) for d in found):
            kept.extend(found)
            continue
        try:
            scoped = options.for_path(path)
            target = read_target(path, scoped.max_file_size, scoped.max_file_lines, FIX_ERROR)
        except NotFixable as exc:
            report.problems.append(exc.problem)
            kept.extend(found)
            continue
        targets[path] = (target, found)
        jobs.append(FixJob(path, target.text, options.codes_for(path), unsafe, scoped.line_length))
    done = workers.run_jobs(jobs, options.processes, options.timeout, fix_job, failed_fix, "fixing")
    for job, outcome in done:
        target, found = targets[job.path]
        result = outcome.fixed
        try:
            if result is None:
                raise NotFixable(outcome.problem or Problem(job.path, FIX_ERROR, "not fixed"))
            if write and result.changed:
                _write_back(target, result.text)
        except NotFixable as exc:
            report.problems.append(exc.problem)
            kept.extend(found)
            continue
        run.applied += result.applied
        if result.changed:
            run.changed.append(job.path)
            run.diffs.append(result.diff(job.path))
        kept.extend(target.place(result.remaining, result.text) if write else found)
    run.changed.sort()
    run.diffs.sort()  # each starts with its path: the order of the files
    report.diagnostics = kept
    report.sort()
    return run


def _by_path(diagnostics: Sequence[Diagnostic]) -> List[Tuple[str, List[Diagnostic]]]:
    grouped: Dict[str, List[Diagnostic]] = {}
    for diagnostic in diagnostics:
        grouped.setdefault(diagnostic.path, []).append(diagnostic)
    return list(grouped.items())
