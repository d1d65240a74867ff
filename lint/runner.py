"""Lint files: read, decode, pre-filter, analyse, and apply ``# noqa``; never raise for a file.

For each file: the bytes are read without following it into a FIFO or a device; a file over
``max_file_size`` is skipped and reported with its size; NUL bytes mean it is not Python text;
the encoding comes from the BOM or the PEP 263 line; a file without the engine's vocabulary is
done without a parse. What is left is parsed and analysed once (see ``isolate``). Every failure
becomes a ``Problem`` with the path and the reason, and the other files are still linted.
"""

from __future__ import annotations

import codecs
import io
import os
import re
import stat
import tokenize
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, FrozenSet, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from wd_guard.lint import isolate
from wd_guard.lint.cache import Cache
from wd_guard.lint.config import DEFAULT_MAX_FILE_SIZE, DEFAULT_TIMEOUT, default_codes, expand
from wd_guard.lint.diagnostic import Diagnostic
from wd_guard.lint.discover import discover, is_excluded
from wd_guard.lint.isolate import Job, Outcome, Problem

_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BOM_CONFLICT = "cannot decode: a UTF-8 byte order mark and a coding line that names another encoding"
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)


@dataclass(frozen=True)
class Options:
    """How to lint: which codes, where per-file ignores are anchored, and the limits."""

    codes: FrozenSet[str] = field(default_factory=default_codes)
    per_file_ignores: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()
    exclude: Tuple[str, ...] = ()
    root: Path = field(default_factory=Path.cwd)
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
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


class _Unlintable(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.reason)
        self.problem = problem


def lint_paths(paths: Sequence[str], options: Options) -> Report:
    """Discover the files under ``paths`` (the current folder when empty) and lint them."""
    found = discover(paths, options.exclude, options.root)
    problems = [Problem(item.path, isolate.UNREADABLE, item.reason) for item in found.problems]
    report = lint_files(found.files, options)
    report.problems.extend(problems)
    report.sort()
    return report


def lint_files(paths: Iterable[str], options: Options) -> Report:
    """Lint each file; failures become problems in the report, never exceptions."""
    report = Report()
    store = Cache.open(options.cache_dir) if options.cache_dir is not None else None
    outcomes = isolate.run_jobs(_jobs(paths, options, report, store), options.processes, options.timeout)
    for job, outcome in outcomes:
        if store is not None:
            store.put(job, outcome)
        _record(report, job, outcome)
    report.sort()
    return report


def _jobs(paths: Iterable[str], options: Options, report: Report, store: Optional[Cache] = None) -> Iterator[Job]:
    """The jobs to analyse; files the cache knows are recorded on the way."""
    for path in paths:
        report.files += 1
        try:
            prepared = prepare(path, options)
        except Exception as exc:  # a bug or an exhausted machine: this file, not the run
            prepared = Problem(path, isolate.INTERNAL, f"internal error while reading: {type(exc).__name__}: {exc}")
        if isinstance(prepared, Job):
            report.analysed += 1
            known = store.get(prepared) if store is not None else None
            if known is None:
                yield prepared
            else:
                _record(report, prepared, known)
        elif prepared is not None:
            report.problems.append(prepared)


def prepare(path: str, options: Options) -> Union[Job, Problem, None]:
    """The job for a file, the Problem that stops it, or None when nothing can be found in it."""
    from wd_guard.lint.engine import might_matter

    codes = options.codes_for(path)
    if not codes:
        return None
    try:
        data = read_source(path, options.max_file_size)
        text = decode_source(path, data)
    except _Unlintable as exc:
        return exc.problem
    return Job(path, text, codes) if might_matter(data, select=codes) else None


