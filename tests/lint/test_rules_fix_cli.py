"""``wd-lint --fix``, ``--unsafe-fixes``, ``--diff`` and ``--fix-only`` on real files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from wd_guard.catalogue import RETUNE_HINT

from wd_guard.lint.command import cli

ROOT = Path(__file__).parents[2]
HERE = Path(__file__).parent
ADAM = "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)\n"
ADAM_FIXED = "import torch\nimport wd_guard\nopt = torch.optim.AdamW(wd_guard.param_groups(model, weight_decay=1e-2), lr=1e-3)\n"
UNFIXABLE = "import torch\nopt = torch.optim.Adagrad(params, weight_decay=1e-2)\n"


def run(capsys, *args):
    code = cli.main(["--isolated", "-j", "0", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_fix_without_unsafe_fixes_changes_nothing_and_says_what_is_available(tmp_path, capsys):
    path = tmp_path / "train.py"
    path.write_text(ADAM)
    code, out, err = run(capsys, "--fix", path)
    assert code == 1 and path.read_text() == ADAM
    assert "2 fixable with --fix --unsafe-fixes" in err


def test_fix_with_unsafe_fixes_rewrites_and_exits_on_what_remains(tmp_path, capsys):
    clean, dirty = tmp_path / "clean.py", tmp_path / "dirty.py"
    clean.write_text(ADAM)
    dirty.write_text(ADAM + UNFIXABLE.split("\n", 1)[1])
    code, out, err = run(capsys, "--fix", "--unsafe-fixes", clean)
    assert code == 0 and clean.read_text() == ADAM_FIXED and "Fixed 2 findings" in err
    code, out, err = run(capsys, "--fix", "--unsafe-fixes", dirty)
    assert code == 1 and "WD101 Adagrad" in out and "Adam(" not in dirty.read_text().replace("Adagrad(", "")


def test_diff_prints_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "train.py"
    path.write_text(ADAM)
    code, out, err = run(capsys, "--diff", "--unsafe-fixes", path)
    assert code == 1 and path.read_text() == ADAM
    header, _, body = out.partition(f"--- a/{path}\n+++ b/{path}\n")
    assert body and "+import wd_guard" in body
    # One line per fix applied, which patch and git apply skip; WD101's says to retune.
    assert header.splitlines()[0] == "# WD101 Replace Adam with AdamW; " + RETUNE_HINT
    assert all(line.startswith("# WD") for line in header.splitlines())
    assert err == "Would fix 2 findings.\n"
    path.write_text(ADAM_FIXED)
    assert run(capsys, "--diff", "--unsafe-fixes", path)[:2] == (0, "")


def test_fix_only_reports_no_findings(tmp_path, capsys):
    path = tmp_path / "train.py"
    path.write_text(ADAM + UNFIXABLE.split("\n", 1)[1])
    code, out, err = run(capsys, "--fix-only", "--unsafe-fixes", path)
    assert code == 0 and out == "" and "AdamW" in path.read_text()


def test_noqa_keeps_a_line_from_being_fixed(tmp_path, capsys):
    path = tmp_path / "train.py"
    source = ADAM.rstrip("\n") + "  # noqa: WD101\n"
    path.write_text(source)
    run(capsys, "--fix", "--unsafe-fixes", "--select", "WD101", path)
    assert path.read_text() == source


def test_examples_and_fixtures_end_fixed_parsable_and_stable(tmp_path, capsys):
    sources = [*sorted((ROOT / "examples").glob("*.py")), *sorted((HERE / "fixtures").glob("*.py"))]
    sources += sorted((HERE / "fix_fixtures").glob("*_before.py"))
    for source in sources:
        shutil.copy(source, tmp_path / f"{source.parent.name}_{source.name}")
    run(capsys, "--fix", "--unsafe-fixes", "--select", "ALL", tmp_path)
    first = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    code, out, err = run(capsys, "--select", "ALL", tmp_path)
    assert code in (0, 1) and "fixable" not in err  # everything fixable was fixed, all parses
    code, out, err = run(capsys, "--fix", "--unsafe-fixes", "--select", "ALL", tmp_path)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == first
    assert "Fixed" not in err


def test_a_fix_that_cannot_be_written_is_a_problem_and_the_rest_still_runs(tmp_path, capsys, monkeypatch):
    from wd_guard.lint.fixes import apply as fix

    def refuse(path, data):
        raise fix.FixError(f"{path}: cannot write: read-only file system")

    monkeypatch.setattr(fix, "write_atomically", refuse)
    path = tmp_path / "train.py"
    path.write_text(ADAM)
    code, out, err = run(capsys, "--fix", "--unsafe-fixes", path)
    assert code == 2 and "cannot write" in err and path.read_text() == ADAM


@pytest.mark.parametrize("flag", ["--fix", "--diff", "--fix-only"])
def test_fix_flags_with_no_python_files(tmp_path, capsys, flag):
    assert run(capsys, flag, "--unsafe-fixes", tmp_path)[0] == 0
