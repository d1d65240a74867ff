"""The ``wd-lint`` command: start the spare worker, run the command line, exit at once.

This module is the console script's target, so it imports nothing heavy before the fork (see
``spare``). Tests and other callers use ``wd_guard.lint.cli.main``, which never forks early.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn, Optional, Sequence

# Commands that never parse a file: no worker to start for them.
_NO_PARSE = frozenset({"rule", "--explain", "-h", "--help", "--version"})


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``wd-lint`` with ``argv`` (default: the process arguments) and return the exit code."""
    from wd_guard.lint import spare

    args = list(sys.argv[1:] if argv is None else argv)
    if _NO_PARSE.isdisjoint(arg.partition("=")[0] for arg in args):
        spare.start()
    try:
        spare.import_without_collections("wd_guard.lint.cli")
        from wd_guard.lint.cli import main as run

        return run(args)
    finally:
        spare.discard()


def command() -> NoReturn:
    """The console script: :func:`main`, then exit without tearing the interpreter down.

    Freeing every module and object at exit takes about 12 ms that nobody waits for: the
    output is flushed, and nothing else is left to do (cache writes are complete and atomic).
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that left, or a stream already closed
            code = code or 2
    os._exit(code)
