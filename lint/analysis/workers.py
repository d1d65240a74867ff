"""Analyse sources in worker processes, so that a parser crash or hang costs one file, not the run.

libcst's native parser recurses on the machine stack: a few thousand nested brackets make it
overflow and kill the process, and deep nesting can take minutes. Each job therefore runs on a
thread with a large stack and a high recursion limit, in a worker of a pebble process pool
that kills a job's worker once it takes longer than ``timeout`` seconds and replaces a worker
that dies. A file whose worker died is tried once more (the death may have had another cause,
such as the OOM killer), then reported with the reason. ``processes=0`` analyses in this
process (no isolation).

Workers never outlive the command: on Linux each asks the kernel for SIGKILL when its parent
dies, whatever killed the parent, and none of them keeps the command's standard streams open,
so a caller waiting for the command's output is not held up by a worker.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

from wd_guard.lint.diagnostic import CONFIG, CRASH, INTERNAL, SYNTAX, TIMEOUT, TOO_DEEP, Job, Outcome, Problem

STACK_SIZE = 512 * 1024 * 1024
RECURSION_LIMIT = 100_000
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def analyse(job: Job) -> Outcome:
    """Run the engine on one source; every failure becomes a Problem, nothing is raised."""
    if job.kind == CONFIG:
        return analyse_config(job)
    import libcst

    from wd_guard.lint.analysis import engine

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


def analyse_config(job: Job) -> Outcome:
    """The YAML rules on one config; invalid YAML is a syntax problem with its position."""
    from wd_guard.lint.rules.configs import ConfigSyntaxError, lint_config

    try:
        return Outcome(diagnostics=tuple(lint_config(job.text, job.path, select=job.codes)))
    except ConfigSyntaxError as exc:
        return Outcome(problem=Problem(job.path, SYNTAX, str(exc), exc.line, exc.column))
    except RecursionError:
        return Outcome(problem=Problem(job.path, TOO_DEEP, "nested too deeply to analyse"))
    except Exception as exc:  # a bug: this file, not the run
        return Outcome(problem=Problem(job.path, INTERNAL, f"internal error while analysing: {type(exc).__name__}: {exc}"))


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


def analyse_on_deep_stack(job: Job) -> Outcome:
    """``analyse`` on a thread with a large stack: what each worker runs for a job."""
    return call_with_deep_stack(analyse, job)


def run_jobs(jobs: Sequence[Job], processes: int, timeout: float) -> Iterator[Tuple[Job, Outcome]]:
    """Each job with its outcome, in completion order; ``processes=0`` means in this process.

    Workers are started only when there is a job, and never more than there are jobs.
    """
    if not jobs:
        return
    if processes <= 0:
        for job in jobs:
            yield job, analyse_on_deep_stack(job)
        return
    from pebble import ProcessPool  # here: a run with nothing to parse never loads it

    pool = ProcessPool(min(processes, len(jobs)), initializer=_start_worker, initargs=(os.getpid(),), context=_context())
    try:
        yield from _results(pool, jobs, timeout)
    finally:
        pool.stop()
        pool.join()


def _results(pool: Any, jobs: Sequence[Job], timeout: float) -> Iterator[Tuple[Job, Outcome]]:
    from concurrent.futures import FIRST_COMPLETED, wait

    pending = {pool.schedule(analyse_on_deep_stack, (job,), timeout=timeout): (job, 0) for job in jobs}
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            job, tries = pending.pop(future)
            outcome = _outcome(future, job, timeout)
            if outcome.problem is not None and outcome.problem.kind == CRASH and not tries:
                pending[pool.schedule(analyse_on_deep_stack, (job,), timeout=timeout)] = (job, 1)
            else:
                yield job, outcome


def _outcome(future: Any, job: Job, timeout: float) -> Outcome:
    from pebble import ProcessExpired

    try:
        return future.result()
    except FutureTimeout:
        return Outcome(problem=Problem(job.path, TIMEOUT, f"analysis took longer than {timeout:g} s; skipped"))
    except ProcessExpired as exc:
        return Outcome(problem=Problem(job.path, CRASH, f"the parser crashed ({_exit_reason(exc.exitcode)})"))
    except Exception as exc:  # the pool itself failed (out of processes): this file, not the run
        return Outcome(problem=Problem(job.path, INTERNAL, f"internal error while analysing: {type(exc).__name__}: {exc}"))


def _start_worker(parent: int) -> None:
    """Tie the worker to the command and load the parser before the first job."""
    _die_with_parent(parent)
    devnull = os.open(os.devnull, os.O_RDWR)
    for stream in (0, 1, 2):  # the caller's pipes stay with the command alone
        os.dup2(devnull, stream)
    os.close(devnull)
    import wd_guard.lint.analysis.parse  # noqa: F401 - libcst and the rules, once per worker


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request: nobody waits for this worker
        os._exit(1)


def _exit_reason(exitcode: Optional[int]) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"killed by {name}; the file is probably nested too deeply"
    return f"worker exited with status {exitcode}"


def _context() -> Any:
    import multiprocessing

    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def default_processes() -> int:
    """How many workers to use when not told: one per available CPU."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
