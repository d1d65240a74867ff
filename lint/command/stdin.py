"""``wd-lint -``: lint standard input, as editors and language-server wrappers do with a buffer.

``--stdin-filename PATH`` names the buffer: findings carry that path, and the settings and
per-file ignores of ``PATH`` apply (an excluded ``PATH`` has no findings). Without it the
buffer is called ``-``. ``--fix`` writes the fixed source to standard output (the buffer
unchanged when nothing applies) and the findings that remain to standard error, so an editor
can replace its buffer with the output; ``--diff`` prints the diff instead.
"""

from __future__ import annotations

import argparse
import sys

from wd_guard.lint.api import Options, lint_text
from wd_guard.lint.output import formats as output

STDIN = "-"


def lint_stdin(args: argparse.Namespace, options: Options) -> int:
    """Lint (or fix) standard input and return the exit status."""
    from wd_guard.lint.command.cli import USAGE_ERROR, _print, _write, diff_summary, hidden_fixes

    path = args.stdin_filename or STDIN
    data = sys.stdin.buffer.read()
    report = lint_text(path, data, options)
    if not (args.fix or args.fix_only or args.diff):
        _print(report, args)
        return report.exit_code
    if report.problems:
        if args.fix or args.fix_only:
            sys.stdout.buffer.write(data)  # the editor's buffer comes back as it was
            sys.stdout.flush()
        _write(sys.stderr, output.format_problems(report.problems))
        return USAGE_ERROR
    from wd_guard.lint.fixes.apply import FixError, fix_text
    from wd_guard.lint.fixes.target import source_encoding
    from wd_guard.lint.output.noqa import apply_noqa

    encoding = source_encoding(data)  # the analysis above decoded it
    text = data.decode(encoding)
    hidden = hidden_fixes(report.diagnostics, args.unsafe_fixes)
    try:
        scoped = options.for_path(path)
        select = options.codes_for(path)
        fixed = fix_text(text, path, select=select, unsafe=args.unsafe_fixes, keep=apply_noqa, line_length=scoped.line_length) if report.diagnostics else None
    except FixError as exc:
        if not args.diff:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        _write(sys.stderr, f"{output.printable(str(exc))}\n")
        return USAGE_ERROR
    if args.diff:
        _write(sys.stdout, fixed.diff(path) if fixed is not None else "")
        if not args.quiet:
            _write(sys.stderr, diff_summary(fixed.applied if fixed is not None else 0, hidden))
        return 1 if fixed is not None and fixed.changed else 0
    sys.stdout.buffer.write(fixed.text.encode(encoding) if fixed is not None else data)
    sys.stdout.flush()
    remaining = fixed.remaining if fixed is not None else []
    if not args.fix_only:
        _write(sys.stderr, output.format_text(remaining))
    return 1 if remaining and not args.fix_only else 0
