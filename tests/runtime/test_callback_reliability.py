"""The guard survives real training setups and its own faults; resumed runs remember what was said."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from runtime_models import GuardedModule, cnn, fit, mlp, trainer_kwargs
from torch import nn

import wd_guard.callback as callback_module
import wd_guard.dataflow as dataflow_module
from wd_guard import WeightDecayGuard, param_groups
from wd_guard.callback import WeightDecayGuardError
from wd_guard.monitor import WeightMonitor


def guard(**kwargs) -> WeightDecayGuard:
    kwargs.setdefault("log_weights", False)
    return WeightDecayGuard(**kwargs)


def blanket_adamw(net, weight_decay=0.05):
    return torch.optim.AdamW(net.parameters(), lr=0.2, weight_decay=weight_decay)


def boom(*args, **kwargs):
    raise RuntimeError("injected fault")


# -- faults inside the guard ---------------------------------------------------------------------


FAULTS = {
    "audit": lambda mp: mp.setattr(callback_module, "audit_report", boom),
    "summary": lambda mp: mp.setattr(callback_module, "summary_table", boom),
    "data-flow": lambda mp: mp.setattr(dataflow_module, "scale_invariant_weights", boom),
    "report": lambda mp: mp.setattr(WeightDecayGuard, "_report", boom),
    "weight logging setup": lambda mp: mp.setattr(WeightMonitor, "setup", boom),
}


@pytest.mark.parametrize("where", sorted(FAULTS))
def test_a_fault_becomes_one_warning_and_the_fit_completes(tmp_path, wd_warnings, monkeypatch, where):
    FAULTS[where](monkeypatch)
    trainer = fit(GuardedModule(cnn(), blanket_adamw), tmp_path, [guard(log_weights=True)], max_steps=3)
    assert trainer.global_step == 3
    (warning,) = wd_warnings.internal()
    assert "injected fault" in warning and "training continues" in warning


def test_a_fault_in_weight_logging_becomes_one_warning(tmp_path, wd_warnings, monkeypatch):
    monkeypatch.setattr(WeightMonitor, "on_train_batch_end", boom)
    trainer = fit(GuardedModule(mlp(), lambda net: torch.optim.AdamW(param_groups(net, 0.05), lr=0.2)), tmp_path, [guard(log_weights=True)], max_steps=3)
    assert trainer.global_step == 3
    (warning,) = wd_warnings.internal()
    assert "weight logging step failed" in warning


@pytest.mark.parametrize("where", ["audit", "data-flow"])
def test_strict_turns_a_fault_into_an_error_before_the_first_step(tmp_path, monkeypatch, where):
    FAULTS[where](monkeypatch)
    module = GuardedModule(cnn(), blanket_adamw)
    with pytest.raises(WeightDecayGuardError, match="injected fault"):
        fit(module, tmp_path, [guard(strict=True)])
    assert module.trainer.global_step == 0


def test_a_corrupt_saved_state_is_not_fatal(tmp_path, wd_warnings):
    cb = guard()
    cb.load_state_dict({"reported": 42})
    fit(GuardedModule(mlp(), blanket_adamw), tmp_path, [cb])
    assert wd_warnings.codes() == ["WD201"]
    assert len(wd_warnings.internal()) == 1


# -- resume --------------------------------------------------------------------------------------


def resume(tmp_path, factory, cb, ckpt, max_steps=4):
    trainer = pl.Trainer(callbacks=[cb], **trainer_kwargs(tmp_path, max_steps=max_steps))
    trainer.fit(GuardedModule(mlp(), factory), ckpt_path=str(ckpt))
    return trainer


def test_resume_does_not_warn_again(tmp_path, wd_warnings):
    trainer = fit(GuardedModule(mlp(), blanket_adamw), tmp_path, [guard()])
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    assert wd_warnings.codes() == ["WD201"]
    cb = guard()
    resume(tmp_path, blanket_adamw, cb, tmp_path / "a.ckpt")
    assert [f.code for f in cb.findings] == ["WD201"]
    assert wd_warnings.codes() == ["WD201"]


def test_resume_audits_the_restored_param_groups(tmp_path, wd_warnings):
    trainer = fit(GuardedModule(mlp(), lambda net: blanket_adamw(net, 0.0)), tmp_path, [])
    trainer.save_checkpoint(tmp_path / "no_decay.ckpt")
    cb = guard()
    resume(tmp_path, blanket_adamw, cb, tmp_path / "no_decay.ckpt")  # configure_optimizers asks for 0.05
    assert cb.findings == []
    trainer = fit(GuardedModule(mlp(), blanket_adamw), tmp_path, [])
    trainer.save_checkpoint(tmp_path / "decay.ckpt")
    cb = guard()
    resume(tmp_path, lambda net: blanket_adamw(net, 0.0), cb, tmp_path / "decay.ckpt")
    assert [f.code for f in cb.findings] == ["WD201"] and "weight_decay=0.05" in cb.findings[0].message
    assert wd_warnings.codes() == ["WD201"]


# -- training setups -----------------------------------------------------------------------------


def test_compiled_module_uses_the_model_names(tmp_path, wd_warnings):
    net = mlp()
    compiled = torch.compile(net, backend="eager")
    cb = guard()
    fit(GuardedModule(compiled, lambda _: blanket_adamw(net)), tmp_path, [cb])
    assert [f.params for f in cb.findings] == [("net.0.bias", "net.2.bias")]


def test_lazy_modules(tmp_path, wd_warnings):
    lazy = nn.Sequential(nn.LazyLinear(8), nn.LazyBatchNorm1d(), nn.ReLU(), nn.LazyLinear(2))
    cb = guard()
    fit(GuardedModule(lazy, lambda net: torch.optim.SGD(net.parameters(), lr=0.2, weight_decay=0.05)), tmp_path, [cb])
    assert [(f.code, f.params) for f in cb.findings] == [
        ("WD201", ("net.0.bias", "net.3.bias")),
        ("WD202", ("net.1.weight", "net.1.bias")),
        ("WD204", ("net.0.weight",)),
    ]


class MetaBuilt(GuardedModule):
    """Builds its network on the meta device in configure_model, then materialises it."""

    def __init__(self) -> None:
        super().__init__(nn.Identity(), lambda net: torch.optim.SGD(net.parameters(), lr=0.2, weight_decay=0.05))

    def configure_model(self) -> None:
        with torch.device("meta"):
            net = cnn()
        self.net = net.to_empty(device="cpu")
        for module in self.net.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def train_dataloader(self):
        x = torch.randn(8, 3, 8, 8)
        return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.randn(8, 2)), batch_size=4)


def test_meta_device_module_built_in_configure_model(tmp_path, wd_warnings):
    cb = guard()
    fit(MetaBuilt(), tmp_path, [cb])
    assert [f.code for f in cb.findings] == ["WD201", "WD202", "WD204"]


def test_gradient_accumulation_checks_once(tmp_path, wd_warnings, monkeypatch):
    calls = []
    real = dataflow_module.scale_invariant_weights
    monkeypatch.setattr(dataflow_module, "scale_invariant_weights", lambda *a: calls.append(1) or real(*a))
    trainer = fit(GuardedModule(cnn(), blanket_adamw), tmp_path, [guard()], accumulate_grad_batches=2)
    assert trainer.global_step == 2 and calls == [1]
    assert wd_warnings.codes() == ["WD201", "WD202"]


class Rebuilding(GuardedModule):
    """Replaces its optimizer after the first batch, as curriculum or unfreezing code does."""

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.trainer.optimizers = [torch.optim.Adam(self.net.parameters(), lr=1e-3, weight_decay=0.1)]
        if batch_idx == 1:
            extra = torch.zeros(2, requires_grad=True)  # not a parameter of the model
            self.trainer.optimizers[0].add_param_group({"params": [extra], "weight_decay": 0.0})


def test_optimizer_rebuilt_mid_training_is_audited_again(tmp_path, wd_warnings):
    module = Rebuilding(mlp(), lambda net: torch.optim.AdamW(param_groups(net, 0.05), lr=0.2))
    cb = guard()
    fit(module, tmp_path, [cb], max_steps=4)
    assert wd_warnings.codes() == ["WD101", "WD201"]
    # After add_param_group the audit ran again: the new group holds a tensor outside the model.
    assert any("not parameters of the model" in text for text in wd_warnings.guard())
