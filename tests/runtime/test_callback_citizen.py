"""The guard leaves no marks on the run it watches, and its warnings point at the user's code."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from runtime_models import CliModule, GuardedModule, cnn, fit, mlp, trainer_kwargs
from torch import nn

import wd_guard
import wd_guard.dataflow as dataflow_module
from wd_guard import WeightDecayGuard, WeightDecayWarning

WD_GUARD_DIR = os.path.dirname(os.path.abspath(wd_guard.__file__))


class Noise(nn.Module):
    """Draws from the global random stream in every mode, as some augmentation layers do."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1e-3 * torch.rand_like(x)


def noisy_net() -> nn.Module:
    """Lazy layer, BatchNorm, dropout and a draw in eval mode: every way a pass could move the RNG."""
    return nn.Sequential(nn.LazyLinear(8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), Noise(), nn.Linear(8, 2))


def seeded_weights(tmp_path, callbacks, name: str, accelerator: str = "cpu") -> dict:
    torch.manual_seed(0)
    module = GuardedModule(noisy_net(), lambda net: torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4))
    logger = CSVLogger(str(tmp_path), name=name)
    kwargs = trainer_kwargs(tmp_path, max_steps=4, logger=logger, log_every_n_steps=1, accelerator=accelerator)
    pl.Trainer(callbacks=callbacks, **kwargs).fit(module)
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize("accelerator", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_a_seeded_run_gives_the_same_weights_with_and_without_the_guard(tmp_path, wd_warnings, accelerator):
    cb = WeightDecayGuard(log_every_n_steps=1)
    with_guard = seeded_weights(tmp_path, [cb], "with", accelerator)
    without = seeded_weights(tmp_path, [], "without", accelerator)
    assert "WD204" in [f.code for f in cb.findings]  # the data-flow pass did run
    assert with_guard.keys() == without.keys()
    assert all(torch.equal(with_guard[k], without[k]) for k in with_guard)


def test_the_same_comparison_fails_when_the_pass_moves_the_random_stream(tmp_path, monkeypatch):
    monkeypatch.setattr(dataflow_module, "_forked_rng", lambda model: contextlib.nullcontext())
    with_guard = seeded_weights(tmp_path, [WeightDecayGuard(log_weights=False)], "with")
    without = seeded_weights(tmp_path, [], "without")
    assert not all(torch.equal(with_guard[k], without[k]) for k in with_guard)


def eval_forwards(module: GuardedModule) -> list:
    """Records each forward of the network run in eval mode: only the data-flow pass does that."""
    calls: list = []
    module.net.register_forward_pre_hook(lambda m, args: None if m.training else calls.append(1))
    return calls


def test_the_pass_runs_only_when_the_model_has_batchnorm(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="wd_guard")
    adamw = lambda net: torch.optim.AdamW(net.parameters(), lr=0.2, weight_decay=0.05)  # noqa: E731
    with_bn, without_bn = GuardedModule(cnn(), adamw), GuardedModule(mlp(), adamw)
    calls_bn, calls_plain = eval_forwards(with_bn), eval_forwards(without_bn)
    fit(with_bn, tmp_path, [WeightDecayGuard(log_weights=False)])
    fit(without_bn, tmp_path, [WeightDecayGuard(log_weights=False)])
    assert calls_bn == [1] and calls_plain == []
    (skipped,) = [r for r in caplog.records if "no BatchNorm" in r.getMessage()]
    assert skipped.levelno == logging.DEBUG


def test_lazy_modules_are_left_to_the_training_step(tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="wd_guard")
    module = GuardedModule(nn.Sequential(nn.LazyLinear(8), nn.BatchNorm1d(8), nn.Linear(8, 2)), lambda net: torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=5e-4))
    cb = WeightDecayGuard(log_weights=False)
    fit(module, tmp_path, [cb], max_steps=3)
    assert any("waits for the lazy modules" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)
    assert [f.code for f in cb.findings if f.code == "WD204"] == ["WD204"]


# -- where warnings point -----------------------------------------------------------------------


def guard_warnings(record) -> list:
    return [w for w in record.caught if issubclass(w.category, WeightDecayWarning)]


def test_pytorch_lightning_modules_warn_at_the_users_code(tmp_path, wd_warnings, caplog):
    plegacy = pytest.importorskip("pytorch_lightning")

    class Legacy(plegacy.LightningModule):  # no forward: the pass is skipped quietly
        def __init__(self) -> None:
            super().__init__()
            self.net = cnn()

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.mse_loss(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), weight_decay=0.1)

        def train_dataloader(self):
            data = torch.utils.data.TensorDataset(torch.randn(8, 3, 8, 8), torch.randn(8, 2))
            return torch.utils.data.DataLoader(data, batch_size=4)

    caplog.set_level(logging.DEBUG, logger="wd_guard")
    trainer = plegacy.Trainer(callbacks=[WeightDecayGuard(log_weights=False)], **trainer_kwargs(tmp_path))
    trainer.fit(Legacy())
    assert wd_warnings.codes() == ["WD101", "WD201", "WD202"] and wd_warnings.internal() == []
    line = Legacy.configure_optimizers.__code__.co_firstlineno
    assert {(w.filename, w.lineno) for w in guard_warnings(wd_warnings)} == {(__file__, line)}
    assert any("does not implement forward" in r.getMessage() for r in caplog.records)


