"""The flake8 plugin reports what wd-lint reports, with flake8's 0-based columns."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import libcst
import pytest

from wd_guard.lint.analysis import engine
from wd_guard.lint.command.cli import main
from wd_guard.lint.command.flake8_plugin import WeightDecayChecker
from wd_guard.lint.rules import ALL_RULES

LIGHTNING = textwrap.dedent(
    """\
    import lightning as L
    import torch
    from torch import nn


    class Classifier(L.LightningModule):
        def __init__(self, lr=1e-3, weight_decay=0.05):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU())

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self.net(x), y)
            penalty = sum(p.pow(2).sum() for p in self.parameters())
            return loss + 1e-4 * penalty

        def configure_optimizers(self):
            optimizer = torch.optim.Adam(
                self.parameters(),
                lr=self.hparams.lr,
                weight_decay=self.hparams.weight_decay,
            )
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=10)
            return {"optimizer": optimizer, "lr_scheduler": scheduler}
    """
)
PLAIN = "import os\n\n\ndef main():\n    return os.getcwd()\n"


def fixtures(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rule in ALL_RULES:
        for index, example in enumerate(rule.INVALID):
            (root / f"{rule.CODE.lower()}_{index}.py").write_text(example.code)
    (root / "lightning_module.py").write_text(LIGHTNING)
    (root / "plain.py").write_text(PLAIN)
    return root


def flake8(root: Path, *extra: str):
    command = [sys.executable, "-m", "flake8", "--isolated", "--select", "WD", *extra]
    command += ["--format", "%(path)s:%(row)d:%(col)d:%(code)s", str(root)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stderr
    rows = (line.rsplit(":", 3) for line in result.stdout.splitlines())
    return sorted((Path(path).name, int(row), int(col), code) for path, row, col, code in rows)


def wd_lint(root: Path, capsys, *extra: str):
    main(["--isolated", "--jobs", "0", "--format", "json", *extra, str(root)])
    items = json.loads(capsys.readouterr().out)
    return sorted((Path(d["path"]).name, d["line"], d["column"], d["code"]) for d in items)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return fixtures(tmp_path_factory.mktemp("flake8") / "src")


def test_flake8_reports_the_same_codes_lines_and_columns(corpus, capsys):
    expected = wd_lint(corpus, capsys)
    assert {code for *_, code in expected} == {"WD101", "WD210", "WD302", "WD401", "WD402"}
    assert flake8(corpus) == expected


def test_opt_in_codes_through_flake8_option(corpus, capsys):
    expected = wd_lint(corpus, capsys, "--extend-select", "WD204")
    assert any(code == "WD204" for *_, code in expected)
    assert flake8(corpus, "--wd-extend-select", "WD204") == expected


def test_bad_flake8_option_is_a_clean_error(corpus):
    command = [sys.executable, "-m", "flake8", "--isolated", "--select", "WD", "--wd-extend-select", "XY9", str(corpus)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "wd-guard: --wd-extend-select: 'XY9' matches no rule code" in result.stderr
    assert "Traceback" not in result.stderr


def checker_results(source: str, filename: str = "t.py"):
    checker = WeightDecayChecker(ast.parse(source), source.splitlines(keepends=True), filename)
    return list(checker.run())


def test_plugin_yields_zero_based_columns_and_its_type():
    source = LIGHTNING
    results = checker_results(source)
    expected = engine.lint_source(source, "t.py")
    assert [(line, col) for line, col, _, _ in results] == [(d.line, d.column - 1) for d in expected]
    assert [message for _, _, message, _ in results] == [f"{d.code} {d.message}" for d in expected]
    assert all(kind is WeightDecayChecker for *_, kind in results)


def test_plugin_skips_files_without_vocabulary_before_parsing(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("parsed a file without vocabulary")

    monkeypatch.setattr(engine, "lint_source", fail)
    assert checker_results(PLAIN) == []


def test_plugin_swallows_parse_failures(monkeypatch):
    def refuse(source, path="<string>", *, select=None):
        raise libcst.ParserSyntaxError("nope", lines=["x"], raw_line=1, raw_column=0)

    monkeypatch.setattr(engine, "lint_source", refuse)
    assert checker_results(LIGHTNING) == []
