"""``wd-lint`` as users run it: a separate process, the console script, pipes and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HOSTILE = textwrap.dedent(
    """\
    # Linting must never import or run this file.
    import pathlib, sys
    pathlib.Path(__file__).with_name("EXECUTED").write_text("ran")
    sys.modules["torch"] = None
    import torch
    opt = torch.optim.Adam(model.parameters(), weight_decay=1e-2)
    raise SystemExit(99)
    """
)


def wd_lint(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wd_guard.lint", *args], cwd=cwd, capture_output=True, text=True, timeout=120, **kwargs
    )


def test_exit_codes_zero_one_two(tmp_path):
    (tmp_path / "clean.py").write_text("import torch\nopt = torch.optim.AdamW(groups, lr=1e-3)\n")
    (tmp_path / "bad.py").write_text("import torch\nopt = torch.optim.Adam(params, weight_decay=1e-2)\n")
    (tmp_path / "broken.py").write_text("import torch\nopt = torch.optim.Adam(params,\n")
    assert wd_lint("clean.py", cwd=tmp_path).returncode == 0
    found = wd_lint("bad.py", cwd=tmp_path)
    assert found.returncode == 1 and found.stdout.startswith("bad.py:2:7: WD101 ")
    broken = wd_lint(cwd=tmp_path)
    assert broken.returncode == 2
    assert "bad.py:2:7: WD101" in broken.stdout and "broken.py:2:23: error: syntax error" in broken.stderr


def test_linted_code_is_never_imported_or_run_and_torch_is_never_loaded(tmp_path):
    (tmp_path / "hostile.py").write_text(HOSTILE)
    probe = (
        "import sys; from wd_guard.lint.command.cli import main; code = main(['--format', 'json', '.']);"
        "print([m for m in ('torch', 'lightning', 'hostile') if m in sys.modules], code, file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "[] 1" in result.stderr, result.stderr
    assert [d["code"] for d in json.loads(result.stdout)] == ["WD101", "WD210"]
    assert not (tmp_path / "EXECUTED").exists()


def test_console_script_is_installed_and_runs(tmp_path):
    script = shutil.which("wd-lint", path=os.path.dirname(sys.executable))
    assert script is not None
    (tmp_path / "a.py").write_text("import torch\nopt = torch.optim.SGD(params, lr=1.0, weight_decay=0.5)\n")
    result = subprocess.run([script, "--format", "github"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stdout.startswith("::error file=a.py,line=2,col=7,")


def test_closed_pipe_is_not_a_traceback(tmp_path):
    for index in range(40):
        (tmp_path / f"m{index}.py").write_text("import torch\nopt = torch.optim.Adam(m.parameters(), weight_decay=1e-2)\n")
    command = f"{sys.executable} -m wd_guard.lint --jobs 1 . | head -n 1"
    result = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.stdout.count("\n") == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_narrow_terminal_encoding_does_not_crash(tmp_path, encoding):
    name = "modèle_π.py"
    (tmp_path / name).write_text("import torch\nopt = torch.optim.Adam(params, weight_decay=1e-2)\n", encoding="utf-8")
    env = dict(os.environ, PYTHONIOENCODING=encoding)
    result = wd_lint(cwd=tmp_path, env=env, encoding=encoding)
    assert result.returncode == 1 and "WD101" in result.stdout and "Traceback" not in result.stderr