CLI_CONFIG = """\
trainer:
  accelerator: cpu
  devices: 1
  max_steps: 2
  logger: false
  enable_checkpointing: false
  enable_progress_bar: false
  enable_model_summary: false
  callbacks:
    - class_path: wd_guard.WeightDecayGuard
      init_args:
        log_weights: false
optimizer:
  class_path: torch.optim.Adam
  init_args:
    weight_decay: 0.1
"""


def test_an_optimizer_injected_by_lightning_cli_warns_at_the_config(tmp_path, wd_warnings, monkeypatch):
    from lightning.pytorch.cli import LightningCLI

    monkeypatch.setattr(sys, "argv", ["train.py"])
    (tmp_path / "configs").mkdir()  # away from the copy LightningCLI saves in the run directory
    config = tmp_path / "configs" / "config.yaml"
    config.write_text(CLI_CONFIG)
    LightningCLI(CliModule, args=["fit", "--config", str(config), f"--trainer.default_root_dir={tmp_path}"], save_config_kwargs={"overwrite": True})
    assert wd_warnings.codes() == ["WD101", "WD201"]
    line = CLI_CONFIG.splitlines().index("optimizer:") + 1
    assert {(w.filename, w.lineno) for w in guard_warnings(wd_warnings)} == {(str(config), line)}


def test_an_optimizer_injected_from_the_command_line_warns_at_the_cli_call(tmp_path, wd_warnings, monkeypatch):
    from lightning.pytorch.cli import LightningCLI

    monkeypatch.setattr(sys, "argv", ["train.py"])
    (tmp_path / "configs").mkdir()
    config = tmp_path / "configs" / "config.yaml"
    config.write_text(CLI_CONFIG.split("optimizer:")[0])
    args = ["fit", "--config", str(config), f"--trainer.default_root_dir={tmp_path}", "--optimizer=Adam", "--optimizer.weight_decay=0.1"]
    LightningCLI(CliModule, args=args, save_config_kwargs={"overwrite": True}); line = sys._getframe().f_lineno  # noqa: E702
    assert wd_warnings.codes() == ["WD101", "WD201"]
    assert {(w.filename, w.lineno) for w in guard_warnings(wd_warnings)} == {(__file__, line)}


def test_a_failing_step_warns_at_the_users_call_not_inside_wd_guard(tmp_path, wd_warnings, monkeypatch):
    monkeypatch.setattr(dataflow_module, "scale_invariant_weights", lambda *a: 1 / 0)
    fit(GuardedModule(cnn(), lambda net: torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=5e-4)), tmp_path, [WeightDecayGuard(log_weights=False)])
    (failure,) = [w for w in guard_warnings(wd_warnings) if "step failed" in str(w.message)]
    assert not failure.filename.startswith(WD_GUARD_DIR) and failure.filename.endswith("runtime_models.py")


class Declaring(GuardedModule):
    def no_weight_decay(self):
        raise AttributeError("'Declaring' object has no attribute 'pos_embed'")


def test_a_raising_no_weight_decay_is_a_note_and_the_fit_completes(tmp_path, wd_warnings):
    module = Declaring(mlp(), lambda net: torch.optim.AdamW(net.parameters(), lr=0.2, weight_decay=0.05))
    trainer = fit(module, tmp_path, [WeightDecayGuard(log_weights=False)])
    assert trainer.global_step == 2 and wd_warnings.internal() == []
    assert wd_warnings.codes() == ["WD201"]
    (note,) = [text for text in wd_warnings.guard() if "no_weight_decay" in text]
    assert note.startswith("wd-guard: Declaring.no_weight_decay() raised AttributeError")


def test_info_findings_are_logged_not_warned(tmp_path, wd_warnings, caplog):
    caplog.set_level(logging.INFO, logger="wd_guard")
    cb = WeightDecayGuard(log_weights=False, severity={"WD201": "info"})
    fit(GuardedModule(mlp(), lambda net: torch.optim.AdamW(net.parameters(), lr=0.2, weight_decay=0.05)), tmp_path, [cb])
    assert [(f.code, f.severity) for f in cb.findings] == [("WD201", "info")]
    assert wd_warnings.guard() == []
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("wd_guard")]
    assert logged[0].startswith("wd-guard: 1 finding (1 info)") and logged[1] == str(cb.findings[0])
