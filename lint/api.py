"""Files in, report out: the path of every file through the linter.

1. ``files``: which files to read (``discover``) and with which settings (``settings``).
2. ``intake``: read and decode each file (``source``); a file without the rules' words is done
   without a parse (``vocabulary``); a file whose content the cache knows is done too.
3. ``analysis``: what is left is parsed once and every rule run on it, in worker processes
   (``workers``), so a parser crash or hang costs that file alone.
4. ``output``: ``# noqa`` comments silence findings (``noqa``); the report is then printed.

Every failure becomes a ``Problem`` with the path and the reason, and the other files are still
linted. ``--fix`` (see ``fixes``) starts from the report this module returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import FrozenSet, Iterable, List, Optional, Sequence, Tuple, Union

from wd_guard.lint.analysis import workers
from wd_guard.lint.analysis.cache import Cache
from wd_guard.lint.diagnostic import INTERNAL, UNREADABLE, Diagnostic, Job, Outcome, Problem
from wd_guard.lint.files.discover import discover, is_excluded
from wd_guard.lint.files.settings import DEFAULT_MAX_FILE_LINES, DEFAULT_MAX_FILE_SIZE, DEFAULT_TIMEOUT, default_codes, expand
from wd_guard.lint.intake.source import Unlintable, decode_source, read_source
from wd_guard.lint.intake.vocabulary import might_matter
from wd_guard.lint.output.noqa import apply_noqa


@dataclass(frozen=True)
class Options:
    """How to lint: which codes, where per-file ignores are anchored, and the limits."""

    codes: FrozenSet[str] = field(default_factory=default_codes)
    per_file_ignores: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()
    exclude: Tuple[str, ...] = ()
    root: Path = field(default_factory=Path.cwd)
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    max_file_lines: int = DEFAULT_MAX_FILE_LINES
    timeout: float = DEFAULT_TIMEOUT
    processes: int = 1
    cache_dir: Optional[Path] = None  # None: no cache (see ``cache``)

    def codes_for(self, path: str) -> FrozenSet[str]:
        """The selected codes minus the per-file ignores whose pattern matches ``path``."""
        codes = self.codes
        for pattern, selectors in self.per_file_ignores:
            if is_excluded(path, (pattern,), self.root):
                codes = codes.difference(*(expand(s) for s in selectors))
        return codes


@dataclass
class Report:
    """Everything one run found: diagnostics, files it could not lint, and counts."""

    diagnostics: List[Diagnostic] = field(default_factory=list)
    problems: List[Problem] = field(default_factory=list)
    files: int = 0
    analysed: int = 0
    suppressed: int = 0

    @property
    def exit_code(self) -> int:
        """2 when a path could not be linted, else 1 when there are findings, else 0."""
        if self.problems:
            return 2
        return 1 if self.diagnostics else 0

    def sort(self) -> None:
        self.diagnostics.sort(key=Diagnostic.sort_key)
        self.problems.sort(key=lambda p: (p.path, p.line or 0, p.column or 0))


def lint_paths(paths: Sequence[str], options: Options) -> Report:
    """Discover the files under ``paths`` (the current folder when empty) and lint them."""
    found = discover(paths, options.exclude, options.root)
    problems = [Problem(item.path, UNREADABLE, item.reason) for item in found.problems]
    report = lint_files(found.files, options)
    report.problems.extend(problems)
    report.sort()
    return report


def lint_files(paths: Iterable[str], options: Options) -> Report:
    """Lint each file; failures become problems in the report, never exceptions."""
    report = Report()
    store = Cache.open(options.cache_dir) if options.cache_dir is not None else None
    outcomes = workers.run_jobs(_jobs(paths, options, report, store), options.processes, options.timeout)
    for job, outcome in outcomes:
        if store is not None:
            store.put(job, outcome)
        _record(report, job, outcome)
    report.sort()
    return report


def _jobs(paths: Iterable[str], options: Options, report: Report, store: Optional[Cache] = None) -> List[Job]:
    """The jobs to analyse; files the cache knows are recorded on the way."""
    jobs = []
    for path in paths:
        report.files += 1
        try:
            prepared = prepare(path, options)
        except Exception as exc:  # a bug or an exhausted machine: this file, not the run
            prepared = Problem(path, INTERNAL, f"internal error while reading: {type(exc).__name__}: {exc}")
        if isinstance(prepared, Job):
            report.analysed += 1
            known = store.get(prepared) if store is not None else None
            if known is None:
                jobs.append(prepared)
            else:
                _record(report, prepared, known)
        elif prepared is not None:
            report.problems.append(prepared)
    return jobs


def prepare(path: str, options: Options) -> Union[Job, Problem, None]:
    """The job for a file, the Problem that stops it, or None when nothing can be found in it."""
    codes = options.codes_for(path)
    if not codes:
        return None
    try:
        data = read_source(path, options.max_file_size, options.max_file_lines)
        text = decode_source(path, data)
    except Unlintable as exc:
        return exc.problem
    return Job(path, text, codes) if might_matter(data, select=codes) else None


def _record(report: Report, job: Job, outcome: Outcome) -> None:
    if outcome.problem is not None:
        report.problems.append(outcome.problem)
        return
    found = [replace(d, path=job.path) if d.path != job.path else d for d in outcome.diagnostics]
    kept = apply_noqa([d for d in found if d.code in job.codes], job.text)
    report.suppressed += len(found) - len(kept)
    report.diagnostics.extend(kept)


