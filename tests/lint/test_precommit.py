"""wd-lint as a pre-commit hook: the hook manifest, and real pre-commit runs on a sample repo."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from wd_guard.lint.files.settings import tomllib

ROOT = Path(__file__).resolve().parents[2]
WD_LINT = shutil.which("wd-lint", path=os.path.dirname(sys.executable))

pytestmark = pytest.mark.skipif(shutil.which("git") is None or WD_LINT is None, reason="needs git and wd-lint")

BAD = "import torch\n\nmodel = torch.nn.Linear(4, 4)\nopt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)\n"
GOOD = "import torch\n\nmodel = torch.nn.Linear(4, 4)\nopt = torch.optim.AdamW([{'params': model.parameters(), 'weight_decay': 0.0}], lr=1e-3)\n"


def test_manifest_is_valid_for_pre_commit():
    from pre_commit.clientlib import load_manifest

    hook, config = load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))
    assert (hook["id"], hook["language"], hook["types_or"], hook["entry"]) == ("wd-lint", "python", ["python", "jupyter"], "wd-lint")
    assert (config["id"], config["language"], config["types"], config["entry"]) == ("wd-lint-config", "python", ["yaml"], "wd-lint")
    for each in (hook, config):
        assert each["additional_dependencies"] == []  # installs the package alone: libcst, no torch
        assert each["require_serial"] is True  # one wd-lint run gets every file and spreads them itself
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"][hook["entry"]] == "wd_guard.lint.command.cli:command"
    assert not any("torch" in dependency for dependency in pyproject["project"]["dependencies"])


@pytest.mark.slow
def test_installed_package_has_every_linter_module_and_runs(tmp_path):
    # pre-commit installs the hook from a built wheel, not from this checkout: build one from
    # a copy (no network, no build isolation), as the benchmarks do, and run wd-lint from the
    # unpacked wheel alone.
    wheel = _benchmark_installer().build_wheel(tmp_path)
    unpacked = tmp_path / "site"
    shutil.unpack_archive(str(wheel), str(unpacked), format="zip")
    modules = {p.relative_to(ROOT / "lint").as_posix() for p in (ROOT / "lint").rglob("*.py")}
    shipped = {p.relative_to(unpacked / "wd_guard" / "lint").as_posix() for p in (unpacked / "wd_guard" / "lint").rglob("*.py")}
    assert modules <= shipped
    (tmp_path / "t.py").write_text(BAD)
    probe = "import wd_guard, sys; from wd_guard.lint.command.cli import main; print(wd_guard.__file__); sys.exit(main(['-j', '1', 't.py']))"
    env = dict(os.environ, PYTHONPATH=str(unpacked))
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith(str(unpacked)) and "t.py:4:7: WD101" in result.stdout
    # The console script's own target.
    script = "import sys; sys.argv = ['wd-lint', '--no-cache', 't.py']; from wd_guard.lint.command.cli import command; command()"
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("t.py:4:7: WD101") and result.stderr.startswith("Found 2 findings in 1 file")


def _benchmark_installer():
    spec = importlib.util.spec_from_file_location("wd_guard_bench_install", ROOT / "benchmarks" / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=wd", "-c", "user.email=wd@example.invalid", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True, timeout=60)


def make_repo(path: Path, files: dict, always_run: bool = False) -> Path:
    path.mkdir()
    git(path, "init", "-q")
    hook = textwrap.dedent(
        f"""\
        repos:
          - repo: local
            hooks:
              - id: wd-lint
                name: wd-lint
                entry: {WD_LINT}
                language: system
                types: [python]
                require_serial: true
                always_run: {'true' if always_run else 'false'}
        """
    )
    (path / ".pre-commit-config.yaml").write_text(hook)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "add", "-A")
    return path


def pre_commit(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PRE_COMMIT_HOME=str(repo.parent / "pre-commit-home"), PRE_COMMIT_COLOR="never")
    command = [sys.executable, "-m", "pre_commit", "run", *args]
    return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=300)


def test_hook_fails_on_a_mistake_and_passes_once_fixed(tmp_path):
    repo = make_repo(tmp_path / "repo", {"train.py": BAD, "pkg/util.py": "x = 1\n", "README.md": "# demo\n"})
    failed = pre_commit(repo, "--all-files")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "train.py:4:7: WD101" in failed.stdout and "train.py:4:24: WD210" in failed.stdout
    (repo / "train.py").write_text(GOOD)
    git(repo, "add", "-A")
    passed = pre_commit(repo, "--all-files")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "wd-lint" in passed.stdout and "Passed" in passed.stdout


def test_hook_honours_the_config_of_the_repository(tmp_path):
    files = {"train.py": BAD, "pyproject.toml": '[tool.wd-lint]\nignore = ["WD101", "WD210"]\n'}
    repo = make_repo(tmp_path / "repo", files)
    result = pre_commit(repo, "--all-files")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hook_with_no_files_to_pass_does_not_crash(tmp_path):
    # A repository without Python files, and a hook that runs anyway: wd-lint gets no paths.
    repo = make_repo(tmp_path / "repo", {"README.md": "# nothing here\n"}, always_run=True)
    result = pre_commit(repo, "--all-files", "--verbose")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "No findings in 0 files." in result.stdout


def test_hook_skips_when_no_python_file_changed(tmp_path):
    repo = make_repo(tmp_path / "repo", {"README.md": "# docs only\n"})
    result = pre_commit(repo)
    assert result.returncode == 0 and "(no files to check)Skipped" in result.stdout


def test_shipped_hooks_lint_notebooks_and_yaml_configs(tmp_path):
    # The hooks of the manifest, run as local hooks with this environment's wd-lint: their file
    # types decide which files wd-lint is given.
    from pre_commit.clientlib import load_manifest

    hooks = load_manifest(str(ROOT / ".pre-commit-hooks.yaml"))
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                           "source": ["import torch\n", "opt = torch.optim.Adam(params, weight_decay=1e-2)\n"]}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    config = "optimizer:\n  class_path: torch.optim.Adam\n  init_args:\n    weight_decay: 0.01\n"
    files = {"nb.ipynb": json.dumps(notebook, indent=1), "configs/fit.yaml": config, "other.yaml": "a: 1\n"}
    repo = make_repo(tmp_path / "repo", files)
    lines = ["repos:", "  - repo: local", "    hooks:"]
    for hook in hooks:
        types = f"types_or: {json.dumps(hook['types_or'])}" if hook["types_or"] else f"types: {json.dumps(hook['types'])}"
        lines += [f"      - id: {hook['id']}", f"        name: {hook['name']}", f"        entry: {WD_LINT}",
                  "        language: system", f"        {types}", "        require_serial: true"]
    (repo / ".pre-commit-config.yaml").write_text("\n".join(lines) + "\n")
    git(repo, "add", "-A")
    result = pre_commit(repo, "--all-files")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "nb.ipynb:cell 1:2:7: WD101" in result.stdout
    assert "configs/fit.yaml:2:15: WD101" in result.stdout and "configs/fit.yaml:1:1: WD210" in result.stdout
    assert "other.yaml" not in result.stdout
