"""Stop ``wd-lint`` cleanly on SIGTERM and SIGHUP, as Ctrl-C does.

Without a handler these signals end the process at once: the finally blocks that stop the
worker pool and remove a half-written private file of ``--fix`` never run. With one, the
signal raises ``Stopped`` in the main thread, that cleanup runs, and the command exits with
128 plus the signal's number, as a shell reports a process ended by it. A second signal
during the cleanup is ignored; SIGKILL still ends everything (workers included: they ask the
kernel for a signal when the command dies).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Stopped(BaseException):
    """A stop signal arrived; a BaseException, like KeyboardInterrupt, so that no
    ``except Exception`` swallows it on its way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise(signum: int, frame: Any) -> None:
    for number in STOP_SIGNALS:  # the cleanup that follows runs to its end
        signal.signal(number, signal.SIG_IGN)
    raise Stopped(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise ``Stopped`` (main thread only: elsewhere
    Python cannot install handlers and the block runs unchanged)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: Dict[int, Any] = {number: signal.signal(number, _raise) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
