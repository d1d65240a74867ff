"""Replace a file so that readers see its old content or the new, never half of either.

Used by the result cache, by ``--fix`` (which also keeps the file's mode and flushes it to disk)
and by the table of compiled dataclass methods (``compiled``). Light on purpose (``os`` and
``threading`` only): a worker writes that table right after its imports.
"""

from __future__ import annotations

import os
import threading
from typing import BinaryIO, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

_SUFFIX = ".tmp"  # a writer's private file: ".<name>.<process>.<thread>.tmp", beside the file


def replace_file(path: PathLike, data: bytes, *, mode: Optional[int] = None, durable: bool = False) -> None:
    """Write ``path`` through a file private to this writer, renamed into place (atomic on POSIX
    and Windows). ``mode`` sets its permissions; ``durable`` flushes it to disk before the
    rename, so that a crash cannot leave an empty file (what a fixed source file needs, not a
    cache entry). Raises OSError; whatever happens, no private file is left behind."""
    folder, name = os.path.split(os.fspath(path))
    temporary = os.path.join(folder, f"{_prefix(name)}{os.getpid()}.{threading.get_ident()}{_SUFFIX}")
    try:
        with _create(temporary, private=mode is not None) as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:  # an OSError, or an interrupt mid-write
        remove_quietly(temporary)
        raise


def remove_leftovers(path: PathLike) -> None:
    """Remove the private files that writers of ``path`` left behind when they were killed
    before their rename. A writer still at work loses its private file, so its rename fails
    and it writes nothing: the file at ``path`` stays whole either way."""
    folder, name = os.path.split(os.fspath(path))
    try:
        names = [entry.name for entry in os.scandir(folder or ".") if entry.name.startswith(_prefix(name))]
    except OSError:
        return
    for leftover in names:
        if leftover.endswith(_SUFFIX):
            remove_quietly(os.path.join(folder, leftover))


def remove_quietly(path: PathLike) -> None:
    """Remove ``path``; one that is gone already, or cannot be removed, is left as it is."""
    try:
        os.unlink(path)
    except OSError:
        pass


def _create(path: str, private: bool) -> BinaryIO:
    """A new file open for writing; owner-only when ``private``, so that the content of a file
    whose own mode is, say, 0600 is never readable by others before the final chmod."""
    return open(path, "wb", opener=lambda file, flags: os.open(file, flags, 0o600 if private else 0o666))


def _prefix(name: str) -> str:
    return f".{name}."
