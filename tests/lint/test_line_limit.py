"""Files of too many lines are refused before any parse, with the reason: the parser needs
memory and time for every line, however short (a million one-character lines would take
gigabytes and minutes)."""

from __future__ import annotations

import pytest

from wd_guard.lint.command.cli import main
from wd_guard.lint.files.settings import DEFAULT_MAX_FILE_LINES, DEFAULT_MAX_FILE_SIZE
from wd_guard.lint.intake.source import count_lines

MISTAKE = "import torch\nopt = torch.optim.Adam(groups, lr=1e-3, weight_decay=1e-2)\n"


def lint(capsys, *argv):
    code = main(["--no-cache", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.timeout(60)
def test_a_million_short_lines_are_refused_at_once_by_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = MISTAKE + "x\n" * 1_000_000
    assert len(data) < DEFAULT_MAX_FILE_SIZE  # the byte limit alone lets it through
    (tmp_path / "lines.py").write_text(data)
    (tmp_path / "good.py").write_text(MISTAKE)
    code, out, err = lint(capsys, "--isolated", "-j", "1", tmp_path)
    assert code == 2 and "good.py:2:7: WD101" in out and "lines.py" not in out
    assert f"lines.py: error: skipped: 1,000,002 lines is over max-file-lines ({DEFAULT_MAX_FILE_LINES:,} lines)" in err


@pytest.mark.parametrize("extra, refused", [(0, False), (1, True)])
def test_the_limit_is_inclusive_and_set_on_the_command_line(tmp_path, capsys, extra, refused):
    path = tmp_path / "t.py"
    path.write_text(MISTAKE + "x = 1\n" * (8 + extra))  # 10 lines, or 11
    code, out, err = lint(capsys, "--isolated", "-j", "0", "--max-file-lines", "10", path)
    assert (code, "over max-file-lines (10 lines)" in err, "WD101" in out) == ((2, True, False) if refused else (1, False, True))


def test_the_limit_comes_from_pyproject_and_bad_values_are_usage_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.py").write_text(MISTAKE + "x = 1\n" * 9)
    (tmp_path / "pyproject.toml").write_text("[tool.wd-lint]\nmax-file-lines = 10\n")
    code, out, err = lint(capsys, "t.py")
    assert code == 2 and "t.py: error: skipped: 11 lines is over max-file-lines (10 lines)" in err
    (tmp_path / "pyproject.toml").write_text("[tool.wd-lint]\nmax-file-lines = 0\n")
    code, out, err = lint(capsys, "t.py")
    assert code == 2 and "max-file-lines: expected a positive whole number, got int 0" in err
    code, out, err = lint(capsys, "--isolated", "--max-file-lines", "ten", "t.py")
    assert code == 2 and "--max-file-lines: expected a positive whole number, got str 'ten'" in err


@pytest.mark.parametrize(
    "data, lines",
    [(b"", 0), (b"x", 1), (b"x\n", 1), (b"x\ny", 2), (b"x\r\ny\r\n", 2), (b"x\ry\r", 2), (b"\n\n\n", 3)],
)
def test_lines_are_counted_as_python_counts_them(data, lines):
    assert count_lines(data) == lines


def test_the_readme_shows_the_settings_with_their_defaults(tmp_path):
    from pathlib import Path

    from wd_guard.lint.files.settings import DEFAULT_TIMEOUT, load_config

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("### Settings", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "pyproject.toml").write_text(block)
    config = load_config(tmp_path / "pyproject.toml")
    assert (config.max_file_size, config.max_file_lines, config.timeout) == (DEFAULT_MAX_FILE_SIZE, DEFAULT_MAX_FILE_LINES, DEFAULT_TIMEOUT)
