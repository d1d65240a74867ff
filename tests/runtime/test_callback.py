"""WeightDecayGuard in real Lightning fits on CPU."""

from __future__ import annotations

import logging

import pytest
import torch
from runtime_models import GuardedModule, cnn, fit, mlp

from wd_guard import WeightDecayGuard, param_groups
from wd_guard.callback import WeightDecayGuardError
from wd_guard.catalogue import get_rule


def guard(**kwargs) -> WeightDecayGuard:
    kwargs.setdefault("log_weights", False)
    return WeightDecayGuard(**kwargs)


def blanket_adam(net):
    return torch.optim.Adam(net.parameters(), weight_decay=0.1)


def good_adamw(net, no_decay=()):
    # lr * weight_decay = 0.01: decay is meaningful (no WD301) even over a two-step test run.
    return torch.optim.AdamW(param_groups(net, 0.05, no_decay=no_decay), lr=0.2)


def test_warns_once_per_finding_with_the_code_first(tmp_path, wd_warnings, caplog):
    caplog.set_level(logging.INFO, logger="wd_guard")
    cb = guard()
    fit(GuardedModule(cnn(), blanket_adam), tmp_path, [cb], max_steps=3)
    assert [f.code for f in cb.findings] == ["WD101", "WD201", "WD202", "WD204"]
    # WD204 is info: in the log below the data-flow table, never a warning.
    assert wd_warnings.codes() == ["WD101", "WD201", "WD202"]
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("wd_guard")]
    (table,) = [text for text in logged if text.startswith("wd-guard data-flow check:")]
    assert table.splitlines()[0] == "wd-guard data-flow check: 1 finding (1 info)"
    assert table.splitlines()[2].split() == ["WD204", "info", "0", "0", "1", "decayed-scale-invariant"]
    (line,) = [text for text in logged if text.startswith("WD204 ")]
    assert "net.0.weight" in line and logged.index(line) == logged.index(table) + 1
    text = dict(zip(wd_warnings.codes(), wd_warnings.guard()))
    assert text["WD201"].startswith("WD201 " + get_rule("WD201").format(count=1))
    assert "net.5.bias" in text["WD201"] and "optimizer 0 (Adam), group 0" in text["WD201"]
    assert wd_warnings.internal() == []


def test_warnings_point_at_configure_optimizers(tmp_path, wd_warnings):
    fit(GuardedModule(mlp(), blanket_adam), tmp_path, [guard()])
    (location,) = {(w.filename, w.lineno) for w in wd_warnings.caught if str(w.message).startswith("WD")}
    assert location[0].endswith("runtime_models.py")


def test_silent_on_a_correct_configuration(tmp_path, wd_warnings):
    fit(GuardedModule(cnn(), lambda net: good_adamw(net, no_decay=["0.weight"])), tmp_path, [guard()])
    assert wd_warnings.guard() == []


def test_summary_table_is_logged_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="wd_guard")
    fit(GuardedModule(mlp(), blanket_adam), tmp_path, [guard()])
    (record,) = [r for r in caplog.records if r.name.startswith("wd_guard") and "findings" in r.getMessage()]
    lines = record.getMessage().splitlines()
    assert lines[0] == "wd-guard: 2 findings (1 error, 1 warning)"
    assert lines[1].split() == ["code", "severity", "optimizer", "group", "params", "rule"]
    assert lines[2].split() == ["WD101", "error", "0", "0", "4", "coupled-decay-adaptive"]
    assert lines[3].split() == ["WD201", "warning", "0", "0", "2", "decayed-bias"]


def test_strict_stops_before_the_first_step(tmp_path):
    module = GuardedModule(mlp(), blanket_adam)
    steps = []
    module.on_train_batch_end = lambda *args: steps.append(1)
    with pytest.raises(WeightDecayGuardError, match="WD101") as error:
        fit(module, tmp_path, [guard(strict=True)])
    assert "net.0.weight" in str(error.value) and "WD201" not in str(error.value)
    assert steps == [] and module.trainer.global_step == 0


def test_strict_passes_without_errors(tmp_path):
    trainer = fit(GuardedModule(mlp(), lambda net: torch.optim.AdamW(net.parameters(), lr=0.2, weight_decay=0.05)), tmp_path, [guard(strict=True)])
    assert trainer.global_step == 2


def test_ignore_and_severity_overrides(tmp_path, wd_warnings):
    fit(GuardedModule(cnn(), blanket_adam), tmp_path, [guard(ignore=["WD2"])])
    assert wd_warnings.codes() == ["WD101"]
    with pytest.raises(WeightDecayGuardError, match="WD201"):
        fit(GuardedModule(mlp(), lambda net: torch.optim.AdamW(net.parameters())), tmp_path, [guard(strict=True, severity={"WD201": "error"})])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ignore": ["WD9"]}, "matches no rule code"),
        ({"ignore": "WD2"}, "not the string"),
        ({"severity": {"WD999": "error"}}, "unknown rule code"),
        ({"severity": {"WD201": "fatal"}}, "not one of"),
        ({"log_every_n_steps": 0}, "log_every_n_steps must be None or an integer >= 1"),
        ({"log_max_series": -1}, "max_series must be None or an integer >= 0"),
        ({"log_include": 3}, "include must be"),
    ],
)
def test_bad_options_raise_at_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WeightDecayGuard(**kwargs)


