"""The spare worker that ``wd-lint`` forks first: it answers the first job, or dies unused."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the spare worker forks: Linux only")

BAD = "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)\n"

# Run in a fresh interpreter, as the command runs: forking a test runner's process is not.
PRELUDE = textwrap.dedent(
    """\
    import os, signal, sys
    from wd_guard.lint import spare
    from wd_guard.lint.runner import Options, lint_files

    def gone(pid):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return True
        return False

    assert spare.start(), "no spare on a Linux machine with two CPUs"
    pid = spare._spare[0]
    """
)


def run(tmp_path, body: str) -> str:
    (tmp_path / "bad.py").write_text(BAD)
    script = PRELUDE + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(autouse=True)
def two_cpus():
    import os

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("the spare worker is only started with two CPUs or more")


def test_first_job_goes_to_the_spare_which_is_then_stopped_and_reaped(tmp_path):
    out = run(
        tmp_path,
        """
        report = lint_files(["bad.py"], Options(processes=1))
        print([d.code for d in report.diagnostics], spare._spare is None, gone(pid))
        """,
    )
    assert out.split() == ["['WD101',", "'WD210']", "True", "True"]


def test_unused_spare_is_killed_and_reaped(tmp_path):
    out = run(
        tmp_path,
        """
        spare.discard()
        try:
            os.kill(pid, 0)
            alive = True
        except ProcessLookupError:
            alive = False
        print(alive, gone(pid), spare.start())
        spare.discard()
        """,
    )
    assert out.split() == ["False", "True", "True"]


def test_a_spare_that_died_is_replaced(tmp_path):
    out = run(
        tmp_path,
        """
        os.kill(pid, signal.SIGKILL)
        report = lint_files(["bad.py"], Options(processes=1))
        print([d.code for d in report.diagnostics], [p.kind for p in report.problems])
        """,
    )
    assert out.split() == ["['WD101',", "'WD210']", "[]"]


def test_a_parser_crash_in_the_spare_is_reported_for_its_file(tmp_path):
    # The spare dies on its job as a worker would: the file is tried once more on a fresh
    # worker, then reported with the reason; the run itself goes on.
    out = run(
        tmp_path,
        """
        from wd_guard.lint import isolate
        job = isolate.Job("bad.py", open("bad.py").read(), frozenset({"WD101"}))
        taken = spare.take()
        worker = isolate._Worker(*taken)
        worker.send(job)
        os.kill(pid, signal.SIGKILL)
        pool = isolate._Pool(1, timeout=60)
        pool.workers.append(worker)
        done = list(pool._collect([worker]))
        pool.close()
        print(done[0][1].problem.kind, gone(pid))
        """,
    )
    assert out.split() == ["parser-crash", "True"]


def test_command_flushes_its_output_before_exiting_at_once(tmp_path):
    (tmp_path / "bad.py").write_text(BAD)
    many = [f"m{index}.py" for index in range(30)]
    for name in many:
        (tmp_path / name).write_text(BAD)
    result = subprocess.run(
        [sys.executable, "-m", "wd_guard.lint", "--no-cache", "bad.py", *many],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout.count(" WD101 ") == 31 and result.stdout.count(" WD210 ") == 31
    assert result.stderr.startswith("Found 62 findings in 31 files")


def test_no_spare_when_the_machine_cannot_fork(tmp_path):
    (tmp_path / "bad.py").write_text(BAD)
    script = textwrap.dedent(
        """\
        import os
        from wd_guard.lint import spare
        from wd_guard.lint.runner import Options, lint_files

        def refuse():
            raise BlockingIOError(11, "Resource temporarily unavailable")

        before = len(os.listdir("/proc/self/fd"))
        os.fork = refuse
        print(spare.start(), spare._spare, len(os.listdir("/proc/self/fd")) == before)
        report = lint_files(["bad.py"], Options(processes=0))
        print([d.code for d in report.diagnostics])
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "None", "True", "['WD101',", "'WD210']"]


def test_commands_that_start_no_spare_are_real_options():
    from wd_guard.lint import entry
    from wd_guard.lint.cli import build_parser

    options = {option for action in build_parser()._actions for option in action.option_strings}
    assert entry._NO_PARSE - {"rule"} <= options
    assert entry._NO_PARSE >= {"--explain", "--help", "--version"}


@pytest.mark.parametrize(
    "module, load",
    [
        ("isolate", "isolate.preload()"),  # a worker: the spare or the pool's
        ("spare", "spare.import_without_collections('wd_guard.lint.cli')"),  # the command
    ],
)
def test_imports_run_with_the_collector_paused_and_leave_it_running(module, load):
    # The collector is paused while the modules load (nothing they make is garbage) and must be
    # running again afterwards, with the loaded objects frozen out of later collections.
    script = textwrap.dedent(
        f"""\
        import gc
        from wd_guard.lint import {module}
        before = gc.get_freeze_count()
        phases = []
        gc.callbacks.append(lambda phase, info: phases.append(phase))
        {load}
        print(gc.isenabled(), gc.get_freeze_count() > before, len(phases))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "0"]
