"""``--fix`` on real files: each file fixed as isolated as its analysis, written back as it
was (mode, owner, links), and nothing fixed that is not the file that was analysed."""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import stat
import subprocess
import sys
import time

import pytest

from wd_guard.lint.analysis import workers
from wd_guard.lint.command import cli
from wd_guard.lint.fixes import apply, atomic

ADAM = "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)\n"
ADAM_FIXED = "import torch\nimport wd_guard\nopt = torch.optim.AdamW(wd_guard.param_groups(model, weight_decay=1e-2), lr=1e-3)\n"


def run(capsys, *args):
    code = cli.main(["--isolated", "--no-cache", "--fix", "--unsafe-fixes", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def forked(monkeypatch):
    # Monkeypatches reach worker processes only through fork.
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs fork")
    monkeypatch.setattr(workers, "_context", lambda: multiprocessing.get_context("fork"))


# -- isolation -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_file_too_deep_for_this_process_does_not_stop_the_others(tmp_path, capsys):
    # Deeper than CPython's parser allows at the default recursion limit: fixing it in the
    # command's own thread ended the whole run in a traceback.
    deep = tmp_path / "a_deep.py"
    deep.write_text(ADAM + "x = " + "-" * 3000 + "1\n")
    normal = tmp_path / "b_normal.py"
    normal.write_text(ADAM)
    code, out, err = run(capsys, "-j", "2", tmp_path)
    assert normal.read_text() == ADAM_FIXED
    if deep.read_text().startswith(ADAM_FIXED):
        assert code == 0, err
    else:  # this Python's parser refuses it even on a deep stack: reported, the run goes on
        assert code == 2 and "a_deep.py" in err, err


def test_a_crash_while_fixing_costs_that_file_alone(tmp_path, capsys, monkeypatch, forked):
    real_fix_text = apply.fix_text

    def crash_on(text, path="<string>", **kwargs):
        if path.endswith("crash.py"):
            faulthandler.disable()  # no report of it on the test's terminal
            os.abort()  # a real death of the worker, as a native stack overflow causes
        return real_fix_text(text, path, **kwargs)

    monkeypatch.setattr(apply, "fix_text", crash_on)
    (tmp_path / "crash.py").write_text(ADAM)
    (tmp_path / "fine.py").write_text(ADAM)
    code, out, err = run(capsys, "-j", "2", tmp_path)
    assert code == 2 and (tmp_path / "fine.py").read_text() == ADAM_FIXED
    assert (tmp_path / "crash.py").read_text() == ADAM
    assert "crash.py: error: not fixed: the parser crashed (killed by SIGABRT" in err
    assert "crash.py:2:7: WD101" in out  # its findings stay reported


def test_fixing_that_takes_too_long_is_reported(tmp_path, capsys, monkeypatch, forked):
    real_fix_text = apply.fix_text

    def slow_on(text, path="<string>", **kwargs):
        if path.endswith("slow.py"):
            time.sleep(60)
        return real_fix_text(text, path, **kwargs)

    monkeypatch.setattr(apply, "fix_text", slow_on)
    (tmp_path / "slow.py").write_text(ADAM)
    (tmp_path / "fine.py").write_text(ADAM)
    code, out, err = run(capsys, "-j", "2", "--timeout", "3", tmp_path)
    assert code == 2 and (tmp_path / "fine.py").read_text() == ADAM_FIXED and (tmp_path / "slow.py").read_text() == ADAM
    assert "slow.py: error: not fixed: fixing took longer than 3 s; skipped" in err


# -- what the file is ------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file to another user needs root")
def test_owner_group_and_mode_are_kept(tmp_path, capsys):
    path = tmp_path / "train.py"
    path.write_text(ADAM)
    os.chown(path, 4242, 4243)
    os.chmod(path, 0o640)
    code, out, err = run(capsys, "-j", "0", path)
    info = path.stat()
    assert code == 0 and path.read_text() == ADAM_FIXED
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4242, 4243, 0o640)


def test_hard_links_stay_one_file(tmp_path, capsys):
    path = tmp_path / "train.py"
    path.write_text(ADAM)
    other = tmp_path / "also.txt"
    os.link(path, other)
    code, out, err = run(capsys, "-j", "0", path)
    assert code == 0 and path.read_text() == ADAM_FIXED and other.read_text() == ADAM_FIXED
    assert path.stat().st_ino == other.stat().st_ino and path.stat().st_nlink == 2
    assert sorted(os.listdir(tmp_path)) == ["also.txt", "train.py"]


def test_a_read_only_file_is_left_alone_with_a_message(tmp_path, capsys):
    locked, open_ = tmp_path / "locked.py", tmp_path / "open.py"
    locked.write_text(ADAM)
    open_.write_text(ADAM)
    os.chmod(locked, 0o444)
    code, out, err = run(capsys, "-j", "0", tmp_path)
    assert code == 2 and locked.read_text() == ADAM and open_.read_text() == ADAM_FIXED
    assert "locked.py: error: not fixed: the file is read-only; make it writable to fix it" in err
    assert stat.S_IMODE(locked.stat().st_mode) == 0o444


def test_a_symbolic_link_gets_its_target_fixed(tmp_path, capsys):
    target = tmp_path / "real.py"
    target.write_text(ADAM)
    link = tmp_path / "link.py"
    link.symlink_to(target)
    code, out, err = run(capsys, "-j", "1", link)
    assert code == 0 and link.is_symlink() and target.read_text() == ADAM_FIXED


# -- leftovers of killed writers ---------------------------------------------------------------


def gone_process() -> int:
    """The id of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_killed_writers_are_removed_by_the_next_fix(tmp_path, capsys):
    path = tmp_path / "train.py"
    path.write_text(ADAM)
    dead = tmp_path / f".train.py.{gone_process()}.1.tmp"
    old = tmp_path / f".train.py.{os.getppid()}.1.tmp"  # a live process, but an hour old
    young = tmp_path / f".train.py.{os.getppid()}.2.tmp"  # a live process, maybe still writing
    unrelated = tmp_path / ".train.py.notes.tmp"
    for leftover in (dead, old, young, unrelated):
        leftover.write_text("half a file")
    os.utime(old, (time.time() - 2 * atomic.LEFTOVER_AGE,) * 2)
    code, out, err = run(capsys, "-j", "0", path)
    assert code == 0 and path.read_text() == ADAM_FIXED
    assert sorted(os.listdir(tmp_path)) == sorted(["train.py", young.name, unrelated.name])


# -- the file must still be the one analysed ----------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.timeout(60)
def test_a_file_swapped_for_a_fifo_after_analysis_is_refused_not_waited_on(tmp_path, capsys, monkeypatch):
    path = tmp_path / "train.py"
    path.write_text(ADAM)
    real_lint_paths = cli.lint_paths

    def analyse_then_swap(paths, options):
        report = real_lint_paths(paths, options)
        path.unlink()
        os.mkfifo(path)
        return report

    monkeypatch.setattr(cli, "lint_paths", analyse_then_swap)
    code, out, err = run(capsys, "-j", "0", path)
    assert code == 2 and stat.S_ISFIFO(os.lstat(path).st_mode)
    assert "train.py: error: not fixed: cannot read: not a regular file" in err


def test_a_file_too_large_by_fixing_time_is_refused(tmp_path, capsys, monkeypatch):
    path = tmp_path / "train.py"
    path.write_text(ADAM)
    real_lint_paths = cli.lint_paths

    def analyse_then_grow(paths, options):
        report = real_lint_paths(paths, options)
        path.write_text(ADAM + "x = 1\n" * 20)
        return report

    monkeypatch.setattr(cli, "lint_paths", analyse_then_grow)
    code, out, err = run(capsys, "-j", "0", "--max-file-lines", "10", path)
    assert code == 2 and path.read_text() == ADAM + "x = 1\n" * 20
    assert "train.py: error: not fixed: skipped: 22 lines is over max-file-lines (10 lines)" in err


def test_a_file_changed_while_it_is_fixed_keeps_the_change(tmp_path, capsys, monkeypatch):
    path = tmp_path / "train.py"
    path.write_text(ADAM)
    edited = ADAM + "# an edit made meanwhile\n"
    real_fix_text = apply.fix_text

    def edit_meanwhile(text, path_name="<string>", **kwargs):
        path.write_text(edited)
        return real_fix_text(text, path_name, **kwargs)

    monkeypatch.setattr(apply, "fix_text", edit_meanwhile)
    code, out, err = run(capsys, "-j", "0", path)
    assert code == 2 and path.read_text() == edited
    assert "train.py: error: not fixed: the file changed while it was being fixed; run again" in err