def test_manual_optimization_with_two_optimizers(tmp_path, wd_warnings):
    def two(net):
        return [torch.optim.AdamW(net[0].parameters()), torch.optim.Adam(net[2].parameters(), weight_decay=0.1)]

    cb = guard()
    fit(GuardedModule(mlp(), two, manual=True), tmp_path, [cb])
    # AdamW's default decay of 0.01 at lr 1e-3 is negligible over two steps (WD301).
    assert [(f.code, f.optimizer) for f in cb.findings] == [("WD201", 0), ("WD301", 0), ("WD101", 1), ("WD201", 1)]
    assert wd_warnings.codes() == ["WD201", "WD101", "WD201"]  # WD301 is info: logged, not warned


def test_no_optimizer_at_all(tmp_path, wd_warnings):
    cb = guard()
    fit(GuardedModule(mlp(), None, manual=True), tmp_path, [cb])
    assert cb.findings == [] and wd_warnings.guard() == []


def test_frozen_parameters_are_not_untrained(tmp_path, wd_warnings):
    def head_only(net):
        net[0].requires_grad_(False)
        return good_adamw(net)

    fit(GuardedModule(mlp(), head_only), tmp_path, [guard()])
    assert wd_warnings.guard() == []


def test_untrained_parameters(tmp_path, wd_warnings):
    fit(GuardedModule(mlp(), lambda net: torch.optim.AdamW(net[2].parameters(), weight_decay=0.0)), tmp_path, [guard()])
    assert wd_warnings.codes() == ["WD205"]


def test_dict_with_scheduler_audits_the_planned_run(tmp_path, wd_warnings, caplog):
    caplog.set_level(logging.INFO, logger="wd_guard")

    def with_warmup(net):
        opt = torch.optim.AdamW(param_groups(net, 1e-4), lr=1e-4)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, step / 10))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    cb = guard()
    fit(GuardedModule(mlp(), with_warmup), tmp_path, [cb], max_steps=5)
    (finding,) = cb.findings
    assert finding.code == "WD301" and "planned 5 steps" in finding.message
    assert wd_warnings.guard() == []
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("WD")] == [str(finding)]


def test_fast_dev_run_skips_the_run_length_rule(tmp_path, wd_warnings):
    fast = GuardedModule(mlp(), lambda net: torch.optim.AdamW(param_groups(net, 1e-4), lr=1e-4))
    fit(fast, tmp_path, [guard()], fast_dev_run=True, max_steps=-1)
    assert wd_warnings.guard() == []


def test_custom_input_fn_and_dataflow_switch(tmp_path, wd_warnings):
    seen = []

    def first(batch):
        seen.append(type(batch).__name__)
        return batch[0]

    cb = guard(input_fn=first)
    fit(GuardedModule(cnn(), good_adamw), tmp_path, [cb], max_steps=3)
    assert seen == ["list"] and [f.code for f in cb.findings] == ["WD204"]
    cb = guard(dataflow=False)
    fit(GuardedModule(cnn(), good_adamw), tmp_path, [cb])
    assert cb.findings == [] and wd_warnings.guard() == []


def test_module_without_forward_skips_wd204(tmp_path, wd_warnings, caplog):
    class NoForward(GuardedModule):
        forward = GuardedModule.__mro__[1].forward

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(x), y)

    caplog.set_level(logging.DEBUG, logger="wd_guard")
    fit(NoForward(cnn(), good_adamw), tmp_path, [guard()])
    assert wd_warnings.guard() == []
    (skipped,) = [r for r in caplog.records if "does not implement forward" in r.getMessage()]
    assert skipped.levelno == logging.DEBUG


@pytest.mark.parametrize("entry", ["validate", "test", "predict"])
def test_no_audit_outside_fit(tmp_path, wd_warnings, monkeypatch, entry):
    import wd_guard.callback as callback_module

    calls = []
    monkeypatch.setattr(callback_module, "audit_report", lambda *a, **k: calls.append(1))

    class Evaluated(GuardedModule):
        def validation_step(self, batch, batch_idx):
            return None

        def test_step(self, batch, batch_idx):
            return None

        def predict_step(self, batch, batch_idx):
            return self(batch[0])

    import lightning.pytorch as pl
    from runtime_models import trainer_kwargs

    module = Evaluated(mlp(), blanket_adam)
    trainer = pl.Trainer(callbacks=[guard()], **trainer_kwargs(tmp_path, limit_val_batches=1, limit_test_batches=1, limit_predict_batches=1))
    loader = module.train_dataloader()
    getattr(trainer, entry)(module, loader)
    assert calls == [] and wd_warnings.guard() == []
