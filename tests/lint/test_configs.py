"""Optimizer configs in YAML: LightningCLI / jsonargparse ``class_path`` and Hydra ``_target_``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from wd_guard.catalogue import get_rule
from wd_guard.lint.analysis.cache import Cache
from wd_guard.lint.api import Options, lint_paths
from wd_guard.lint.command.cli import main
from wd_guard.lint.diagnostic import CONFIG, PYTHON, Job
from wd_guard.lint.intake.vocabulary import might_matter
from wd_guard.lint.rules.configs import ConfigSyntaxError, lint_config
from wd_guard.optimizers import lookup

ROOT = Path(__file__).resolve().parents[2]

LIGHTNING = textwrap.dedent(
    """\
    trainer:
      max_steps: 10
    model:
      class_path: my_project.Classifier
    optimizer:
      class_path: torch.optim.Adam
      init_args:
        lr: 1e-3
        weight_decay: 1e-2
    """
)


def found(text: str, **kwargs):
    return [(d.code, d.line, d.column) for d in lint_config(text, "c.yaml", **kwargs)]


def run(capsys, *argv: str):
    code = main(["--jobs", "0", "--no-cache", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_lightning_cli_optimizer_is_coupled_and_blanket_decay():
    diagnostics = lint_config(LIGHTNING, "c.yaml")
    assert [(d.code, d.line, d.column, d.end_column) for d in diagnostics] == [("WD210", 5, 1, 10), ("WD101", 6, 15, 31)]
    adam = lookup("torch.optim.Adam")
    assert diagnostics[1].message == get_rule("WD101").format(optimizer=adam.short_name)
    assert "hands every parameter to Adam, whose weight_decay is 0.01" in diagnostics[0].message


def test_nested_optimizer_is_judged_for_coupling_only():
    text = textwrap.dedent(
        """\
        model:
          class_path: my_project.Classifier
          init_args:
            optimizer:
              class_path: torch.optim.RMSprop
              init_args: {lr: 0.01, weight_decay: 0.0001}
        """
    )
    assert found(text) == [("WD101", 5, 19)]  # the model decides which parameters: no WD210


@pytest.mark.parametrize(
    "optimizer, expected",
    [
        ("class_path: AdamW\n  init_args:\n    lr: 3.0e-4", [("WD210", 1, 1)]),  # AdamW's default 0.01
        ("class_path: torch.optim.AdamW\n  init_args:\n    weight_decay: 0.0", []),
        ("class_path: torch.optim.SGD\n  init_args:\n    lr: 0.1\n    weight_decay: 5e-4", [("WD210", 1, 1)]),
        ("class_path: torch.optim.NAdam\n  init_args:\n    weight_decay: 0.01\n    decoupled_weight_decay: true", [("WD210", 1, 1)]),
        ("class_path: torch.optim.Adam\n  init_args:\n    lr: 0.001", []),
        ("class_path: torch.optim.Rprop", []),
        ("class_path: my_project.FancyOptimizer\n  init_args:\n    weight_decay: 0.1", []),
        ("class_path: torch.optim.Adam\n  init_args:\n    weight_decay: '0.01'", []),  # quoted: unknown
        ("class_path: torch.optim.Adam\n  init_args:\n    weight_decay: ${oc.env:WD}", []),
        ("class_path: torch.optim.RAdam\n  init_args:\n    weight_decay: 0.1\n    decoupled_weight_decay: ${flag}", [("WD210", 1, 1)]),
    ],
)
def test_lightning_cli_optimizer_variants(optimizer, expected):
    assert found(f"optimizer:\n  {optimizer}\n") == expected


def test_lightning_cli_class_name_alone_and_subcommand():
    assert found("optimizer: AdamW\n") == [("WD210", 1, 1)]
    assert found("optimizer: Adam\n") == []
    text = "fit:\n  optimizer:\n    class_path: torch.optim.Adam\n    init_args:\n      weight_decay: 0.1\n"
    assert found(text) == [("WD210", 2, 3), ("WD101", 3, 17)]


def test_hydra_target_is_judged_with_its_arguments():
    text = textwrap.dedent(
        """\
        model:
          optimizer:
            _target_: torch.optim.Adam
            _partial_: true
            lr: 0.001
            weight_decay: 1e-4
          big:
            _target_: torch.optim.SGD
            lr: 1.0
            weight_decay: 0.5
          fine:
            _target_: torch.optim.AdamW
            weight_decay: 0.05
        """
    )
    assert found(text) == [("WD101", 3, 15), ("WD302", 8, 15)]


def test_plain_interpolations_are_followed():
    text = "wd: {value}\nopt:\n  _target_: torch.optim.Adam\n  weight_decay: ${{wd}}\n"
    assert found(text.format(value="0.01")) == [("WD101", 3, 13)]
    assert found(text.format(value="0.0")) == []
    assert found("opt:\n  _target_: torch.optim.Adam\n  weight_decay: ${missing.key}\n") == []
    assert found("a: ${b}\nb: ${a}\nopt:\n  _target_: torch.optim.Adam\n  weight_decay: ${a}\n") == []  # a loop


def test_every_document_and_selection():
    text = LIGHTNING + "---\noptimizer:\n  class_path: torch.optim.Adagrad\n  init_args:\n    weight_decay: 0.1\n"
    assert [code for code, _, _ in found(text)] == ["WD210", "WD101", "WD210", "WD101"]
    assert found(LIGHTNING, select=["WD101"]) == [("WD101", 6, 15)]


def test_yaml_without_optimizers_gives_nothing():
    assert lint_config((ROOT / "examples" / "lightning_cli.yaml").read_text()) == []
    assert lint_config("services:\n  web:\n    image: nginx\n    optimizer: none\n") == []
    assert lint_config("") == [] and lint_config("- 1\n- 2\n") == []


def test_invalid_yaml_raises_with_its_position():
    with pytest.raises(ConfigSyntaxError) as caught:
        lint_config("optimizer:\n  class_path: torch.optim.Adam\n  init_args: [1, 2\n")
    assert caught.value.line == 4 and caught.value.column == 1


def test_cli_reports_configs_named_on_the_command_line(tmp_path, capsys):
    config = tmp_path / "fit.yaml"
    config.write_text(LIGHTNING)
    code, out, _ = run(capsys, str(config))
    assert code == 1
    assert out.splitlines() == [
        f"{config}:5:1: WD210 {lint_config(LIGHTNING)[0].message}",
        f"{config}:6:15: WD101 {lint_config(LIGHTNING)[1].message}",
    ]
    code, out, _ = run(capsys, "--format", "json", str(config))
    assert [(item["code"], item["line"], item["column"]) for item in json.loads(out)] == [("WD210", 5, 1), ("WD101", 6, 15)]


def test_cli_invalid_yaml_exits_2_with_line_and_column(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("optimizer:\n  class_path: torch.optim.Adam\n  init_args: {lr: 1\n")
    good = tmp_path / "good.py"
    good.write_text("import torch\nopt = torch.optim.Adam(params, weight_decay=0.1)\n")
    code, out, err = run(capsys, str(broken), str(good))
    assert code == 2
    assert f"{broken}:4:1: error: invalid YAML" in err
    assert f"{good}:2:7: WD101" in out  # the other file is still linted


def test_noqa_in_a_yaml_comment(tmp_path, capsys):
    config = tmp_path / "fit.yaml"
    config.write_text(LIGHTNING.replace("optimizer:\n", "optimizer:  # noqa: WD210\n").replace("torch.optim.Adam\n", "torch.optim.Adam  # noqa\n"))
    code, out, err = run(capsys, str(config))
    assert (code, out) == (0, "") and "2 silenced by noqa" in err


def test_include_setting_selects_yaml_files_in_a_folder_walk(tmp_path, monkeypatch, capsys):
    for name in ("configs/fit.yaml", "configs/sub/deep.yml", "other.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(LIGHTNING)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, ".")
    assert (code, out) == (0, "")  # YAML is not read by default
    (tmp_path / "pyproject.toml").write_text('[tool.wd-lint]\ninclude = ["configs/**/*.yaml", "configs/**/*.yml"]\n')
    code, out, _ = run(capsys, ".")
    paths = sorted({line.split(":")[0] for line in out.splitlines()})
    assert code == 1 and paths == ["configs/fit.yaml", "configs/sub/deep.yml"]
    (tmp_path / "pyproject.toml").write_text('[tool.wd-lint]\ninclude = "configs"\n')
    code, _, err = run(capsys, ".")
    assert code == 2 and "include: expected a list of glob patterns" in err


def test_prefilter_keeps_configs_without_the_vocabulary_out():
    assert might_matter(LIGHTNING.encode(), config=True)
    assert might_matter(b"opt:\n  _target_: torch.optim.Adam\n  weight_decay: 0.1\n", config=True)
    assert might_matter(b"optimizer: AdamW\n", config=True)
    assert not might_matter((ROOT / "examples" / "lightning_cli.yaml").read_bytes(), config=True)
    assert not might_matter(b"model:\n  class_path: my.Adam\n", select=["WD210"], config=True)


def test_cache_knows_configs_and_keeps_kinds_apart(tmp_path):
    config = tmp_path / "fit.yaml"
    config.write_text(LIGHTNING)
    options = Options(processes=0, cache_dir=tmp_path / "cache", root=tmp_path)
    first = lint_paths([str(config)], options)
    job = Job(str(config), LIGHTNING, options.codes, CONFIG)
    remembered = Cache.open(tmp_path / "cache").get(job)
    assert remembered is not None and [d.code for d in remembered.diagnostics] == ["WD210", "WD101"]
    assert lint_paths([str(config)], options).diagnostics == first.diagnostics
    assert Cache.key(job) != Cache.key(Job(str(config), LIGHTNING, options.codes, PYTHON))
