"""The ``wd-lint`` command line.

``wd-lint [PATH ...]`` lints files and folders (the current folder by default) and exits with
0 when nothing was found, 1 when something was, and 2 on a usage error or when a file could not
be read or parsed (reported with its path; every other file is still linted).
``wd-lint --explain CODE`` and ``wd-lint rule CODE`` print a rule's explanation;
``wd-lint rule`` lists the rules. ``--fix --unsafe-fixes`` applies the rules' fixes (``--diff``
shows them instead, ``--fix-only`` reports nothing else); the exit status then reflects the
findings that remain. ``wd-lint - --stdin-filename PATH`` lints standard input as ``PATH``
(see ``stdin``). The flags follow ruff's where both tools have one (docs/conventions.md).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable, Dict, List, NoReturn, Optional, Sequence, TextIO, Tuple

from wd_guard import __version__
from wd_guard.catalogue import RULES, get_rule
from wd_guard.lint.output import formats as output
from wd_guard.lint.analysis.cache import DEFAULT_DIR, ENV_VAR, cache_dir
from wd_guard.lint.files.hierarchy import Effective, Hierarchy, Overrides
from wd_guard.lint.files.settings import Config, ConfigError, Layer, check_patterns, check_selectors
from wd_guard.lint.files.settings import parse_count, parse_line_length, parse_size, parse_timeout
from wd_guard.lint.analysis.workers import default_processes
from wd_guard.lint.api import Options, Report, lint_paths

USAGE_ERROR = 2
INTERRUPTED = 130


class _UsageError(Exception):
    """A bad command line; the message is shown after the usage line, if any."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message, self.format_usage())


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``wd-lint``."""
    parser = _Parser(prog="wd-lint", description="Find weight-decay mistakes in PyTorch code.")
    add = parser.add_argument
    add("paths", nargs="*", metavar="PATH", help="files or folders to lint (default: the current folder)")
    add("--format", "--output-format", dest="format", choices=output.FORMATS, default="text", help="output format")
    add("--select", action="append", metavar="CODES", help="codes, prefixes (WD2) or ALL to run, not the defaults")
    add("--extend-select", action="append", default=[], metavar="CODES", help="codes to check in addition")
    add("--ignore", action="append", default=[], metavar="CODES", help="codes not to check")
    add("--exclude", action="append", metavar="GLOBS", help="paths to skip, replacing the configured and default excludes")
    add("--extend-exclude", action="append", default=[], metavar="GLOBS", help="paths to skip, besides the excludes")
    add("--respect-gitignore", action=argparse.BooleanOptionalAction, default=None, help="skip what .gitignore, .ignore and git's excludes name in folder walks (default: on)")
    add("--statistics", action="store_true", help="print how often each code was found instead of each finding")
    add("--explain", metavar="CODE", help="print the explanation of a rule and exit")
    add("--config", metavar="FILE", help="use this pyproject.toml's [tool.wd-lint] (or this wd-lint.toml) for every file")
    add("--isolated", action="store_true", help="ignore every configuration file")
    add("--show-settings", action="store_true", help="print the settings that apply to PATH and exit")
    add("--stdin-filename", metavar="PATH", help="lint standard input as the file PATH (its settings apply)")
    add("--exit-zero", action="store_true", help="exit 0 even when there are findings (2 still means a file failed)")
    add("--output-file", "-o", metavar="FILE", help="write the report to FILE instead of standard output")
    add("--quiet", "-q", action="store_true", help="print the findings only: no summary, no hints")
    add("--line-length", metavar="N", type=int, help="the line length fixes keep to (default: the configuration's)")
    add("--max-file-size", metavar="SIZE", help="skip (and report) larger files, e.g. 5MB")
    add("--max-file-lines", metavar="N", help="skip (and report) files of more lines")
    add("--timeout", metavar="SECONDS", type=float, help="skip (and report) a file whose analysis takes longer")
    add("--jobs", "-j", metavar="N", type=int, help="worker processes (default: one per CPU; 0: no workers)")
    add("--cache-dir", metavar="DIR", help=f"where to keep results of unchanged files (default: ${ENV_VAR} or {DEFAULT_DIR} in the project)")
    add("--no-cache", action="store_true", help="neither read nor write the cache")
    add("--fix", action="store_true", help="apply the fixes (wd-lint's change behaviour: they need --unsafe-fixes)")
    add("--unsafe-fixes", action="store_true", help="allow fixes that change what the code does")
    add("--diff", action="store_true", help="print the fixes as a unified diff, write nothing; exit 1 when there is one")
    add("--fix-only", action="store_true", help="apply the fixes and report no findings")
    add("--version", action="version", version=f"wd-lint {__version__}")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``wd-lint`` with ``argv`` (default: the process arguments) and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args[:1] == ["rule"]:
            return _rule_command(args[1:])
        return _lint_command(build_parser().parse_args(args))
    except (_UsageError, ConfigError) as exc:
        _write(sys.stderr, f"{getattr(exc, 'usage', '')}wd-lint: error: {output.printable(str(exc))}\n")
        return USAGE_ERROR
    except BrokenPipeError:  # `wd-lint | head`: the reader left, nothing more to say
        _silence_stdout()
        return USAGE_ERROR
    except KeyboardInterrupt:
        _write(sys.stderr, "wd-lint: interrupted\n")
        return INTERRUPTED
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0


def command() -> NoReturn:
    """The ``wd-lint`` console script: :func:`main` with the process arguments, then exit.
    SIGTERM and SIGHUP stop it as Ctrl-C does (workers stopped, nothing half-written left),
    with the exit status 128 plus the signal's number."""
    from wd_guard.lint.command.stop import Stopped, stop_on_signals

    try:
        with stop_on_signals():
            code = main()
    except Stopped as exc:
        try:
            _write(sys.stderr, f"wd-lint: stopped by {exc.name}\n")
        except (OSError, ValueError):  # no terminal any more (SIGHUP): nobody to tell
            pass
        code = exc.exit_code
    sys.exit(code)


