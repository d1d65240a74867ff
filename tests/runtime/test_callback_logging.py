"""With its defaults the guard logs weight norms and effective decay through the Trainer's loggers."""

from __future__ import annotations

import csv

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from runtime_models import GuardedModule, fit, mlp

from wd_guard import WeightDecayGuard, param_groups


def good_adamw(net):
    return torch.optim.AdamW(param_groups(net, 0.05), lr=0.2)


def test_default_guard_logs_weight_norms_to_csv(tmp_path, wd_warnings):
    logger = CSVLogger(tmp_path, name="run")
    fit(GuardedModule(mlp(), good_adamw), tmp_path, [WeightDecayGuard()], logger=logger, max_steps=4, log_every_n_steps=2)
    with open(logger.experiment.metrics_file_path) as handle:
        rows = list(csv.DictReader(handle))
    keys = set(rows[0])
    for name in ("net.0.weight", "net.0.bias", "net.2.weight"):
        # AdamW decays a group's parameters alike: decay per group, a norm per parameter.
        assert f"weight_norm/{name}" in keys and f"effective_decay/{name}" not in keys
    logged = [row for row in rows if row["weight_norm/net.0.weight"]]
    assert [int(row["step"]) for row in logged] == [1, 3]  # Lightning's own step axis
    assert float(logged[-1]["weight_norm/net.0.weight"]) > 0
    assert float(logged[-1]["effective_decay/group_0_0"]) == pytest.approx(0.2 * 0.05)
    assert "effective_decay/group_0_1" not in keys  # the no-decay group: no constant-zero series
    assert wd_warnings.guard() == []


def test_options_reach_the_weight_logger(tmp_path, wd_warnings):
    logger = CSVLogger(tmp_path, name="run")
    guard = WeightDecayGuard(log_every_n_steps=1, log_prefix="wd/", log_per_module=True, log_include=["net.0"])
    fit(GuardedModule(mlp(), good_adamw), tmp_path, [guard], logger=logger, max_steps=2)
    with open(logger.experiment.metrics_file_path) as handle:
        keys = set(next(csv.DictReader(handle)))
    assert "wd/weight_norm/net.0" in keys and "wd/weight_norm/net.2" not in keys
    assert not any(key.startswith("weight_norm/") for key in keys)


def test_weight_logging_without_any_logger(tmp_path, wd_warnings):
    trainer = fit(GuardedModule(mlp(), good_adamw), tmp_path, [WeightDecayGuard(log_every_n_steps=1)], logger=False)
    assert trainer.global_step == 2 and wd_warnings.guard() == []
