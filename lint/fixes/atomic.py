"""Replace a file so that readers see its old content or the new, never half of either.

Used by the result cache and by ``--fix`` (which also keeps the file's mode and owner and flushes
it to disk). A writer killed before its rename leaves its private file behind; the next writer
of the same file removes it once that writer's process is gone (``remove_leftovers``). Where a
new file would change what the file is (a hard link, an owner this process cannot give),
``--fix`` writes in place instead (``write_in_place``). Light on purpose (``os``, ``stat`` and
``threading`` only).
"""

from __future__ import annotations

import os
import re
import stat
import threading
import time
from typing import BinaryIO, Optional, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]

_SUFFIX = ".tmp"  # a writer's private file: ".<name>.<process>.<thread>.tmp", beside the file
_PRIVATE = re.compile(r"(?P<process>[0-9]+)\.[0-9]+" + re.escape(_SUFFIX))  # what follows ".<name>."
LEFTOVER_AGE = 3600.0  # seconds after which a private file is a leftover whatever its process


def replace_file(
    path: PathLike, data: bytes, *, mode: Optional[int] = None, owner: Optional[Tuple[int, int]] = None, durable: bool = False
) -> None:
    """Write ``path`` through a file private to this writer, renamed into place (atomic on POSIX
    and Windows). ``mode`` sets its permissions and ``owner`` its user and group ids (a
    PermissionError when this process may not give them); ``durable`` flushes it to disk
    before the rename, so that a crash cannot leave an empty file (what a fixed source file
    needs, not a cache entry). Raises OSError; whatever happens, no private file is left
    behind."""
    folder, name = os.path.split(os.fspath(path))
    temporary = os.path.join(folder, f"{_prefix(name)}{os.getpid()}.{threading.get_ident()}{_SUFFIX}")
    try:
        with _create(temporary, private=mode is not None) as handle:
            if owner is not None and hasattr(os, "fchown"):
                _give(handle.fileno(), owner)
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)  # after the owner: chown clears set-user-id bits
        os.replace(temporary, path)
    except BaseException:  # an OSError, or an interrupt mid-write
        remove_quietly(temporary)
        raise


def remove_leftovers(path: PathLike, now: Optional[float] = None) -> None:
    """Remove the private files that writers of ``path`` left behind when they were killed
    before their rename: those whose process no longer runs, and any older than
    ``LEFTOVER_AGE``. A writer still at work that loses its private file this way fails
    its rename and writes nothing: the file at ``path`` stays whole either way."""
    folder, name = os.path.split(os.fspath(path))
    prefix = _prefix(name)
    now = time.time() if now is None else now
    try:
        entries = [entry for entry in os.scandir(folder or ".") if entry.name.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        match = _PRIVATE.fullmatch(entry.name[len(prefix):])
        try:
            if match is not None and entry.is_file(follow_symlinks=False):
                if not _running(int(match.group("process"))) or now - entry.stat(follow_symlinks=False).st_mtime > LEFTOVER_AGE:
                    remove_quietly(entry.path)
        except OSError:
            pass


def write_in_place(path: PathLike, data: bytes, *, expected: Optional[Tuple[int, int]] = None) -> None:
    """Overwrite the regular file at ``path`` with ``data`` through the file itself, flushed to
    disk: every hard link and the owner stay as they are. Not atomic (a reader may see part of
    the new content), so used only where a new file would change what the file is.
    ``expected`` is the file's ``(device, inode)``: another file found at ``path`` is left
    alone (an OSError). Never blocks on a FIFO, never follows a final symbolic link."""
    flags = os.O_WRONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags)
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or (expected is not None and (info.st_dev, info.st_ino) != expected):
            raise OSError(f"{os.fspath(path)} is no longer the file that was read")
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view):]
        os.ftruncate(descriptor, len(data))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


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


def _give(descriptor: int, owner: Tuple[int, int]) -> None:
    info = os.fstat(descriptor)
    if (info.st_uid, info.st_gid) != owner:
        os.fchown(descriptor, *owner)


def _running(process: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    if process == os.getpid():
        return True
    try:
        os.kill(process, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # another user's process, or no way to tell: keep its file
    return True
