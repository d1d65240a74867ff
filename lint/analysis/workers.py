"""Analyse sources in worker processes, so that a parser crash or hang costs one file, not the run.

libcst's native parser recurses on the machine stack: a few thousand nested brackets make it
overflow and kill the process, and deep nesting can take minutes. Each job therefore runs on a
thread with a large stack and a high recursion limit, in a worker of a pebble process pool
that kills a job's worker once it takes longer than ``timeout`` seconds and replaces a worker
that dies. A file whose worker died is tried once more (the death may have had another cause,
such as the OOM killer), then reported with the reason. ``processes=0`` analyses in this
process (no isolation). ``--fix`` runs its jobs through the same pool (``run_jobs`` with another
task), so a file that cannot be fixed costs that file alone too.

Workers never outlive the command: on Linux each asks the kernel for SIGKILL when its parent
dies, whatever killed the parent, and none of them keeps the command's standard streams open,
so a caller waiting for the command's output is not held up by a worker. Workers leave
SIGTERM, SIGHUP and SIGINT to the command: they die on the first two and ignore the third, so
that an interrupted command stops them itself.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import warnings
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

from wd_guard.lint.diagnostic import CONFIG, CRASH, INTERNAL, SYNTAX, TIMEOUT, TOO_DEEP, Job, Outcome, Problem

STACK_SIZE = 512 * 1024 * 1024
RECURSION_LIMIT = 100_000
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

J = TypeVar("J")  # a job: anything with a ``path``, picklable
R = TypeVar("R")  # what a task makes of it


def analyse(job: Job) -> Outcome:
    """Run the engine on one source; every failure becomes a Problem, nothing is raised."""
    if job.kind == CONFIG:
        return analyse_config(job)
    from wd_guard.lint.analysis import engine

    found = guarded(job.path, job.text, lambda: engine.lint_source(job.text, job.path, select=job.codes), "analysing")
    return Outcome(problem=found) if isinstance(found, Problem) else Outcome(diagnostics=tuple(found))


def guarded(path: str, text: str, work: Callable[[], R], doing: str) -> Union[R, Problem]:
    """``work()`` on the source ``text`` of ``path``, or the Problem its failure means for the
    file (a syntax error, nesting too deep, an internal error while ``doing`` it)."""
    import libcst

    try:
        with warnings.catch_warnings():
            # Compiling user code warns about its escapes and literals: not wd-lint's business.
            warnings.simplefilter("ignore", SyntaxWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return work()
    except libcst.ParserSyntaxError as exc:
        return syntax_problem(path, exc, text)
    except RecursionError:
        return Problem(path, TOO_DEEP, f"nested too deeply: Python's recursion limit reached while {doing}")
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: B036 - the native parser's panics derive from BaseException
        return Problem(path, INTERNAL, f"internal error while {doing}: {type(exc).__name__}: {exc}")


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


def failed_analysis(problem: Problem) -> Outcome:
    """The outcome of an analysis whose worker timed out or died."""
    return Outcome(problem=problem)


def run_jobs(
    jobs: Sequence[J],
    processes: int,
    timeout: float,
    task: Callable[[J], R] = analyse,  # type: ignore[assignment]
    failed: Callable[[Problem], R] = failed_analysis,  # type: ignore[assignment]
    stage: str = "analysis",
) -> Iterator[Tuple[J, R]]:
    """Each job with ``task(job)`` (by default ``analyse``), in completion order;
    ``processes=0`` means in this process. A job whose worker timed out or died gets
    ``failed(problem)`` instead, the problem naming the ``stage``. ``task`` must be a
    module-level function (workers receive it by name).

    Workers are started only when there is a job, and never more than there are jobs.
    """
    if not jobs:
        return
    if processes <= 0:
        for job in jobs:
            yield job, call_with_deep_stack(task, job)
        return
    from pebble import ProcessPool  # here: a run with nothing to parse never loads it

    pool = ProcessPool(min(processes, len(jobs)), initializer=_start_worker, initargs=(os.getpid(),), context=_context())
    try:
        yield from _results(pool, jobs, timeout, task, failed, stage)
    finally:
        pool.stop()
        pool.join()


def _results(pool: Any, jobs: Sequence[J], timeout: float, task: Callable[[J], R], failed: Callable[[Problem], R], stage: str) -> Iterator[Tuple[J, R]]:
    from concurrent.futures import FIRST_COMPLETED, wait

    def schedule(job: J) -> Any:
        return pool.schedule(call_with_deep_stack, (task, job), timeout=timeout)

    pending = {schedule(job): (job, 0) for job in jobs}
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            job, tries = pending.pop(future)
            result = _result(future, getattr(job, "path"), timeout, stage)
            if isinstance(result, Problem) and result.kind == CRASH and not tries:
                pending[schedule(job)] = (job, 1)
            else:
                yield job, failed(result) if isinstance(result, Problem) else result


def _result(future: Any, path: str, timeout: float, stage: str) -> Any:
    """The task's result, or the Problem that the pool reports instead."""
    from pebble import ProcessExpired

    try:
        return future.result()
    except FutureTimeout:
        return Problem(path, TIMEOUT, f"{stage} took longer than {timeout:g} s; skipped")
    except ProcessExpired as exc:
        return Problem(path, CRASH, f"the parser crashed ({_exit_reason(exc.exitcode)})")
    except Exception as exc:  # the pool itself failed (out of processes): this file, not the run
        return Problem(path, INTERNAL, f"internal error during {stage}: {type(exc).__name__}: {exc}")


def _start_worker(parent: int) -> None:
    """Tie the worker to the command and load the parser before the first job."""
    _die_with_parent(parent)
    for name, action in (("SIGTERM", signal.SIG_DFL), ("SIGHUP", signal.SIG_DFL), ("SIGINT", signal.SIG_IGN)):
        if hasattr(signal, name):  # the command's own handlers, inherited through fork, are not the worker's
            signal.signal(getattr(signal, name), action)
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
