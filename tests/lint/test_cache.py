"""The result cache: where it lives, what its key covers, and that sharing or breaking it is safe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from wd_guard.lint.analysis import cache as cache_module
from wd_guard.lint.analysis import engine
from wd_guard.lint.analysis.cache import DEFAULT_DIR, ENV_VAR, Cache, cache_dir, fingerprint
from wd_guard.lint.command.cli import main
from wd_guard.lint.diagnostic import Diagnostic, Edit, Fix
from wd_guard.lint.diagnostic import SYNTAX, TIMEOUT, Job, Outcome, Problem

TRAIN = "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)\n"
CODES = frozenset({"WD101", "WD210", "WD302"})


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(capsys, *argv: str):
    code = main(["--jobs", "0", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def entries(folder: Path):
    return sorted(p for p in folder.rglob("*") if p.is_file() and len(p.name) == 40)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    write(tmp_path / "train.py", TRAIN)
    return tmp_path


# -- where ------------------------------------------------------------------------------------


def test_the_option_beats_the_variable_which_beats_the_project_folder(tmp_path):
    root = tmp_path / "project"
    assert cache_dir(None, root, environ={}) == root / DEFAULT_DIR
    assert cache_dir(None, root, environ={ENV_VAR: str(tmp_path / "env")}) == tmp_path / "env"
    assert cache_dir(str(tmp_path / "opt"), root, environ={ENV_VAR: str(tmp_path / "env")}) == tmp_path / "opt"
    assert cache_dir(None, root, environ={ENV_VAR: ""}) == root / DEFAULT_DIR


def test_default_cache_is_in_the_project_root_and_ignores_itself(project, capsys, monkeypatch):
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    write(project / "pyproject.toml", "[tool.wd-lint]\nselect = ['WD1']\n")
    write(project / "src" / "deep" / "train.py", TRAIN)
    monkeypatch.chdir(project / "src" / "deep")
    assert run(capsys, "train.py")[0] == 1
    folder = project / DEFAULT_DIR
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (folder / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert len(entries(folder)) == 1 and not (project / "src" / "deep" / DEFAULT_DIR).exists()
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=project, capture_output=True, text=True, check=True)
    assert DEFAULT_DIR not in status.stdout and "train.py" in status.stdout


def test_cache_dir_option_and_variable_move_it(project, capsys, monkeypatch):
    assert run(capsys, "--cache-dir", "elsewhere", "train.py")[0] == 1
    assert len(entries(project / "elsewhere")) == 1
    monkeypatch.setenv(ENV_VAR, str(project / "from-env"))
    assert run(capsys, "train.py")[0] == 1
    assert len(entries(project / "from-env")) == 1
    assert not (project / DEFAULT_DIR).exists()


def test_no_cache_writes_nothing(project, capsys):
    assert run(capsys, "--no-cache", "train.py")[0] == 1
    assert sorted(p.name for p in project.iterdir()) == ["train.py"]


def test_an_unusable_cache_folder_only_costs_speed(project, capsys):
    write(project / "file", "not a folder\n")
    code, out, err = run(capsys, "--cache-dir", "file/cache", "train.py")
    assert code == 1 and out.count("WD") == 2 and "Found 2 findings" in err
    assert Cache.open(project / "file" / "cache") is None


# -- what a hit is ----------------------------------------------------------------------------


def test_a_hit_is_not_analysed_again(project, capsys, monkeypatch):
    calls = []
    original = engine.lint_source

    def counting(source, path="<string>", **kwargs):
        calls.append(path)
        return original(source, path, **kwargs)

    monkeypatch.setattr(engine, "lint_source", counting)
    first = run(capsys, "train.py")
    assert first[0] == 1 and len(calls) == 1
    assert run(capsys, "train.py") == first and len(calls) == 1
    write(project / "train.py", TRAIN + "# changed\n")  # a new text is a miss
    assert run(capsys, "train.py")[0] == 1 and len(calls) == 2


def test_key_covers_text_and_codes():
    job = Job("a.py", TRAIN, CODES)
    assert Cache.key(job) == Cache.key(Job("elsewhere/b.py", TRAIN, CODES))  # the path is not in it
    assert Cache.key(job) != Cache.key(Job("a.py", TRAIN + "\n", CODES))
    assert Cache.key(job) != Cache.key(Job("a.py", TRAIN, CODES | {"WD204"}))


def test_selection_and_noqa_are_applied_to_cached_findings(project, capsys):
    assert {line.split()[1] for line in run(capsys, "train.py")[1].splitlines()} == {"WD101", "WD210"}
    assert {line.split()[1] for line in run(capsys, "--select", "WD101", "train.py")[1].splitlines()} == {"WD101"}
    assert {line.split()[1] for line in run(capsys, "train.py")[1].splitlines()} == {"WD101", "WD210"}
    write(project / "pyproject.toml", '[tool.wd-lint]\nper-file-ignores = { "train.py" = ["WD210"] }\n')
    assert {line.split()[1] for line in run(capsys, "train.py")[1].splitlines()} == {"WD101"}


def test_the_linter_version_is_part_of_the_folder(tmp_path, monkeypatch):
    before = fingerprint()
    monkeypatch.setattr(cache_module, "__version__", "999.0")
    assert fingerprint() != before
    assert Cache.open(tmp_path).folder.name == fingerprint()


def test_round_trip_keeps_every_field(tmp_path):
    store = Cache.open(tmp_path)
    fix = Fix("Use AdamW", (Edit(19, 23, "AdamW"), Edit(60, 60, ", décay")), unsafe=True)
    found = (Diagnostic("WD101", "Adam couples décay", 2, 7, 3, 1, "a.py", fix), Diagnostic("WD210", "m", 2, 24, 2, 42, "a.py"))
    store.put(Job("a.py", TRAIN, CODES), Outcome(diagnostics=found))
    again = Cache.open(tmp_path).get(Job("b/c.py", TRAIN, CODES))
    assert again == Outcome(diagnostics=tuple(replace(d, path="b/c.py") for d in found))
    assert [d.fix for d in again.diagnostics] == [fix, None]  # fixes do not take part in ==


def test_syntax_errors_are_kept_and_timeouts_are_not(tmp_path):
    store = Cache.open(tmp_path)
    broken, slow = Job("a.py", "x = (\n", CODES), Job("b.py", "y = 1\n", CODES)
    store.put(broken, Outcome(problem=Problem("a.py", SYNTAX, "syntax error: '(' was never closed", 1, 5)))
    store.put(slow, Outcome(problem=Problem("b.py", TIMEOUT, "analysis took longer than 1 s; skipped")))
    assert store.get(broken) == Outcome(problem=Problem("a.py", SYNTAX, "syntax error: '(' was never closed", 1, 5))
    assert store.get(slow) is None


def test_a_cached_syntax_error_is_reported_again(project, capsys):
    write(project / "broken.py", "import torch\nopt = torch.optim.Adam(\n")
    first = run(capsys, "broken.py")
    assert first[0] == 2 and "syntax error" in first[2]
    assert run(capsys, "broken.py") == first


# -- sharing and breaking it --------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"[1, 2]", b'{"key": "x", "diagnostics": []}', b"\xff\xfe\x00"],
    ids=["empty", "truncated", "not-an-object", "another-key", "binary"],
)
def test_a_corrupt_entry_is_a_miss_and_is_replaced(project, capsys, content):
    first = run(capsys, "train.py")
    [entry] = entries(project / DEFAULT_DIR)
    entry.write_bytes(content)
    assert run(capsys, "train.py") == first
    assert json.loads(entry.read_bytes())["diagnostics"]


@pytest.mark.parametrize(
    "entry",
    [
        {"diagnostics": [["WD101", "m", 2, 7, 2, 9]]},
        {"diagnostics": [["WD101", "m", "2", 7, 2, 9, None]]},
        {"diagnostics": [["WD101", None, 2, 7, 2, 9, None]]},
        {"diagnostics": [["WD101", "m", -1, 7, 2, 9, None]]},
        {"diagnostics": [["WD101", "m", 2, 7, 2, 9, ["title", "yes", []]]]},
        {"diagnostics": [["WD101", "m", 2, 7, 2, 9, ["title", True, [[1, "2", "x"]]]]]},
        {"problem": ["syntax-error", "r", 1]},
        {"problem": [1, "r", 1, 1]},
        {"other": 1},
    ],
)
def test_an_entry_of_the_wrong_shape_is_a_miss(tmp_path, entry):
    store = Cache.open(tmp_path)
    job = Job("a.py", TRAIN, CODES)
    key = Cache.key(job)
    (store.folder / key).write_text(json.dumps({"key": key, **entry}))
    assert store.get(job) is None


def test_concurrent_writers_never_show_half_an_entry(tmp_path):
    store = Cache.open(tmp_path)
    job = Job("a.py", TRAIN, CODES)
    outcome = Outcome(diagnostics=tuple(Diagnostic("WD101", "x" * 5000, i, 1, i, 2, "a.py") for i in range(1, 40)))
    seen, stop = [], threading.Event()

    def write_often() -> None:
        while not stop.is_set():
            Cache(store.folder).put(job, outcome)

    writers = [threading.Thread(target=write_often) for _ in range(3)]
    for thread in writers:
        thread.start()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        seen.append(store.get(job))
    stop.set()
    for thread in writers:
        thread.join()
    first = next(i for i, result in enumerate(seen) if result is not None)
    assert set(seen[first:]) == {outcome}  # once written, always whole: never missing, never half
    assert len(seen) - first > 10
    assert [p.name for p in store.folder.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.multiprocess
@pytest.mark.timeout(120)
def test_two_runs_sharing_a_cache_agree(project):
    for i in range(12):
        write(project / f"m{i}.py", TRAIN.replace("1e-2", f"{i + 1}e-3"))
    command = [sys.executable, "-m", "wd_guard.lint", "--jobs", "1", "--format", "json", "--cache-dir", str(project / "shared"), "."]
    outputs = []
    for _ in range(2):  # the first pair races on an empty cache, the second reads it
        runs = [subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs.extend(run.communicate(timeout=100) + (run.returncode,) for run in runs)
    assert len({out for out, _, _ in outputs}) == 1 and {code for _, _, code in outputs} == {1}
    assert len(json.loads(outputs[0][0])) == 26
    assert len(entries(project / "shared")) == 13
    assert not [p for p in (project / "shared").rglob("*.tmp")]


def test_old_linter_folders_are_pruned(tmp_path):
    Cache.open(tmp_path)  # an empty folder becomes a cache folder
    now = time.time()
    names = [f"{i:020x}" for i in range(7)]
    for age, name in enumerate(names, start=1):
        old = tmp_path / name
        old.mkdir()
        (old / "entry").write_text("{}")
        os.utime(old, (now - 1000 * age, now - 1000 * age))
    (tmp_path / "notes").mkdir()  # not one of ours: never removed
    os.utime(tmp_path / "notes", (now - 10**6, now - 10**6))
    store = Cache.open(tmp_path)
    kept = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert kept == sorted([*names[:4], "notes", store.folder.name])


def test_a_folder_of_the_users_is_not_taken_over(tmp_path):
    mine = tmp_path / "mine"
    for i in range(8):
        (mine / f"{i:020x}").mkdir(parents=True)
    (mine / "README").write_text("my files\n")
    store = Cache.open(mine)
    assert store is not None and store.get(Job("a.py", TRAIN, CODES)) is None
    assert not (mine / ".gitignore").exists() and not (mine / "CACHEDIR.TAG").exists()
    assert len([p for p in mine.iterdir() if p.is_dir()]) == 9  # nothing pruned in it either


def test_a_run_without_work_does_not_import_libcst(project):
    write(project / "plain.py", "import os\nprint(os.sep)\n")
    probe = "import sys\nfrom wd_guard.lint.command.cli import main\nmain(sys.argv[1:])\nprint('libcst' in sys.modules, file=sys.stderr)\n"

    def imported(*argv: str) -> str:
        result = subprocess.run([sys.executable, "-c", probe, "--jobs", "0", *argv], cwd=project, capture_output=True, text=True, timeout=120)
        return result.stderr.splitlines()[-1]

    assert imported("plain.py") == "False"  # no rule's words: no parse
    assert imported("train.py") == "True"  # analysed once
    assert imported("train.py") == "False"  # then known
    assert imported("--no-cache", "train.py") == "True"


def test_fix_from_a_warm_cache_writes_what_a_cold_run_writes(project, capsys):
    write(project / "cold" / "train.py", TRAIN)
    assert run(capsys, "train.py")[0] == 1  # fills the cache, fixes included
    warm = run(capsys, "--fix", "--unsafe-fixes", "train.py")
    cold = run(capsys, "--no-cache", "--fix", "--unsafe-fixes", "cold/train.py")
    assert (project / "train.py").read_text() == (project / "cold" / "train.py").read_text() != TRAIN
    assert warm[0] == cold[0] and "Fixed" in warm[2] and warm[2] == cold[2]
