"""Workers never outlive ``wd-lint``: a real command, killed during analysis with each signal
(and the way ``subprocess.run(timeout=...)`` kills), leaves no process of its group running, and the
caller's ``communicate()`` returns at once (no worker holds the command's pipes open).

Linux only: the processes are read from ``/proc``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux") or not os.path.isdir("/proc/self"), reason="reads /proc"),
    pytest.mark.timeout(300),
]

WORKERS = 2
# libcst parses a long operator chain in quadratic time: each file keeps a worker busy for
# many seconds, long after the kill.
SLOW = "import torch\nopt = torch.optim.Adam(params, weight_decay=1e-2)\nx = " + " + ".join(["a"] * 4000) + "\n"


def wd_lint() -> List[str]:
    """The installed ``wd-lint`` command of this environment."""
    script = Path(sys.executable).with_name("wd-lint")
    if not script.exists():
        pytest.skip("the wd-lint command is not installed beside this Python")
    return [str(script), "--isolated", "--no-cache", "-j", str(WORKERS)]


def processes() -> Dict[int, Tuple[str, int, int]]:
    """Every process: its state, parent and process group, from /proc."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                text = handle.read()
        except OSError:  # gone meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()
        table[int(entry)] = (fields[0], int(fields[1]), int(fields[2]))
    return table


def descendants(root: int) -> Set[int]:
    table = processes()
    found = {root}
    while True:
        more = {pid for pid, (_, parent, _) in table.items() if parent in found} - found
        if not more:
            return found - {root}
        found |= more


def running(pids: Set[int], group: int) -> Set[int]:
    """Those of ``pids``, and of the process group, that still run (zombies are dead)."""
    table = processes()
    return {pid for pid, (state, _, pgrp) in table.items() if state != "Z" and (pid in pids or pgrp == group)}


def wait_for_workers(pid: int, count: int) -> Set[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = descendants(pid)
        if len(found) >= count:
            time.sleep(0.5)  # the workers have their jobs
            return descendants(pid)
        time.sleep(0.05)
    pytest.fail("wd-lint started no workers within 60 s")


def survivors_after(pids: Set[int], group: int, grace: float = 10.0) -> Set[int]:
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        alive = running(pids, group)
        if not alive:
            return alive
        time.sleep(0.1)
    alive = running(pids, group)
    for pid in alive:  # leave nothing behind for the next test
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return alive


@pytest.fixture(scope="module")
def slow_tree(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("slow")
    for index in range(WORKERS + 1):
        (folder / f"slow_{index}.py").write_text(SLOW)
    return folder


@pytest.mark.parametrize(
    "signum, status",
    [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGHUP, 128 + signal.SIGHUP), (signal.SIGINT, 130), (signal.SIGKILL, -signal.SIGKILL)],
    ids=["SIGTERM", "SIGHUP", "SIGINT", "SIGKILL"],
)
def test_killed_during_analysis_leaves_no_worker_and_no_open_pipe(slow_tree, signum, status):
    command = wd_lint() + [str(slow_tree)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    workers: Set[int] = set()
    try:
        workers = wait_for_workers(proc.pid, WORKERS)
        proc.send_signal(signum)
        started = time.monotonic()
        out, err = proc.communicate(timeout=30)
        assert time.monotonic() - started < 10, "a worker held the command's output open"
    except BaseException:
        stop(proc, workers)
        raise
    assert survivors_after(workers, proc.pid) == set()
    assert proc.returncode == status, err
    if signum in (signal.SIGTERM, signal.SIGHUP):
        assert f"wd-lint: stopped by {signal.Signals(signum).name}" in err.decode()


def test_a_caller_timeout_then_kill_and_communicate_returns(slow_tree):
    # What ``subprocess.run(..., timeout=...)`` does, with the process kept at hand.
    proc = subprocess.Popen(wd_lint() + [str(slow_tree)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    workers: Set[int] = set()
    try:
        workers = wait_for_workers(proc.pid, WORKERS)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.communicate(timeout=1)
        proc.kill()
        started = time.monotonic()
        proc.communicate(timeout=30)
        assert time.monotonic() - started < 10
    except BaseException:
        stop(proc, workers)
        raise
    assert workers and survivors_after(workers, proc.pid) == set()


def stop(proc: "subprocess.Popen[bytes]", workers: Set[int]) -> None:
    """After a failed check: end the command and whatever it started, here and now."""
    if proc.poll() is None:
        proc.kill()
    for pid in running(workers, proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    proc.wait()