def _rule_command(args: List[str]) -> int:
    if len(args) > 1:
        raise _UsageError("usage: wd-lint rule [CODE]")
    if not args:
        for rule in RULES:
            state = "on" if rule.static and rule.static_default else ("opt-in" if rule.static else "runtime only")
            _write(sys.stdout, f"{rule.code}  {rule.name:<26} {rule.severity:<8} {state}\n")
        return 0
    return _explain(args[0])


def _explain(code: str) -> int:
    try:
        rule = get_rule(code)
    except KeyError as exc:
        raise _UsageError(exc.args[0]) from None
    _write(sys.stdout, rule.explain())
    return 0


def _lint_command(args: argparse.Namespace) -> int:
    if args.explain:
        return _explain(args.explain)
    if args.statistics and args.format not in ("text", "json"):
        raise _UsageError("--statistics works with --format text or json")
    from_stdin = _reads_stdin(args)
    options, effective = _options(args)
    if args.show_settings:
        return _show_settings(args, options, effective, from_stdin)
    if from_stdin:
        from wd_guard.lint.command.stdin import lint_stdin

        return _exit(lint_stdin(args, options), args)
    report = lint_paths(args.paths, options)
    if args.fix or args.fix_only or args.diff:
        return _exit(_fix_command(report, options, args), args)
    _print(report, args)
    return _exit(report.exit_code, args)


def _reads_stdin(args: argparse.Namespace) -> bool:
    """Standard input is read for ``-``, and for ``--stdin-filename`` without paths."""
    if "-" in args.paths:
        if len(args.paths) > 1:
            raise _UsageError("'-' (standard input) cannot be linted together with other paths")
        return True
    return args.stdin_filename is not None and not args.paths


def _exit(code: int, args: argparse.Namespace) -> int:
    return 0 if args.exit_zero and code == 1 else code


def _fix_command(report: Report, options: Options, args: argparse.Namespace) -> int:
    from wd_guard.lint.fixes.apply import fix_report  # loads the parser: only when fixing

    hidden = hidden_fixes(report.diagnostics, args.unsafe_fixes)
    run = fix_report(report, options, unsafe=args.unsafe_fixes, write=not args.diff)
    if args.diff or args.fix_only:
        _write(sys.stdout, "".join(run.diffs) if args.diff else "")
        _write(sys.stderr, output.format_problems(report.problems))
        if args.diff and not args.quiet:
            _write(sys.stderr, diff_summary(run.applied, hidden))
        if report.problems:
            return USAGE_ERROR
        return 1 if args.diff and run.diffs else 0
    _print(report, args, run.applied)
    return report.exit_code


def hidden_fixes(diagnostics: Sequence[object], unsafe: bool) -> int:
    """How many findings have a fix that only ``--unsafe-fixes`` applies (0 with it)."""
    if unsafe:
        return 0
    return sum(1 for d in diagnostics if getattr(d, "fix", None) is not None and d.fix.unsafe)  # type: ignore[attr-defined]


def diff_summary(applied: int, hidden: int) -> str:
    """What ``--diff`` would fix, and how many more fixes ``--unsafe-fixes`` would show."""
    more = f" ({hidden} fix{'' if hidden == 1 else 'es'} available with --unsafe-fixes)" if hidden else ""
    if applied:
        return f"Would fix {applied} finding{'' if applied == 1 else 's'}{more}.\n"
    return f"No findings would be fixed{more}.\n"


def _show_settings(args: argparse.Namespace, options: Options, effective: Callable[[str], Effective], from_stdin: bool) -> int:
    from wd_guard.lint.command.show import describe

    paths = [args.stdin_filename] if from_stdin else args.paths
    if len(paths) != 1 or paths[0] is None:
        raise _UsageError("--show-settings needs exactly one PATH (or --stdin-filename)")
    _write(sys.stdout, describe(paths[0], options.for_path(paths[0]), effective(paths[0])))
    return 0


