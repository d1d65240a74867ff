"""Dataclass methods compiled once and kept between runs, so that loading libcst costs half.

Most of ``import libcst`` is the ``dataclasses`` module writing the methods of some 200 node
classes (``__init__``, ``__repr__``, ``__eq__``, ...) as source text and compiling it: about
a thousand small sources, the same on every run. Wherever libcst is loaded (the workers, see
``isolate.preload``; the command itself with ``--jobs 0`` or ``--fix``; the flake8 plugin),
:func:`reused` looks the code of each of those sources up in a table kept in the user's cache
folder and compiles only what is missing. When anything was missing (a new libcst, a first
run) the table is written again, holding just what this import used.

Like Python's own bytecode files, the table is read only by an interpreter with the magic
number and optimisation level it was written with, it is not written when
``PYTHONDONTWRITEBYTECODE`` is set, and a file that cannot be read is a miss, never an error.
The code is what ``exec`` would have compiled from the same text: the same file name and no
flags inherited from this module, so the generated methods are exactly those of a plain run.
"""

from __future__ import annotations

import marshal
import os
import sys
from contextlib import contextmanager
from types import CodeType
from typing import Any, Dict, Iterator, Optional

FOLDER = "wd-lint"
PACKAGE = "libcst"  # whose classes' methods are kept (see _in_package)


def _magic_number() -> bytes:
    external = sys.modules.get("_frozen_importlib_external")  # loaded at start-up by CPython
    if external is None:
        from importlib.util import MAGIC_NUMBER

        return MAGIC_NUMBER
    return external.MAGIC_NUMBER


# What the code in the table is valid for: the bytecode format and the -O level it was built with.
_HEADER = _magic_number() + bytes([sys.flags.optimize])


def table_path(environ: Any = os.environ) -> Optional[str]:
    """Where the table lives: ``wd-lint`` in the user's cache folder, one file per interpreter."""
    if sys.platform == "win32":
        base = environ.get("LOCALAPPDATA", "")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Caches")
    else:
        base = environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    if not os.path.isabs(base):  # no home folder to expand: nowhere to keep it
        return None
    return os.path.join(base, FOLDER, f"dataclass-code.{sys.implementation.cache_tag}.marshal")


@contextmanager
def reused(path: Optional[str] = None) -> Iterator[Dict[str, int]]:
    """Within the block, dataclasses reuse compiled methods from the table at ``path``.

    Yields counts that the block may read afterwards: ``reused`` and ``compiled`` sources.
    """
    import dataclasses

    path = table_path() if path is None else path
    table = _load(path) if path else {}
    used: Dict[str, Any] = {}
    counts = {"reused": 0, "compiled": 0}

    def cached_exec(source: Any, globals: Any = None, locals: Any = None, /) -> Any:
        if isinstance(source, str) and _in_package(globals):
            code = table.get(source)
            if type(code) is CodeType:
                counts["reused"] += 1
            else:  # missing, or not code: nothing but code from the table is ever run
                counts["compiled"] += 1
                code = compile(source, "<string>", "exec", dont_inherit=True)
            used[source] = source = code
        return exec(source, globals, locals)

    # dataclasses calls the ``exec`` builtin by name; a module attribute of that name is found
    # first. Where a Python generates methods some other way, nothing is reused, nothing breaks.
    dataclasses.exec = cached_exec  # type: ignore[attr-defined]
    try:
        yield counts
    finally:
        del dataclasses.exec  # type: ignore[attr-defined]
    if path and counts["compiled"] and not sys.dont_write_bytecode:
        _store(path, used)


def _in_package(module_globals: Any) -> bool:
    """Whether dataclasses is generating methods for a class of ``PACKAGE``.

    Only those are kept: every process that imports libcst makes the same set, so whichever
    writes last writes what the others need (wd-lint's own classes differ by process, and
    compiling them costs little).
    """
    name = module_globals.get("__name__") if isinstance(module_globals, dict) else None
    return isinstance(name, str) and name.partition(".")[0] == PACKAGE


def import_reusing(module: str) -> None:
    """Import ``module`` (when not loaded yet) inside :func:`reused`: for the paths that load
    libcst in the command's own process or in a host such as flake8."""
    if module not in sys.modules:
        with reused():
            __import__(module)


def _load(path: str) -> Dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        table = marshal.loads(data[len(_HEADER) :]) if data.startswith(_HEADER) else {}
    except (OSError, ValueError, EOFError, TypeError):  # missing, unreadable or damaged: all misses
        return {}
    return table if isinstance(table, dict) else {}


def _store(path: str, table: Dict[str, Any]) -> None:
    from wd_guard.lint.atomic import remove_leftovers, replace_file

    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # A spare worker killed unused (see ``spare.discard``) may have been killed mid-write.
        remove_leftovers(path)
        replace_file(path, _HEADER + marshal.dumps(table))
    except (OSError, ValueError):  # a read-only home, a full disk: the next run compiles again
        pass
