"""Time commands as whole processes: wall and CPU seconds, and the peak memory of the largest
process of each run, read from the operating system's accounting of the finished child
(``os.wait4``). Commands are run in turn (A B C A B C ...) so that a drift in the machine's
speed touches all of them alike; medians are quoted."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence


@dataclass(frozen=True)
class Sample:
    """One finished run."""

    wall: float
    cpu: float
    peak_mib: float
    exit_code: int


@dataclass
class Command:
    """A command line to time; ``before`` runs ahead of every run, untimed (to empty a cache)."""

    label: str
    argv: Sequence[str]
    runs: int = 3
    warmup: int = 1
    before: Optional[Callable[[], None]] = None
    env: Optional[Mapping[str, str]] = None
    cwd: Optional[str] = None
    samples: List[Sample] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def peak_mib(self) -> float:
        return statistics.median(s.peak_mib for s in self.samples)

    @property
    def exit_codes(self) -> List[int]:
        return sorted({s.exit_code for s in self.samples})


# Started fresh for every run, small, so that its own memory (which a child inherits until it
# runs the command) stays below the figures: it spawns the command and reports the accounting.
_LAUNCHER = """
import json, os, sys, time
argv, cwd, env = json.loads(sys.argv[1])
if cwd:
    os.chdir(cwd)
null = os.open(os.devnull, os.O_WRONLY)
actions = [(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
start = time.perf_counter()
pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
print(json.dumps([wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, os.waitstatus_to_exitcode(status)]))
"""


def run_once(command: Command) -> Sample:
    """Run ``command`` once, its output thrown away, and account for it."""
    if command.before is not None:
        command.before()
    env = {**os.environ, **(command.env or {})}
    spec = json.dumps([list(command.argv), command.cwd, env])
    result = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, spec], capture_output=True, text=True, check=True)
    wall, cpu, max_rss_kib, exit_code = json.loads(result.stdout)
    # ru_maxrss (KiB on Linux) is the largest of the command and the children it waited for.
    return Sample(wall, cpu, max_rss_kib / 1024, exit_code)


def measure(commands: Sequence[Command], log: Callable[[str], None] = lambda line: None) -> Dict[str, Command]:
    """Warm each command up, then run them in turn until each has its ``runs``."""
    for command in commands:
        for _ in range(command.warmup):
            log(f"  warm-up: {command.label}")
            run_once(command)
    for round_ in range(max((c.runs for c in commands), default=0)):
        for command in commands:
            if round_ < command.runs:
                sample = run_once(command)
                command.samples.append(sample)
                log(f"  run {round_ + 1}/{command.runs}: {command.label}: {sample.wall:.2f} s wall, {sample.cpu:.2f} s CPU, {sample.peak_mib:.0f} MiB")
    return {command.label: command for command in commands}