def _options(args: argparse.Namespace) -> Tuple[Options, Callable[[str], Effective]]:
    """The options of the run, with the settings found per file, and the settings of a path."""
    if args.isolated and args.config:
        raise _UsageError("--config and --isolated exclude each other")
    cwd = Path.cwd().resolve()
    cli = Overrides(
        cwd=cwd,
        layer=Layer(
            select=_selectors(args.select, "--select") if args.select is not None else None,
            extend_select=_selectors(args.extend_select, "--extend-select"),
            ignore=_selectors(args.ignore, "--ignore"),
        ),
        exclude=check_patterns(_split(args.exclude), "--exclude") if args.exclude is not None else None,
        extend_exclude=check_patterns(_split(args.extend_exclude), "--extend-exclude"),
        respect_gitignore=args.respect_gitignore,
        max_file_size=parse_size(args.max_file_size, "--max-file-size") if args.max_file_size else None,
        max_file_lines=parse_count(args.max_file_lines, "--max-file-lines") if args.max_file_lines else None,
        timeout=parse_timeout(args.timeout, "--timeout") if args.timeout is not None else None,
    )
    line_length = parse_line_length(args.line_length, "--line-length") if args.line_length is not None else None
    jobs = default_processes() if args.jobs is None else args.jobs
    if jobs < 0:
        raise _UsageError(f"--jobs: expected 0 or more, got {jobs}")
    effective: Dict[Optional[Path], Effective] = {}

    def build(config: Config) -> Options:
        found = effective.setdefault(config.path, Effective.of(config, cli))
        return Options(
            codes=found.codes,
            per_file_ignores=config.per_file_ignores,
            exclude=found.exclude,
            include=config.include,
            root=config.root,
            max_file_size=found.max_file_size,
            max_file_lines=found.max_file_lines,
            timeout=found.timeout,
            processes=jobs,
            respect_gitignore=found.respect_gitignore,
            line_length=line_length if line_length is not None else config.line_length,
        )

    hierarchy = Hierarchy.discover(build, Path(args.config) if args.config else None, args.isolated)
    base = hierarchy.built(hierarchy.fallback)

    def settings_of(path: str) -> Effective:
        hierarchy.for_path(path)  # builds the Effective of the path's configuration
        return effective[hierarchy.config_for(path).path]

    def excluded(path: str, walked: bool) -> bool:
        return settings_of(path).excluded(path, walked, cwd)

    store = None if args.no_cache else cache_dir(args.cache_dir, base.root)
    return replace(base, cache_dir=store, scoped=hierarchy.for_path, excluded=excluded), settings_of


def _selectors(values: Sequence[str], option: str) -> Tuple[str, ...]:
    return check_selectors(_split(values), option)


def _split(values: Sequence[str]) -> List[str]:
    """Comma-separated values from repeated options, empty items dropped."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _print(report: Report, args: argparse.Namespace, fixed: int = 0) -> None:
    out = _Destination(args.output_file)
    with out:
        if args.statistics:
            _write(out.stream, output.format_statistics(report.diagnostics, args.format))
            _write(sys.stderr, output.format_problems(report.problems))
        else:
            rendered, problems = _rendered(report, args.format)
            _write(out.stream, rendered)
            _write(sys.stderr, problems)
    if args.format == "text" and not args.quiet:
        _write(sys.stderr, _summary(report, fixed))


class _Destination:
    """Standard output, or the file ``--output-file`` names (its folder is created)."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        self.stream: TextIO = sys.stdout

    def __enter__(self) -> "_Destination":
        if self.path is not None:
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self.stream = open(self.path, "w", encoding="utf-8", newline="")
            except OSError as exc:
                raise _UsageError(f"--output-file: cannot write {self.path}: {exc.strerror or exc}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.stream is not sys.stdout:
            self.stream.close()


def _rendered(report: Report, fmt: str) -> Tuple[str, str]:
    """The report in ``fmt``, and the problems that go to standard error."""
    out, err = io.StringIO(), io.StringIO()
    output.write_report(report.diagnostics, report.problems, fmt, out, err)
    return out.getvalue(), err.getvalue()


def _summary(report: Report, fixed: int = 0) -> str:
    files = f"{report.files} file" + ("" if report.files == 1 else "s")
    found = len(report.diagnostics)
    text = f"Fixed {fixed} finding{'' if fixed == 1 else 's'}. " if fixed else ""
    text += f"Found {found} finding{'' if found == 1 else 's'} in {files}" if found else f"No findings in {files}"
    if report.suppressed:
        text += f" ({report.suppressed} silenced by noqa)"
    text += "."
    fixable = sum(1 for d in report.diagnostics if d.fix is not None)
    if fixable:
        text += f" {fixable} fixable with --fix --unsafe-fixes."
    if report.problems:
        text += f" {len(report.problems)} could not be linted (exit status 2)."
    return text + "\n"


def _write(stream: TextIO, text: str) -> None:
    if not text:
        return
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "utf-8"
        stream.write(text.encode(encoding, "backslashreplace").decode(encoding))
    stream.flush()


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
