"""The ``wd-lint`` command line, run in-process through ``main(argv)``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from wd_guard.catalogue import get_rule
from wd_guard.lint.command.cli import main
from wd_guard.lint.analysis.engine import lint_source

TRAIN = textwrap.dedent(
    """\
    import torch
    from torch import nn, optim

    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8))
    opt = optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)
    sgd = torch.optim.SGD([{"params": [model[0].weight], "weight_decay": 0.5}], lr=1.0)
    """
)
CLEAN = "import torch\nopt = torch.optim.AdamW([{'params': [], 'weight_decay': 0.0}], lr=1e-3)\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(capsys, *argv: str):
    code = main(["--jobs", "0", *argv]) if argv[:1] != ("rule",) else main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def codes(out: str):
    return [(line.split(":")[1], line.split(": ")[1].split()[0]) for line in out.splitlines()]


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "train.py", TRAIN)
    write(tmp_path / "clean.py", CLEAN)
    return tmp_path


def test_findings_are_printed_as_path_line_col_code_message(project, capsys):
    code, out, err = run(capsys, "train.py")
    expected = [f"train.py:{d.line}:{d.column}: {d.code} {d.message}" for d in lint_source(TRAIN, "train.py")]
    assert code == 1
    assert out.splitlines() == expected
    assert codes(out) == [("5", "WD101"), ("5", "WD210"), ("6", "WD302")]
    assert out.splitlines()[0].startswith("train.py:5:7: WD101 ")
    assert "Found 3 findings in 1 file." in err


def test_clean_file_exits_zero(project, capsys):
    assert run(capsys, "clean.py") == (0, "", "No findings in 1 file.\n")


def test_no_paths_lints_the_current_folder(project, capsys):
    code, out, _ = run(capsys)
    assert code == 1 and {line.split(":")[0] for line in out.splitlines()} == {"train.py"}


def test_zero_python_files_is_not_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "README.md", "# nothing to lint\n")
    assert run(capsys) == (0, "", "No findings in 0 files.\n")


def test_unreadable_file_exits_two_and_others_are_still_linted(project, capsys):
    write(project / "broken.py", "import torch\nopt = torch.optim.Adam(\n")
    code, out, err = run(capsys, ".")
    assert code == 2
    assert codes(out) == [("5", "WD101"), ("5", "WD210"), ("6", "WD302")]
    assert "broken.py:2:23: error: syntax error: '(' was never closed" in err
    assert "1 could not be linted (exit status 2)" in err


def test_missing_path_exits_two(project, capsys):
    code, out, err = run(capsys, "train.py", "nope.py")
    assert code == 2 and "nope.py: error: no such file or directory" in err and "WD101" in out


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--select", "WD101"], ["WD101"]),
        (["--select", "wd3,WD1"], ["WD101", "WD302"]),
        (["--select", "WD2"], ["WD204", "WD210"]),
        (["--select", "ALL"], ["WD101", "WD204", "WD210", "WD302"]),
        (["--ignore", "WD210", "--ignore", "WD3"], ["WD101"]),
        (["--extend-select", "WD204"], ["WD101", "WD204", "WD210", "WD302"]),
        (["--select", "ALL", "--ignore", "ALL"], []),
    ],
)
def test_selection(project, capsys, options, expected):
    code, out, _ = run(capsys, *options, "train.py")
    assert sorted({c for _, c in codes(out)}) == expected
    assert code == (1 if expected else 0)


def test_unknown_selector_is_a_usage_error(project, capsys):
    code, out, err = run(capsys, "--select", "WD999", "train.py")
    assert (code, out) == (2, "") and "--select: 'WD999' matches no rule code" in err


@pytest.mark.parametrize(
    "comment, silenced",
    [
        ("  # noqa", {"WD101", "WD210"}),
        ("  # noqa: WD101", {"WD101"}),
        ("  # NOQA:WD101,WD210", {"WD101", "WD210"}),
        ("  # noqa: WD101 WD210", {"WD101", "WD210"}),
        ("  # noqa: WD2", {"WD210"}),
        ("  # noqa: E501", set()),
        ("  # type: ignore  # noqa: WD210", {"WD210"}),
    ],
)
def test_noqa_on_the_reported_line(tmp_path, monkeypatch, capsys, comment, silenced):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "t.py", f"import torch\nopt = torch.optim.Adam(model.parameters(), weight_decay=1e-2){comment}\n")
    _, out, err = run(capsys, "t.py")
    assert {c for _, c in codes(out)} == {"WD101", "WD210"} - silenced
    assert (f"({len(silenced)} silenced by noqa)" in err) is bool(silenced)


def test_noqa_inside_a_string_does_not_count(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "t.py", 'import torch\nnote = "# noqa"; opt = torch.optim.Adam(params, weight_decay=1e-2)\n')
    _, out, _ = run(capsys, "t.py")
    assert codes(out) == [("2", "WD101")]


def test_noqa_on_another_line_does_not_count(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "t.py", "import torch  # noqa\nopt = torch.optim.Adam(\n    params,  # noqa\n    weight_decay=1e-2,\n)\n")
    _, out, _ = run(capsys, "t.py")
    assert codes(out) == [("2", "WD101")]


def test_config_file_selection_excludes_and_per_file_ignores(project, capsys):
    write(project / "tests" / "test_train.py", TRAIN)
    write(project / "generated" / "model.py", TRAIN)
    write(
        project / "pyproject.toml",
        '[tool.wd-lint]\nextend-select = ["WD204"]\nignore = ["WD302"]\nexclude = ["generated"]\n'
        'per-file-ignores = { "tests/*" = ["WD1", "WD2"] }\n',
    )
    code, out, _ = run(capsys)
    found = sorted((line.split(":")[0], line.split(": ")[1].split()[0]) for line in out.splitlines())
    assert code == 1
    assert found == [("train.py", "WD101"), ("train.py", "WD204"), ("train.py", "WD210")]


def test_command_line_overrides_config(project, capsys):
    write(project / "pyproject.toml", '[tool.wd-lint]\nselect = ["WD302"]\n')
    assert {c for _, c in codes(run(capsys, "train.py")[1])} == {"WD302"}
    assert {c for _, c in codes(run(capsys, "--select", "WD101", "train.py")[1])} == {"WD101"}
    assert {c for _, c in codes(run(capsys, "--isolated", "train.py")[1])} == {"WD101", "WD210", "WD302"}


def test_explicit_config_file(project, capsys):
    config = write(project / "conf" / "pyproject.toml", '[tool.wd-lint]\nselect = ["WD210"]\n')
    assert {c for _, c in codes(run(capsys, "--config", str(config), "train.py")[1])} == {"WD210"}


def test_bad_config_is_a_usage_error_before_any_linting(project, capsys):
    write(project / "pyproject.toml", '[tool.wd-lint]\nselect = "WD101"\n')
    code, out, err = run(capsys, "train.py")
    assert (code, out) == (2, "")
    assert "pyproject.toml: [tool.wd-lint] select: expected a list of rule codes" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--format", "xml"], "invalid choice: 'xml'"),
        (["--statistics", "--format", "sarif"], "--statistics works with --format text or json"),
        (["--jobs", "-1"], "--jobs: expected 0 or more"),
        (["--max-file-size", "huge"], "--max-file-size: expected a positive size"),
        (["--timeout", "0"], "--timeout: expected a positive number of seconds"),
        (["--config", "c.toml", "--isolated"], "--config and --isolated exclude each other"),
        (["--config", "missing.toml"], "missing.toml: cannot read"),
        (["--explain", "WD999"], "unknown rule code 'WD999'"),
        (["--no-such-option"], "unrecognized arguments: --no-such-option"),
    ],
)
def test_usage_errors_exit_two(project, capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert message in err and err.rstrip().splitlines()[-1].startswith("wd-lint: error:")


@pytest.mark.parametrize("argv", [["--explain", "WD101"], ["--explain", "wd201"], ["rule", "WD101"], ["rule", "WD402"]])
def test_explain_prints_the_catalogue_text(capsys, argv):
    code, out, _ = run(capsys, *argv)
    assert code == 0 and out == get_rule(argv[1]).explain()


def test_rule_without_code_lists_every_rule(capsys):
    code, out, _ = run(capsys, "rule")
    lines = out.splitlines()
    assert code == 0 and [line.split()[0] for line in lines] == [r.code for r in __import__("wd_guard.catalogue").catalogue.RULES]
    assert "opt-in" in next(line for line in lines if line.startswith("WD204"))
    assert "runtime only" in next(line for line in lines if line.startswith("WD201"))


def test_rule_with_two_codes_is_a_usage_error(capsys):
    assert run(capsys, "rule", "WD101", "WD210")[0] == 2


def test_statistics(project, capsys):
    write(project / "more.py", TRAIN)
    code, out, _ = run(capsys, "--statistics")
    assert code == 1
    assert out.splitlines() == ["2  WD101  coupled-decay-adaptive", "2  WD210  blanket-decay", "2  WD302  excessive-decay"]
    code, out, _ = run(capsys, "--statistics", "--format", "json")
    assert json.loads(out)[0] == {"code": "WD101", "name": "coupled-decay-adaptive", "count": 2}


@pytest.mark.parametrize("fmt", ["json", "sarif", "github"])
def test_machine_formats_through_main(project, capsys, fmt):
    code, out, _ = run(capsys, "--format", fmt, "train.py")
    assert code == 1
    if fmt == "json":
        assert [(d["code"], d["line"], d["column"]) for d in json.loads(out)] == [("WD101", 5, 7), ("WD210", 5, 18), ("WD302", 6, 7)]
    elif fmt == "sarif":
        results = json.loads(out)["runs"][0]["results"]
        assert [r["ruleId"] for r in results] == ["WD101", "WD210", "WD302"]
    else:
        assert [line.split(" ", 1)[0] for line in out.splitlines()] == ["::error", "::warning", "::error"]


def test_worker_processes_give_the_same_result_as_in_process(project, capsys):
    for index in range(6):
        write(project / "pkg" / f"m{index}.py", TRAIN if index % 2 else CLEAN)
    in_process = run(capsys, "--format", "json")
    workers = main(["--jobs", "2", "--format", "json"]), *capsys.readouterr()
    assert workers[0] == in_process[0] == 1
    assert json.loads(workers[1]) == json.loads(in_process[1])


def test_version(capsys):
    assert run(capsys, "--version")[:2] == (0, f"wd-lint {__import__('wd_guard').__version__}\n")
