"""A worker forked before anything else is loaded, so that importing libcst overlaps start-up.

Importing libcst costs about 0.1 s of CPU even with its compiled dataclass methods kept (see
``compiled``; 0.2 s without), most of what a pre-commit run on one changed file takes. The
``wd-lint`` command (see ``entry``) therefore forks this worker before it loads its own
modules; the worker imports the parser and the rules while the command reads its options and
configuration, finds the files, reads them and filters them on their bytes.
The pool (see ``isolate``) adopts it for its first job. When no file needs parsing (nothing
in the change mentions an optimizer, or the cache knows every file) it is killed unused: the
work it did ran on another CPU, so the command did not wait for it.

Only on Linux with more than one CPU available: with a single CPU the worker would compete
with the command instead of overlapping it, and other systems do not fork cheaply. Both the
command and every worker load their modules through :func:`import_without_collections`.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from typing import Any, List, Optional, Tuple

_spare: Optional[Tuple[int, int, int]] = None  # (pid, job pipe's write end, outcome pipe's read end)


def start() -> bool:
    """Fork the spare worker now, when it can pay off; True when one was started."""
    global _spare
    if _spare is not None or not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2:
        return False
    fds: List[int] = []
    try:
        fds.extend(os.pipe())
        fds.extend(os.pipe())
        pid = os.fork()
    except OSError:  # out of processes or descriptors: the pool starts its workers later
        for fd in fds:
            os.close(fd)
        return False
    job_read, job_write, outcome_read, outcome_write = fds
    if pid == 0:  # the worker: never returns into the command's code
        os.close(job_write)
        os.close(outcome_read)
        _serve(job_read, outcome_write)
    os.close(job_read)
    os.close(outcome_write)
    _spare = (pid, job_write, outcome_read)
    return True


def _serve(job_read: int, outcome_write: int) -> None:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the command's to handle
        gc.disable()  # until the imports are done: isolate.preload enables it again
        from wd_guard.lint import isolate

        isolate.serve(_Channel(job_read, outcome_write))
        code = 0
    finally:
        os._exit(code)  # the command's buffers and exit handlers are the command's, not ours


def import_without_collections(module: str) -> None:
    """Import ``module`` with the garbage collector paused, then freeze what was loaded.

    Importing libcst and the rules makes tens of thousands of objects (node classes, their
    generated methods) that live as long as the process, so the collections their creation
    sets off find nothing to free; they cost about an eighth of the import. Frozen, those
    objects are left out of later collections, during parses, too.
    """
    gc.disable()
    try:
        __import__(module)  # the builtin: importlib itself is not loaded yet
    finally:
        gc.freeze()
        gc.enable()


def take() -> Optional[Tuple[Any, Any]]:
    """The spare's (connection, process), for the pool's first worker; None when there is none."""
    global _spare
    if _spare is None:
        return None
    pid, job_write, outcome_read = _spare
    _spare = None
    return _Channel(outcome_read, job_write), _Forked(pid)


def discard() -> None:
    """Kill the spare if no pool took it, and reap it."""
    taken = take()
    if taken is not None:
        connection, process = taken
        process.kill()
        process.join()
        connection.close()


class _Channel:
    """Pickled objects over two one-way pipes, each as an 8-byte length and the pickle.

    It offers what the pool uses of a ``multiprocessing`` connection (send, recv, poll,
    fileno, close) without importing ``multiprocessing``, which would cost the worker
    about 15 ms on its way to the first job.
    """

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd, self.write_fd = read_fd, write_fd

    def send(self, obj: Any) -> None:
        import pickle

        data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(len(data).to_bytes(8, "big") + data)
        while view:
            view = view[os.write(self.write_fd, view) :]

    def recv(self) -> Any:
        import pickle

        size = int.from_bytes(self._read(8), "big")
        return pickle.loads(self._read(size))

    def _read(self, size: int) -> bytes:
        chunks, left = [], size
        while left:
            chunk = os.read(self.read_fd, min(left, 1 << 20))
            if not chunk:
                raise EOFError("the other end closed the pipe")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def poll(self, timeout: float = 0.0) -> bool:
        import select

        return bool(select.select([self.read_fd], [], [], timeout)[0])

    def fileno(self) -> int:
        return self.read_fd  # what ``multiprocessing.connection.wait`` watches

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:  # closed already
                pass
        self.read_fd = self.write_fd = -1


class _Forked:
    """What the pool uses of ``multiprocessing.Process``, for a process made by ``os.fork``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.exitcode: Optional[int] = None
        # Readable once the process exits, like Process.sentinel (Linux 5.3 and later).
        self.sentinel: Optional[int] = _pidfd(pid)

    def is_alive(self) -> bool:
        return self._reap(block=False) is None

    def join(self, timeout: Optional[float] = None) -> None:
        if timeout is None:
            self._reap(block=True)
        elif self._reap(block=False) is None:
            import select
            import time

            deadline = time.monotonic() + timeout
            while self._reap(block=False) is None and time.monotonic() < deadline:
                if self.sentinel is not None:  # wakes the moment the process exits
                    select.select([self.sentinel], [], [], max(0.0, deadline - time.monotonic()))
                else:
                    time.sleep(0.005)

    def kill(self) -> None:
        if self.exitcode is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _reap(self, block: bool) -> Optional[int]:
        if self.exitcode is None:
            try:
                pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: gone, with a status nobody kept
                pid, status = self.pid, 1 << 8
            if pid:
                self.exitcode = os.waitstatus_to_exitcode(status)
                if self.sentinel is not None:
                    os.close(self.sentinel)
                    self.sentinel = None
        return self.exitcode


def _pidfd(pid: int) -> Optional[int]:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None
