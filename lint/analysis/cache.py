"""Remember what the analysis of a file found, so that an unchanged file is not parsed again.

An entry is keyed by the file's content (a BLAKE2 hash of the decoded text: for a notebook,
its code cells joined), its kind and the codes that ran on it, under a folder named after the
linter itself: its version, the size and time of each of its modules (every stage's folder),
the Python and libcst it runs on. Positions are kept as the analysis gave them; a notebook's
are put in their cells after reading. Changing a rule, the configuration or
the file gives a new key; nothing is ever invalidated by hand.

The cache lives in ``.wd-lint-cache/`` in the project root (the folder of the configuration,
else the current folder); ``--cache-dir`` or ``WD_LINT_CACHE_DIR`` move it, ``--no-cache``
turns it off. The folder holds a ``.gitignore`` that ignores it whole, and a ``CACHEDIR.TAG``
that backup tools understand. Several runs may share it: every entry is written to a private
file first and renamed into place (atomic on POSIX and Windows), entries are JSON (reading one
cannot run code), and an entry that cannot be read or does not fit is a miss, never an error.
A cache that cannot be created or written (a read-only checkout) is silently not used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from wd_guard import __version__
from wd_guard.lint.fixes.atomic import replace_file
from wd_guard.lint.diagnostic import Diagnostic, Edit, Fix
from wd_guard.lint.diagnostic import SYNTAX, TOO_DEEP, Job, Outcome, Problem

__all__ = ["DEFAULT_DIR", "ENV_VAR", "Cache", "cache_dir", "fingerprint"]

DEFAULT_DIR = ".wd-lint-cache"
ENV_VAR = "WD_LINT_CACHE_DIR"
# Problems that follow from the text alone; timeouts and crashes may not happen again.
_LASTING = frozenset({SYNTAX, TOO_DEEP})
_KEEP_OTHERS = 4  # folders of other linter versions kept (two environments may alternate)
_FOLDER = re.compile(r"[0-9a-f]{20}")  # a fingerprint: the folder of one linter version
_TAG = "Signature: 8a477f597d28d172789f06886806bc55\n# This folder is a cache made by wd-lint; see https://bford.info/cachedir/\n"


def cache_dir(option: Optional[str], root: Path, environ: Mapping[str, str] = os.environ) -> Path:
    """Where the cache lives: ``--cache-dir``, else ``$WD_LINT_CACHE_DIR``, else
    ``.wd-lint-cache`` in ``root``; relative paths are taken from the current folder."""
    chosen = option or environ.get(ENV_VAR) or ""
    return Path(chosen).expanduser() if chosen else Path(root) / DEFAULT_DIR


def fingerprint() -> str:
    """What identifies this linter: version, modules, Python and libcst. Costs a few ``stat``
    calls, no import."""
    linter = Path(__file__).resolve().parent.parent
    parts: List[str] = [__version__, sys.version, sys.implementation.cache_tag or ""]
    stages = sorted(entry.path for entry in os.scandir(linter) if entry.is_dir() and not entry.name.startswith(("_", ".")))
    for folder in (linter, *map(Path, stages), Path(sys.modules["wd_guard"].__file__ or "").resolve().parent):
        parts.extend(_stamps(folder))
    parts.extend(_stamps(_libcst_folder(), names=("__init__.py", "_version.py")))
    return hashlib.blake2b("\n".join(parts).encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()


def _stamps(folder: Optional[Path], names: Optional[Tuple[str, ...]] = None) -> Iterator[str]:
    if folder is None:
        return
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.endswith(".py") and (names is None or entry.name in names):
            info = entry.stat()
            yield f"{entry.path} {info.st_size} {info.st_mtime_ns}"


def _libcst_folder() -> Optional[Path]:
    from importlib.util import find_spec

    spec = find_spec("libcst")
    return Path(spec.origin).parent if spec is not None and spec.origin else None


class Cache:
    """The entries of one linter version in a cache folder; use :meth:`open`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writable = True

    @classmethod
    def open(cls, directory: Path) -> Optional["Cache"]:
        """The cache in ``directory`` (created when missing), or None when it cannot be used."""
        directory = Path(directory)
        try:
            ours = _prepare(directory)
            folder = directory / fingerprint()
            folder.mkdir(exist_ok=True)
            os.utime(folder)  # marks it as in use, for pruning
        except OSError:
            return None
        if ours:
            _prune(directory, keep=folder.name)
        return cls(folder)

    # -- entries ----------------------------------------------------------------------------

    @staticmethod
    def key(job: Job) -> str:
        """The entry name for ``job``: its kind, its text and its codes."""
        digest = hashlib.blake2b(digest_size=20)
        digest.update(",".join(sorted(job.codes)).encode("ascii"))
        digest.update(b"\0" + job.kind.encode("ascii") + b"\0")
        digest.update(job.text.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def get(self, job: Job) -> Optional[Outcome]:
        """The remembered outcome of ``job``'s analysis, or None."""
        key = self.key(job)
        entry = self._read(key)
        if entry is None or entry.get("key") != key:
            return None
        try:
            return _outcome(entry, job.path)
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, job: Job, outcome: Outcome) -> None:
        """Remember ``outcome`` for ``job`` when it follows from the text alone."""
        if outcome.problem is not None and outcome.problem.kind not in _LASTING:
            return
        key = self.key(job)
        self._write(key, dict(key=key, **_entry(outcome)))

    # -- files ------------------------------------------------------------------------------

    def _read(self, name: str) -> Optional[Dict[str, Any]]:
        try:
            with open(self.folder / name, "rb") as handle:
                entry = json.loads(handle.read())
        except (OSError, ValueError):  # missing, unreadable, or not JSON: a miss
            return None
        return entry if isinstance(entry, dict) else None

    def _write(self, name: str, entry: Dict[str, Any]) -> None:
        if not self.writable:
            return
        try:
            replace_file(self.folder / name, json.dumps(entry, separators=(",", ":")).encode("utf-8", "surrogatepass"))
        except OSError:
            self.writable = False  # a full disk or a read-only folder: stop trying


