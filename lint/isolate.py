"""Analyse sources in worker processes, so that a parser crash or hang costs one file, not the run.

libcst's native parser recurses on the machine stack: a few thousand nested brackets make it
overflow and kill the process, and deep nesting can take minutes. Each worker therefore runs
the engine on a thread with a large stack and a high recursion limit, the parent waits for
each file at most ``timeout`` seconds, and a worker that dies or hangs is replaced. A file
whose worker died is tried once more on a fresh one (the death may have had another cause),
then reported with the reason. ``processes=0`` analyses in this process (no isolation).
"""

from __future__ import annotations

import faulthandler
import itertools
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, FrozenSet, Iterable, Iterator, List, Optional, Set, Tuple

from wd_guard.lint.diagnostic import Diagnostic

STACK_SIZE = 512 * 1024 * 1024
RECURSION_LIMIT = 100_000

# What went wrong with a file; every kind makes the run exit with status 2.
UNREADABLE = "unreadable"
NOT_TEXT = "not-python-text"
SYNTAX = "syntax-error"
TOO_DEEP = "too-deeply-nested"
TOO_LARGE = "too-large"
TIMEOUT = "timeout"
CRASH = "parser-crash"
INTERNAL = "internal-error"


@dataclass(frozen=True)
class Problem:
    """A file wd-lint could not lint, with the reason and, when known, where (1-based)."""

    path: str
    kind: str
    reason: str
    line: Optional[int] = None
    column: Optional[int] = None


@dataclass(frozen=True)
class Job:
    """One decoded source to analyse for ``codes``."""

    path: str
    text: str
    codes: FrozenSet[str]


@dataclass(frozen=True)
class Outcome:
    """The engine's diagnostics for a job, or the problem that stopped it."""

    diagnostics: Tuple[Diagnostic, ...] = ()
    problem: Optional[Problem] = None


def analyse(job: Job) -> Outcome:
    """Run the engine on one source; every failure becomes a Problem, nothing is raised."""
    import libcst

    from wd_guard.lint import engine

    try:
        with warnings.catch_warnings():
            # Compiling user code warns about its escapes and literals: not wd-lint's business.
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            diagnostics = engine.lint_source(job.text, job.path, select=job.codes)
    except libcst.ParserSyntaxError as exc:
        return Outcome(problem=syntax_problem(job.path, exc, job.text))
    except RecursionError:
        return Outcome(problem=Problem(job.path, TOO_DEEP, "nested too deeply to analyse"))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: B036 - the native parser's panics derive from BaseException
        reason = f"internal error while analysing: {type(exc).__name__}: {exc}"
        return Outcome(problem=Problem(job.path, INTERNAL, reason))
    return Outcome(diagnostics=tuple(diagnostics))


def syntax_problem(path: str, exc: Any, text: str) -> Problem:
    """A Problem for a ``libcst.ParserSyntaxError`` at the most precise position known.

    CPython's parser names the line and column of most errors better than libcst does, so
    when it rejects the text too its message and position are used; when it accepts the text
    (syntax newer than libcst knows), libcst's are.
    """
    import ast

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
    except SyntaxError as error:
        if error.lineno:
            return Problem(path, SYNTAX, f"syntax error: {error.msg}", error.lineno, error.offset or None)
    except (RecursionError, MemoryError, ValueError):
        pass
    message = str(getattr(exc, "message", exc))
    for prefix in ("parser error: ", "tokenizer error: "):
        message = message[len(prefix):] if message.startswith(prefix) else message
    if message.startswith("error at ") and ": " in message:
        message = message.split(": ", 1)[1]
    line, column = getattr(exc, "raw_line", None), getattr(exc, "raw_column", None)
    column = column + 1 if isinstance(column, int) else None
    return Problem(path, SYNTAX, f"syntax error: {message}", line, column)


