"""WeightDecayGuard configured from LightningCLI YAML (class_path) in a real run."""

from __future__ import annotations

import sys
import textwrap

import pytest
from lightning.pytorch.cli import LightningCLI
from runtime_models import CliModule

from wd_guard import WeightDecayGuard
from wd_guard.callback import WeightDecayGuardError


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    # LightningCLI(args=...) warns when the process also has command-line arguments (pytest's).
    monkeypatch.setattr(sys, "argv", ["train.py"])


CONFIG = """
trainer:
  accelerator: cpu
  devices: 1
  logger: false
  enable_checkpointing: false
  enable_progress_bar: false
  enable_model_summary: false
  callbacks:
    - class_path: wd_guard.WeightDecayGuard
      init_args:
        ignore: [WD3]
        severity: {{WD201: info}}
        strict: {strict}
        dataflow: true
        input_fn: runtime_models.first_element
        log_weights: false
        log_every_n_steps: 5
        log_prefix: "wd/"
        log_per_module: true
        log_include: [net.0]
        log_max_series: 10
"""


def run_cli(tmp_path, strict: bool = False, *extra: str) -> LightningCLI:
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(CONFIG.format(strict=str(strict).lower())))
    args = ["fit", "--config", str(config), "--trainer.max_steps=2", f"--trainer.default_root_dir={tmp_path}", *extra]
    return LightningCLI(CliModule, args=args, save_config_kwargs={"overwrite": True})


def test_yaml_builds_the_guard_and_it_runs(tmp_path, wd_warnings):
    cli = run_cli(tmp_path)
    (guard,) = [cb for cb in cli.trainer.callbacks if isinstance(cb, WeightDecayGuard)]
    assert guard.ignore == ["WD3"] and guard.severity == {"WD201": "info"}
    assert guard.log_include == ["net.0"] and guard.log_max_series == 10 and guard.log_prefix == "wd/"
    assert guard.input_fn.__name__ == "first_element"
    assert cli.trainer.global_step == 2
    assert [(f.code, f.severity) for f in guard.findings] == [("WD201", "info")]
    assert wd_warnings.guard() == []  # made info by the config: logged, not warned


def test_yaml_strict_stops_the_run(tmp_path):
    with pytest.raises(WeightDecayGuardError, match="WD201"):
        run_cli(tmp_path, True, "--trainer.callbacks.init_args.severity={WD201: error}")


def test_yaml_rejects_a_bad_severity(tmp_path):
    with pytest.raises(SystemExit):
        run_cli(tmp_path, False, "--trainer.callbacks.init_args.severity={WD201: fatal}")
