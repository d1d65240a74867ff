"""Files in, report out: the path of every file through the linter.

1. ``files``: which files to read (``discover``) and with which settings (``settings``).
2. ``intake``: read and decode each file as its kind (``source``): Python, a notebook's code
   cells (``notebook``) or a YAML config; a file without the rules' words is done without a
   parse (``vocabulary``); a file whose content the cache knows is done too.
3. ``analysis``: what is left is parsed once and every rule run on it, in worker processes
   (``workers``), so a parser crash or hang costs that file alone.
4. ``output``: ``# noqa`` comments silence findings (``noqa``); the report is then printed.

Every failure becomes a ``Problem`` with the path and the reason, and the other files are still
linted. ``--fix`` (see ``fixes``) starts from the report this module returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, FrozenSet, Iterable, List, Optional, Sequence, Tuple, Union

from wd_guard.lint.analysis import workers
from wd_guard.lint.analysis.cache import Cache
from wd_guard.lint.diagnostic import CONFIG, INTERNAL, NOTEBOOK, UNREADABLE, Diagnostic, Job, Outcome, Problem
from wd_guard.lint.files.discover import Excluded, discover, included, is_excluded
from wd_guard.lint.files.settings import DEFAULT_MAX_FILE_LINES, DEFAULT_MAX_FILE_SIZE, DEFAULT_TIMEOUT, default_codes, expand
from wd_guard.lint.intake.source import Unlintable, decode_config, decode_source, kind_of, read_notebook, read_source
from wd_guard.lint.intake.vocabulary import might_matter
from wd_guard.lint.output.noqa import apply_noqa


@dataclass(frozen=True)
class Options:
    """How to lint: which codes, where per-file ignores are anchored, and the limits."""

    codes: FrozenSet[str] = field(default_factory=default_codes)
    per_file_ignores: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()
    exclude: Tuple[str, ...] = ()
    include: Tuple[str, ...] = ()  # further files a folder walk lints (YAML configs, say)
    root: Path = field(default_factory=Path.cwd)
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    max_file_lines: int = DEFAULT_MAX_FILE_LINES
    timeout: float = DEFAULT_TIMEOUT
    processes: int = 1
    cache_dir: Optional[Path] = None  # None: no cache (see ``cache``)
    respect_gitignore: bool = False
    line_length: Optional[int] = None  # fixes keep their lines within it
    # Settings found per file (``files.hierarchy``): the options of the closest configuration
    # above a path, and what a walk skips. None: these options hold for every file.
    scoped: Optional[Callable[[str], "Options"]] = field(default=None, compare=False, repr=False)
    excluded: Optional[Excluded] = field(default=None, compare=False, repr=False)

    def for_path(self, path: str) -> "Options":
        """The options that apply to ``path``."""
        return self if self.scoped is None else self.scoped(path)

    def includes(self, path: str) -> bool:
        """Whether the ``include`` patterns of the settings that apply to ``path`` select it."""
        scoped = self.for_path(path)
        return included(path, scoped.include, scoped.root)

    def codes_for(self, path: str) -> FrozenSet[str]:
        """The selected codes minus the per-file ignores whose pattern matches ``path``."""
        scoped = self.for_path(path)
        codes = scoped.codes
        for pattern, selectors in scoped.per_file_ignores:
            if is_excluded(path, (pattern,), scoped.root):
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
    found = discover(
        paths,
        options.exclude,
        options.root,
        excluded=options.excluded,
        respect_gitignore=options.respect_gitignore,
        include=options.includes,
    )
    problems = [Problem(item.path, UNREADABLE, item.reason) for item in found.problems]
    report = lint_files(found.files, options)
    report.problems.extend(problems)
    report.sort()
    return report


def lint_text(path: str, data: bytes, options: Options) -> Report:
    """Lint ``data`` (an editor's buffer on standard input) as the file ``path``: the settings
    and per-file ignores of ``path`` apply, and an excluded ``path`` has no findings."""
    report = Report()
    if options.excluded is not None and options.excluded(path, False):
        return report
    report.files = 1
    codes = options.codes_for(path)
    try:
        text = decode_source(path, data)
    except Unlintable as exc:
        report.problems.append(exc.problem)
        return report
    if codes and might_matter(data, select=codes):
        report.analysed = 1
        job = Job(path, text, codes)
        for job, outcome in workers.run_jobs([job], options.processes, options.for_path(path).timeout):
            _record(report, job, outcome)
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
    kind = kind_of(path)
    try:
        scoped = options.for_path(path)
        data = read_source(path, scoped.max_file_size, scoped.max_file_lines)
        if kind == NOTEBOOK:
            notebook = read_notebook(path, data)
            return Job(path, notebook.text, codes, kind, notebook.cells.spans) if might_matter(data, select=codes) else None
        text = decode_config(path, data) if kind == CONFIG else decode_source(path, data)
    except Unlintable as exc:
        return exc.problem
    return Job(path, text, codes, kind) if might_matter(data, select=codes, config=kind == CONFIG) else None


def _record(report: Report, job: Job, outcome: Outcome) -> None:
    if outcome.problem is not None:
        report.problems.append(_problem_in_cell(outcome.problem, job) if job.cells else outcome.problem)
        return
    found = [replace(d, path=job.path) if d.path != job.path else d for d in outcome.diagnostics]
    found = [replace(d, fix=d.fix.located(job.text)) if d.fix is not None else d for d in found]
    kept = apply_noqa([d for d in found if d.code in job.codes], job.text)
    report.suppressed += len(found) - len(kept)
    report.diagnostics.extend([_in_cell(d, job) for d in kept] if job.cells else kept)


def _in_cell(diagnostic: Diagnostic, job: Job) -> Diagnostic:
    """A notebook diagnostic with its lines counted in its cell (the cache keeps joined lines)."""
    from wd_guard.lint.intake.notebook import Cells

    cells = Cells(job.cells)
    cell, line = cells.locate(diagnostic.line)
    end_cell, end_line = cells.locate(diagnostic.end_line)
    if end_cell != cell:  # a span that reaches past its cell ends with the cell's first line
        end_line = line
    return replace(diagnostic, cell=cell, line=line, end_line=end_line)


def _problem_in_cell(problem: Problem, job: Job) -> Problem:
    from wd_guard.lint.intake.notebook import Cells

    if problem.line is None:
        return problem
    cell, line = Cells(job.cells).locate(problem.line)
    return replace(problem, cell=cell, line=line)