def read_source(path: str, max_size: int = DEFAULT_MAX_FILE_SIZE) -> bytes:
    """The bytes of a regular file of at most ``max_size`` bytes; raises _Unlintable otherwise."""
    descriptor: Optional[int] = None
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
        _check_regular(path, os.fstat(descriptor), max_size)
        with os.fdopen(descriptor, "rb") as handle:
            descriptor = None  # the file object owns it now
            data = handle.read(max_size + 1)
    except OSError as exc:
        raise _Unlintable(Problem(path, isolate.UNREADABLE, f"cannot read: {exc.strerror or exc}")) from None
    finally:
        if descriptor is not None:
            os.close(descriptor)
    if len(data) > max_size:
        raise _Unlintable(_too_large(path, len(data), max_size))
    return data


def _check_regular(path: str, info: os.stat_result, max_size: int) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise _Unlintable(Problem(path, isolate.UNREADABLE, "cannot read: is a folder"))
    if not stat.S_ISREG(info.st_mode):
        raise _Unlintable(Problem(path, isolate.UNREADABLE, "cannot read: not a regular file"))
    if info.st_size > max_size:
        raise _Unlintable(_too_large(path, info.st_size, max_size))


def _too_large(path: str, size: int, max_size: int) -> Problem:
    reason = f"skipped: {size:,} bytes is over max-file-size ({max_size:,} bytes); exclude it or raise the limit"
    return Problem(path, isolate.TOO_LARGE, reason)


def decode_source(path: str, data: bytes) -> str:
    """Text from bytes per the BOM or PEP 263 line (UTF-8 otherwise); raises _Unlintable."""
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise _Unlintable(Problem(path, isolate.NOT_TEXT, "contains NUL bytes: not Python source", line))
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        # Without a declaration the first lines must be UTF-8; decoding says where they are not.
        encoding = "utf-8" if "invalid or missing encoding" in str(exc.msg) else ""
        if not encoding:
            reason = _BOM_CONFLICT if data.startswith(codecs.BOM_UTF8) else f"cannot decode: {exc.msg}"
            raise _Unlintable(Problem(path, isolate.NOT_TEXT, reason, 1)) from None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        reason = f"cannot decode as {encoding}: {exc.reason} (byte 0x{data[exc.start]:02x})"
        raise _Unlintable(Problem(path, isolate.NOT_TEXT, reason, line)) from None


def _record(report: Report, job: Job, outcome: Outcome) -> None:
    if outcome.problem is not None:
        report.problems.append(outcome.problem)
        return
    found = [replace(d, path=job.path) if d.path != job.path else d for d in outcome.diagnostics]
    kept = apply_noqa([d for d in found if d.code in job.codes], job.text)
    report.suppressed += len(found) - len(kept)
    report.diagnostics.extend(kept)


def apply_noqa(diagnostics: Sequence[Diagnostic], text: str) -> List[Diagnostic]:
    """Diagnostics not silenced by ``# noqa`` or ``# noqa: CODE,...`` on their first line."""
    if not diagnostics or "noqa" not in text.lower():
        return list(diagnostics)
    lines = _LINE_BREAK.split(text)
    comments: Optional[Dict[int, str]] = None
    tokenized = False
    kept = []
    for diagnostic in diagnostics:
        raw = lines[diagnostic.line - 1] if 0 < diagnostic.line <= len(lines) else ""
        if "noqa" in raw.lower():
            if not tokenized:
                comments, tokenized = _comments(text), True
            # Only a real comment counts; the raw line is the fallback when tokenizing failed.
            comment = raw if comments is None else comments.get(diagnostic.line, "")
            if _silences(comment, diagnostic.code):
                continue
        kept.append(diagnostic)
    return kept


def _silences(comment: str, code: str) -> bool:
    match = _NOQA.search(comment)
    if match is None:
        return False
    codes = match.group("codes")
    if codes is None:
        return True
    return any(code.startswith(listed.upper()) for listed in re.split(r"[\s,]+", codes) if listed)


def _comments(text: str) -> Optional[Dict[int, str]]:
    """Comment text by line, from Python's tokenizer; None when it cannot tokenize the text."""
    found: Dict[int, str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text, newline=None).readline):
            if token.type == tokenize.COMMENT:
                found[token.start[0]] = token.string
    except (tokenize.TokenError, SyntaxError):
        return None
    return found
