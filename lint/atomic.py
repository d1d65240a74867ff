"""Replace a file so that readers see its old content or the new, never half of either.

Light on purpose (``os`` and ``threading`` only): the worker that keeps compiled dataclass
methods (``compiled``) writes through it right after its imports.
"""

from __future__ import annotations

import os
import threading
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]

_SUFFIX = ".tmp"  # a writer's private file: ".<name>.<process>.<thread>.tmp", beside the file


def replace_file(path: PathLike, data: bytes) -> None:
    """Write ``path`` through a file private to this writer, renamed into place (atomic on POSIX
    and Windows). Raises OSError, leaving no private file behind."""
    folder, name = os.path.split(os.fspath(path))
    temporary = os.path.join(folder, f"{_prefix(name)}{os.getpid()}.{threading.get_ident()}{_SUFFIX}")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except OSError:
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


def _prefix(name: str) -> str:
    return f".{name}."
