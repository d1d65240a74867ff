"""ruff's conventions in wd-lint, run as users run it: a separate process on real files and
real git repositories (ignore files, settings per file, excludes, standard input, output
flags, file-level noqa, JSON and SARIF fields, the flake8 plugin's selection)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wd_guard.catalogue import RETUNE_HINT, get_rule

BAD = "import torch\nopt = torch.optim.Adam(model.parameters(), weight_decay=1e-2)\n"
ONLY_WD101 = "import torch\nopt = torch.optim.Adam(groups, weight_decay=1e-2)\n"
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def wd_lint(*args: str, cwd: Path, stdin: str = None, env: dict = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wd_guard.lint", "--no-cache", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, input=stdin, env=env,
    )


def files_in(out: str) -> set:
    return {line.split(":", 1)[0] for line in out.splitlines() if line}


def tree(root: Path, files: dict) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


# -- finding files --------------------------------------------------------------------------


@needs_git
def test_walks_skip_what_gitignore_ignore_info_exclude_and_global_excludes_name(tmp_path):
    home = tmp_path / "home"
    repo = tree(tmp_path / "repo", {
        "src/a.py": BAD, "gen/b.py": BAD, "other/c.py": BAD, "local/d.py": BAD, "mine/e.py": BAD,
        "src/sub/skip.py": BAD, "src/sub/keep.py": BAD,
        ".gitignore": "gen/\n", ".ignore": "other/\n", "src/sub/.gitignore": "*.py\n!keep.py\n",
    })
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text("local/\n")
    tree(home, {".config/git/ignore": "mine/\n"})
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1")
    env.pop("GIT_CONFIG_GLOBAL", None)
    walked = wd_lint(cwd=repo, env=env)
    assert walked.returncode == 1
    assert files_in(walked.stdout) == {"src/a.py", "src/sub/keep.py"}
    # From a subfolder the repository's ignore files still apply.
    assert files_in(wd_lint(".", cwd=repo / "src", env=env).stdout) == {"a.py", "sub/keep.py"}
    everything = wd_lint("--no-respect-gitignore", cwd=repo, env=env)
    assert files_in(everything.stdout) == {"src/a.py", "gen/b.py", "other/c.py", "local/d.py", "mine/e.py", "src/sub/skip.py", "src/sub/keep.py"}
    # A file named on the command line is linted even when ignored, as in ruff.
    assert files_in(wd_lint("gen/b.py", cwd=repo, env=env).stdout) == {"gen/b.py"}


def test_respect_gitignore_false_in_the_configuration(tmp_path):
    tree(tmp_path, {"pyproject.toml": "[tool.wd-lint]\nrespect-gitignore = false\n", ".ignore": "gen/\n", "gen/b.py": BAD})
    assert files_in(wd_lint(cwd=tmp_path).stdout) == {"gen/b.py"}
    assert wd_lint("--respect-gitignore", cwd=tmp_path).returncode == 0


def test_exclude_replaces_the_defaults_and_extend_exclude_adds(tmp_path):
    tree(tmp_path, {"build/a.py": BAD, "gen/b.py": BAD, "src/c.py": BAD})
    assert files_in(wd_lint(cwd=tmp_path).stdout) == {"gen/b.py", "src/c.py"}  # build/ is a default exclude
    assert files_in(wd_lint("--extend-exclude", "gen", cwd=tmp_path).stdout) == {"src/c.py"}
    assert files_in(wd_lint("--exclude", "gen", cwd=tmp_path).stdout) == {"build/a.py", "src/c.py"}
    (tmp_path / "pyproject.toml").write_text('[tool.wd-lint]\nextend-exclude = ["src"]\n')
    assert files_in(wd_lint(cwd=tmp_path).stdout) == {"gen/b.py"}
    (tmp_path / "pyproject.toml").write_text('[tool.wd-lint]\nexclude = ["src"]\n')
    assert files_in(wd_lint(cwd=tmp_path).stdout) == {"build/a.py", "gen/b.py"}


# -- settings found per file ----------------------------------------------------------------


def test_each_file_gets_the_closest_configuration_even_from_elsewhere(tmp_path):
    tree(tmp_path, {
        "mono/pyproject.toml": '[tool.wd-lint]\nselect = ["WD210"]\n',
        "mono/a/pyproject.toml": '[tool.wd-lint]\nignore = ["WD210"]\n',
        "mono/a/x.py": BAD,
        "mono/b/wd-lint.toml": 'select = ["WD101"]\n',
        "mono/b/pyproject.toml": '[tool.wd-lint]\nselect = ["WD210"]\n',  # wd-lint.toml wins
        "mono/b/y.py": BAD,
        "mono/c/z.py": BAD,  # no configuration of its own: mono's
        "elsewhere/.keep": "",
    })
    out = wd_lint("../mono", cwd=tmp_path / "elsewhere").stdout
    found = sorted((line.split(":")[0], line.split()[1]) for line in out.splitlines())
    assert found == [("../mono/a/x.py", "WD101"), ("../mono/b/y.py", "WD101"), ("../mono/c/z.py", "WD210")]


def test_per_file_ignores_are_anchored_at_their_own_configuration(tmp_path):
    tree(tmp_path, {"pkg/pyproject.toml": '[tool.wd-lint]\nper-file-ignores = { "tests/*" = ["WD210"] }\n', "pkg/tests/t.py": BAD})
    out = wd_lint("pkg", cwd=tmp_path).stdout
    assert [line.split()[1] for line in out.splitlines()] == ["WD101"]


def test_config_without_the_table_is_an_error(tmp_path):
    tree(tmp_path, {"pyproject.toml": "[project]\nname = 'x'\n", "a.py": BAD, "own.toml": 'ignore = ["WD210"]\n'})
    result = wd_lint("--config", "pyproject.toml", cwd=tmp_path)
    assert result.returncode == 2 and "no [tool.wd-lint] table" in result.stderr and result.stdout == ""
    named = wd_lint("--config", "own.toml", cwd=tmp_path)
    assert [line.split()[1] for line in named.stdout.splitlines()] == ["WD101"]


def test_show_settings_prints_what_applies_to_the_file(tmp_path):
    tree(tmp_path, {"p/pyproject.toml": '[tool.wd-lint]\nignore = ["WD302"]\n\n[tool.ruff]\nline-length = 100\n', "p/a.py": BAD})
    result = wd_lint("--show-settings", "p/a.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines())
    assert lines["configuration"] == str((tmp_path / "p" / "pyproject.toml").resolve())
    assert "WD302" not in lines["codes"] and "WD101" in lines["codes"]
    assert lines["line-length"] == "100" and lines["excluded"] == "no"
    assert wd_lint("--show-settings", "a.py", "b.py", cwd=tmp_path).returncode == 2


# -- standard input -------------------------------------------------------------------------


def test_stdin_takes_the_settings_and_per_file_ignores_of_its_filename(tmp_path):
    tree(tmp_path, {"pyproject.toml": '[tool.wd-lint]\nper-file-ignores = { "tests/*" = ["WD210"] }\nextend-exclude = ["gen"]\n'})
    plain = wd_lint("-", cwd=tmp_path, stdin=BAD)
    assert plain.returncode == 1 and [line.split(":")[0] for line in plain.stdout.splitlines()] == ["-", "-"]
    named = wd_lint("-", "--stdin-filename", "tests/t.py", cwd=tmp_path, stdin=BAD)
    assert named.stdout.splitlines() == [f"tests/t.py:2:7: WD101 {get_rule('WD101').format(optimizer='Adam')}"]
    assert wd_lint("--stdin-filename", "gen/g.py", cwd=tmp_path, stdin=BAD).returncode == 0  # excluded
    assert wd_lint("-", "a.py", cwd=tmp_path, stdin=BAD).returncode == 2


def test_fix_on_stdin_writes_the_fixed_source_to_stdout(tmp_path):
    fixed = wd_lint("-", "--fix", "--unsafe-fixes", "--stdin-filename", "t.py", cwd=tmp_path, stdin=BAD)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout == "import torch\nimport wd_guard\nopt = torch.optim.AdamW(wd_guard.param_groups(model, weight_decay=1e-2))\n"
    unchanged = wd_lint("-", "--fix", cwd=tmp_path, stdin=BAD)  # no --unsafe-fixes: the buffer comes back
    assert unchanged.stdout == BAD and unchanged.returncode == 1 and "WD101" in unchanged.stderr


# -- output ---------------------------------------------------------------------------------


def test_exit_zero_output_file_and_quiet(tmp_path):
    tree(tmp_path, {"a.py": BAD})
    assert wd_lint("--exit-zero", cwd=tmp_path).returncode == 0
    tree(tmp_path, {"broken.py": "import torch\nopt = torch.optim.Adam(params,\n"})
    assert wd_lint("--exit-zero", cwd=tmp_path).returncode == 2
    (tmp_path / "broken.py").unlink()
    written = wd_lint("--output-file", "reports/out.json", "--format", "json", cwd=tmp_path)
    assert written.returncode == 1 and written.stdout == ""
    assert [d["code"] for d in json.loads((tmp_path / "reports" / "out.json").read_text())] == ["WD101", "WD210"]
    quiet = wd_lint("-q", cwd=tmp_path)
    assert quiet.stderr == "" and len(quiet.stdout.splitlines()) == 2
    assert "Found 2 findings" in wd_lint(cwd=tmp_path).stderr


def test_diff_says_how_many_fixes_need_unsafe_fixes(tmp_path):
    tree(tmp_path, {"a.py": BAD})
    shown = wd_lint("--diff", cwd=tmp_path)
    assert shown.returncode == 0 and shown.stdout == ""
    assert shown.stderr == "No findings would be fixed (2 fixes available with --unsafe-fixes).\n"
    unsafe = wd_lint("--diff", "--unsafe-fixes", cwd=tmp_path)
    assert unsafe.returncode == 1 and unsafe.stderr == "Would fix 2 findings.\n"
    assert unsafe.stdout.startswith(f"# WD101 Replace Adam with AdamW; {RETUNE_HINT}\n")


def test_file_level_noqa(tmp_path):
    tree(tmp_path, {
        "all.py": "# wd-lint: noqa\n" + BAD,
        "one.py": BAD + "# wd-lint: noqa: WD101\n",
        "text.py": 'note = "# wd-lint: noqa"\n' + BAD,  # in a string: not a comment
    })
    out = wd_lint(cwd=tmp_path).stdout
    assert sorted((line.split(":")[0], line.split()[1]) for line in out.splitlines()) == [
        ("one.py", "WD210"), ("text.py", "WD101"), ("text.py", "WD210"),
    ]


def test_json_carries_ruffs_fields_and_its_edits_reproduce_the_fix(tmp_path):
    tree(tmp_path, {"a.py": ONLY_WD101})
    [item] = json.loads(wd_lint("--format", "json", cwd=tmp_path).stdout)
    assert item["name"] == "coupled-decay-adaptive" and item["noqa_row"] == 2
    assert item["url"] == get_rule("WD101").url and item["url"].endswith("/docs/rules/WD101.md")
    assert item["fix"]["applicability"] == "unsafe" and RETUNE_HINT in item["fix"]["message"]
    lines = ONLY_WD101.splitlines(keepends=True)

    def offset(position):
        return sum(len(line) for line in lines[: position["row"] - 1]) + position["column"] - 1

    text = ONLY_WD101
    for edit in sorted(item["fix"]["edits"], key=lambda e: offset(e["location"]), reverse=True):
        text = text[: offset(edit["location"])] + edit["content"] + text[offset(edit["end_location"]):]
    wd_lint("--fix", "--unsafe-fixes", "a.py", cwd=tmp_path)
    assert text == (tmp_path / "a.py").read_text() != ONLY_WD101
    sarif = json.loads(wd_lint("--format", "sarif", cwd=tmp_path).stdout)
    rules = sarif["runs"][0]["tool"]["driver"]["rules"]
    assert all(rule["helpUri"] == get_rule(rule["id"]).url for rule in rules)


# -- the flake8 plugin ----------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("flake8", path=os.path.dirname(sys.executable)) is None, reason="needs flake8")
def test_flake8_select_and_extend_select_turn_on_an_opt_in_rule(tmp_path):
    example = get_rule("WD204").sections()["Example"]
    snippet = "import torch\nfrom torch import nn\n" + example.split("```python\n", 1)[1].split("```", 1)[0]
    tree(tmp_path, {"m.py": snippet})
    flake8 = [os.path.join(os.path.dirname(sys.executable), "flake8"), "--isolated", "m.py"]

    def codes(*args):
        out = subprocess.run([*flake8, *args], cwd=tmp_path, capture_output=True, text=True, timeout=120).stdout
        return {line.split()[1] for line in out.splitlines()}

    assert "WD204" not in codes("--select", "WD")
    assert "WD204" in codes("--select", "WD204")
    assert "WD204" in codes("--select", "WD1", "--extend-select", "WD204")
    assert "WD204" in codes("--select", "WD2")


# -- fixes users can merge ------------------------------------------------------------------


def test_fix_places_the_import_in_the_third_party_block_and_keeps_the_line_length(tmp_path):
    source = (
        '"""Training."""\n\nimport os\nimport sys\n\nimport numpy as np\nimport torch\nfrom torch import nn\n\n'
        "from . import data\n\n\ndef make(model):\n"
        "    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)\n"
    )
    tree(tmp_path, {"pyproject.toml": "[tool.wd-lint]\n\n[tool.ruff]\nline-length = 60\n", "pkg/train.py": source})
    result = wd_lint("--fix", "--unsafe-fixes", cwd=tmp_path)
    fixed = (tmp_path / "pkg" / "train.py").read_text()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "import torch\nimport wd_guard\nfrom torch import nn\n" in fixed  # isort's order
    changed = [line for line in fixed.splitlines() if line not in source.splitlines()]
    assert changed and all(len(line) <= 60 for line in changed), fixed
    compile(fixed, "train.py", "exec")


def test_fix_keeps_a_noqa_comment_inside_a_multi_line_call(tmp_path):
    source = (
        "import torch\nimport wd_guard\n\nopt = torch.optim.SGD(\n    model.parameters(),\n    lr=0.1,\n"
        "    weight_decay=5e-4,  # noqa: WD302\n)\n"
    )
    tree(tmp_path, {"a.py": source})
    wd_lint("--fix", "--unsafe-fixes", "a.py", cwd=tmp_path)
    fixed = (tmp_path / "a.py").read_text()
    assert "wd_guard.param_groups(model, weight_decay=5e-4)" in fixed and "# noqa: WD302" in fixed
    compile(fixed, "a.py", "exec")