def call_with_deep_stack(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` on a thread with a large stack and a high recursion limit."""
    results: List[Tuple[bool, Any]] = []

    def target() -> None:
        try:
            results.append((True, function(*args)))
        except BaseException as exc:  # noqa: B036 - handed back to the caller's thread
            results.append((False, exc))

    previous_limit = sys.getrecursionlimit()
    try:
        previous_size = threading.stack_size(STACK_SIZE)
    except (ValueError, RuntimeError):  # a platform without adjustable stacks: plain call
        return function(*args)
    thread = threading.Thread(target=target, name="wd-lint-analyse", daemon=True)
    sys.setrecursionlimit(max(previous_limit, RECURSION_LIMIT))
    try:
        thread.start()
    except RuntimeError:  # no memory for such a stack (a tight ulimit): plain call
        sys.setrecursionlimit(previous_limit)
        return function(*args)
    finally:
        threading.stack_size(previous_size)
    try:
        thread.join()
    finally:
        sys.setrecursionlimit(previous_limit)
    ok, value = results[0]
    if ok:
        return value
    raise value


def analyse_in_process(job: Job) -> Outcome:
    """``analyse`` on a deep stack in this process: fast, but a native crash is not contained."""
    return call_with_deep_stack(analyse, job)


def run_jobs(jobs: Iterable[Job], processes: int, timeout: float) -> Iterator[Tuple[Job, Outcome]]:
    """Each job with its outcome, in completion order; ``processes=0`` means in this process."""
    jobs = iter(jobs)
    first = next(jobs, None)
    if first is None:  # nothing to analyse: no worker to start
        return
    jobs = itertools.chain([first], jobs)
    if processes <= 0:
        from wd_guard.lint.compiled import import_reusing

        import_reusing("wd_guard.lint.analysis")
        for job in jobs:
            yield job, analyse_in_process(job)
        return
    pool = _Pool(processes, timeout)
    try:
        yield from pool.run(iter(jobs))
    finally:
        pool.close()


def preload() -> None:
    """Import libcst and the rules now, not at the first job, with the collector paused and
    the dataclass methods compiled on an earlier run reused (see ``spare`` and ``compiled``)."""
    from wd_guard.lint.compiled import reused
    from wd_guard.lint.spare import import_without_collections

    with reused():
        import_without_collections("wd_guard.lint.analysis")


def serve(connection: Any) -> None:
    """Worker main: answer each job sent on ``connection`` until it sends None or closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    faulthandler.disable()  # a crash is reported by the parent, with the file's path
    preload()

    def loop() -> None:
        while True:
            try:
                job = connection.recv()
            except (EOFError, OSError):
                return
            if job is None:
                return
            connection.send(analyse(job))

    call_with_deep_stack(loop)


class _Worker:
    """A process that analyses one job at a time."""

    def __init__(self, connection: Any, process: Any) -> None:
        self.connection, self.process = connection, process
        self.job: Optional[Job] = None
        self.started = 0.0

    @classmethod
    def start(cls, context: Any) -> "_Worker":
        """The spare worker when one is waiting (see ``spare``), else a new process."""
        from wd_guard.lint import spare

        taken = spare.take()
        if taken is not None:
            return cls(*taken)
        connection, child = context.Pipe()
        process = context.Process(target=serve, args=(child,), name="wd-lint-worker", daemon=True)
        process.start()
        child.close()
        return cls(connection, process)

    def send(self, job: Job) -> None:
        self.job, self.started = job, time.monotonic()
        self.connection.send(job)

    def stop(self, grace: float = 1.0) -> None:
        try:
            self.connection.send(None)
        except OSError:
            pass
        self.process.join(grace)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


class _Pool:
    """Up to ``size`` workers, started on demand, replaced when one dies or exceeds ``timeout``."""

    def __init__(self, size: int, timeout: float) -> None:
        self.size, self.timeout = size, timeout
        self.context = _context()
        self.workers: List[_Worker] = []
        # A worker can die for reasons of its own (the OOM killer); its job gets one more try.
        self.retry: List[Job] = []
        self.retried: Set[int] = set()

    def run(self, jobs: Iterator[Job]) -> Iterator[Tuple[Job, Outcome]]:
        exhausted = False
        while True:
            if not exhausted or self.retry:
                exhausted = self._dispatch(jobs) and not self.retry
            busy = [worker for worker in self.workers if worker.job is not None]
            if not busy:
                return
            for job, outcome in self._collect(busy):
                if outcome.problem is not None and outcome.problem.kind == CRASH and id(job) not in self.retried:
                    self.retried.add(id(job))
                    self.retry.append(job)
                else:
                    yield job, outcome

    def _dispatch(self, jobs: Iterator[Job]) -> bool:
        """Give every idle worker (starting new ones up to ``size``) a job; True when none are left."""
        while True:
            idle = next((worker for worker in self.workers if worker.job is None), None)
            if idle is None and len(self.workers) >= self.size:
                return False
            job = self.retry.pop() if self.retry else next(jobs, None)
            if job is None:
                return True
            self._send(idle, job)

    def _send(self, worker: Optional[_Worker], job: Job) -> None:
        """Send ``job`` to ``worker`` (or a new one); a worker found dead is replaced once."""
        for attempt in range(2):
            if worker is None:
                worker = _Worker.start(self.context)
                self.workers.append(worker)
            try:
                worker.send(job)
                return
            except OSError:
                worker.job = None
                worker.stop(grace=0.0)
                self.workers.remove(worker)
                worker = None
                if attempt:
                    raise

    def _collect(self, busy: List[_Worker]) -> Iterator[Tuple[Job, Outcome]]:
        deadline = min(worker.started for worker in busy) + self.timeout
        handles: Dict[Any, _Worker] = {}
        for worker in busy:
            handles[worker.connection] = worker
            if worker.process.sentinel is not None:
                handles[worker.process.sentinel] = worker
        from multiprocessing.connection import wait  # here: a run without workers never loads it

        ready = wait(list(handles), timeout=max(0.0, deadline - time.monotonic()))
        for worker in dict.fromkeys(handles[handle] for handle in ready):
            yield self._finish(worker)
        now = time.monotonic()
        for worker in busy:
            if worker.job is not None and now - worker.started >= self.timeout:
                yield self._replace(worker, TIMEOUT, f"analysis took longer than {self.timeout:g} s; skipped")

    def _finish(self, worker: _Worker) -> Tuple[Job, Outcome]:
        job = worker.job
        assert job is not None
        try:
            if worker.connection.poll():
                outcome = worker.connection.recv()
                worker.job = None
                return job, outcome
        except (EOFError, OSError):
            pass
        worker.process.join(1.0)
        return self._replace(worker, CRASH, f"the parser crashed ({_exit_reason(worker.process.exitcode)})")

    def _replace(self, worker: _Worker, kind: str, reason: str) -> Tuple[Job, Outcome]:
        job = worker.job
        assert job is not None
        worker.job = None
        worker.stop(grace=0.0)
        self.workers.remove(worker)
        return job, Outcome(problem=Problem(job.path, kind, reason))

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers = []


def _exit_reason(exitcode: Optional[int]) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by {name}; the file is probably nested too deeply"
    return f"worker exited with status {exitcode}"


def _context() -> Any:
    # fork is fastest and inherits the loaded engine; only safe while this process has one thread.
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and sys.platform == "linux" and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def default_processes() -> int:
    """How many workers to use when not told: one per available CPU."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
