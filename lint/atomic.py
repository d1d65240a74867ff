"""Replace a file so that readers see its old content or the new, never half of either.

Light on purpose (``os`` and ``threading`` only): the worker that keeps compiled dataclass
methods (``compiled``) writes through it right after its imports.
"""

from __future__ import annotations

import os
import threading
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]


def replace_file(path: PathLike, data: bytes) -> None:
    """Write ``path`` through a file private to this writer, renamed into place (atomic on POSIX
    and Windows). Raises OSError, leaving no private file behind."""
    path = os.fspath(path)
    folder, name = os.path.split(path)
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except OSError:
        remove_quietly(temporary)
        raise


def remove_quietly(path: PathLike) -> None:
    """Remove ``path``; one that is gone already, or cannot be removed, is left as it is."""
    try:
        os.unlink(path)
    except OSError:
        pass