def _outcome(entry: Dict[str, Any], path: str) -> Outcome:
    problem = entry.get("problem")
    if problem is not None:
        kind, reason, line, column = problem
        return Outcome(problem=Problem(path, _text(kind), _text(reason), _number(line), _number(column)))
    diagnostics = tuple(_diagnostic(item, path) for item in entry["diagnostics"])
    return Outcome(diagnostics=diagnostics)


def _diagnostic(item: Any, path: str) -> Diagnostic:
    code, message, line, column, end_line, end_column, fix = item
    numbers = [_number(value) for value in (line, column, end_line, end_column)]
    if any(value is None for value in numbers):
        raise ValueError("a position is missing")
    return Diagnostic(_text(code), _text(message), *numbers, path, _fix(fix))  # type: ignore[arg-type]


def _fix(item: Any) -> Optional[Fix]:
    if item is None:
        return None
    title, unsafe, edits = item
    if not isinstance(unsafe, bool):
        raise TypeError("expected true or false")
    return Fix(_text(title), tuple(Edit(_offset(start), _offset(end), _text(content)) for start, end, content in edits), unsafe)


def _entry(outcome: Outcome) -> Dict[str, Any]:
    if outcome.problem is not None:
        problem = outcome.problem
        return {"problem": [problem.kind, problem.reason, problem.line, problem.column]}
    rows = [[d.code, d.message, d.line, d.column, d.end_line, d.end_column, _fix_row(d.fix)] for d in outcome.diagnostics]
    return {"diagnostics": rows}


def _fix_row(fix: Optional[Fix]) -> Optional[List[Any]]:
    if fix is None:
        return None
    return [fix.title, fix.unsafe, [[edit.start, edit.end, edit.content] for edit in fix.edits]]


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _offset(value: Any) -> int:
    number = _number(value)
    if number is None:
        raise TypeError("expected an offset")
    return number


def _number(value: Any) -> Optional[int]:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise TypeError(f"expected a line or column, got {value!r}")


def _prepare(directory: Path) -> bool:
    """Create the cache folder with its ``.gitignore`` and ``CACHEDIR.TAG``; True when it is
    ours. A folder that exists already is ours when it is empty or has the tag: a user's own
    folder gets neither file and is never pruned."""
    if directory.is_dir() and not (directory / "CACHEDIR.TAG").exists() and any(os.scandir(directory)):
        return False
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in ((".gitignore", "# Made by wd-lint.\n*\n"), ("CACHEDIR.TAG", _TAG)):
        path = directory / name
        if not path.exists():
            replace_file(path, content.encode("utf-8"))
    return True


def _prune(directory: Path, keep: str) -> None:
    """Remove the folders of all but the few most recently used other linter versions (only
    folders named like ours: nothing else in a shared folder is touched)."""
    try:
        others = [e for e in os.scandir(directory) if _FOLDER.fullmatch(e.name) and e.name != keep and e.is_dir(follow_symlinks=False)]
        if len(others) <= _KEEP_OTHERS:
            return
        others.sort(key=lambda entry: entry.stat(follow_symlinks=False).st_mtime, reverse=True)
    except OSError:
        return
    import shutil

    for entry in others[_KEEP_OTHERS:]:
        shutil.rmtree(entry.path, ignore_errors=True)  # a run still reading it only misses
