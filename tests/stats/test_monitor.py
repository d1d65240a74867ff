"""WeightMonitor: argument checks, cadence, keys, one transfer per logging step, real logger output."""

from __future__ import annotations

import csv
import math

import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger  # noqa: E402
from stats_helpers import MonitorCallback, TinyModule, loader, trainer  # noqa: E402

from wd_guard.monitor import WeightMonitor  # noqa: E402
from wd_guard.stats import weight_stats  # noqa: E402


class RecordingLogger(Logger):
    """Keeps every log_metrics call."""

    def __init__(self):
        super().__init__()
        self.calls = []

    @property
    def name(self):
        return "recording"

    @property
    def version(self):
        return 0

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        self.calls.append((step, dict(metrics)))


def _fit(tmp_path, monitor, module=None, **kwargs):
    logger = RecordingLogger()
    module = module or TinyModule()
    fit_trainer = trainer(tmp_path, [MonitorCallback(monitor)], logger=logger, **kwargs)
    fit_trainer.fit(module, loader())
    return logger, module, fit_trainer


@pytest.mark.parametrize(
    "kwargs, shown",
    [
        ({"log_every_n_steps": 0}, "0"),
        ({"log_every_n_steps": 2.5}, "2.5"),
        ({"log_every_n_steps": True}, "True"),
        ({"max_series": -1}, "-1"),
        ({"prefix": 3}, "3"),
        ({"per_module": "yes"}, "'yes'"),
        ({"include": [1]}, "[1]"),
        ({"include": 5}, "5"),
    ],
)
def test_constructor_rejects_bad_values(kwargs, shown):
    with pytest.raises(ValueError, match=f"{next(iter(kwargs))}.*{shown}"):
        WeightMonitor(**kwargs)


def test_logs_on_lightnings_step_axis_with_dashboard_keys(tmp_path):
    logger, module, _ = _fit(tmp_path, WeightMonitor(log_every_n_steps=2))
    # Lightning logs the metrics of batch k at step k, every second batch: 1, 3, 5.
    assert [step for step, _ in logger.calls if any(k.startswith("weight_norm/") for k in _)] == [1, 3, 5]
    _, metrics = logger.calls[-1]
    names = [n for n, _ in module.named_parameters()]
    for name in names:
        # AdamW decays every parameter of a group alike: one series per group, not per parameter.
        assert f"weight_norm/{name}" in metrics and f"effective_decay/{name}" not in metrics
    for key in ("group_0_0", "group_0_1", "total"):
        assert f"weight_norm/{key}" in metrics
    assert "effective_decay/group_0_0" in metrics and "effective_decay/total" in metrics
    assert "effective_decay/group_0_1" not in metrics  # a group that does not decay: constantly zero
    assert all(type(v) is float for v in metrics.values())
    # The last logging step happened after the last optimizer step: values are current.
    assert metrics["weight_norm/net.0.weight"] == pytest.approx(module.net[0].weight.norm().item(), rel=1e-6)
    assert metrics["effective_decay/group_0_0"] == pytest.approx(1e-2 * 0.1)
    decay_sq = sum(p.norm().item() ** 2 for p in module.param_groups()[0]["params"])
    assert metrics["weight_norm/group_0_0"] == pytest.approx(math.sqrt(decay_sq), rel=1e-6)
    total_sq = sum(p.norm().item() ** 2 for p in module.parameters())
    assert metrics["weight_norm/total"] == pytest.approx(math.sqrt(total_sq), rel=1e-6)
    # Norm-weighted: the decay group's rate times its share of the squared norm.
    assert metrics["effective_decay/total"] == pytest.approx(1e-3 * decay_sq / total_sq, rel=1e-6)


def test_defaults_to_trainer_cadence(tmp_path):
    logger, _, _ = _fit(tmp_path, WeightMonitor(), log_every_n_steps=3)
    assert [step for step, m in logger.calls if "weight_norm/total" in m] == [2, 5]


def test_gradient_accumulation_logs_after_each_optimizer_step(tmp_path):
    monitor = WeightMonitor(log_every_n_steps=1)
    module = TinyModule()
    seen = []

    class Spy(L.Callback):  # the weights when each window's optimizer step is done
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if (batch_idx + 1) % 3 == 0:
                seen.append(module.net[0].weight.norm().item())

    logger = RecordingLogger()
    fit_trainer = trainer(tmp_path, [MonitorCallback(monitor), Spy()], logger=logger, accumulate_grad_batches=3, max_steps=3)
    fit_trainer.fit(module, loader(n=48))
    assert fit_trainer.global_step == 3
    calls = [(step, m) for step, m in logger.calls if "weight_norm/total" in m]
    assert [step for step, _ in calls] == [0, 1, 2]
    assert [m["weight_norm/net.0.weight"] for _, m in calls] == pytest.approx(seen, rel=1e-6)


class TwoOptimizers(TinyModule):
    """Manual optimization with SGD for the first layer and Adam (coupled decay) for the rest."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        first, second = self.optimizers()
        loss = super().training_step(batch, batch_idx)
        first.zero_grad()
        second.zero_grad()
        self.manual_backward(loss)
        first.step()
        second.step()

    def configure_optimizers(self):
        first = torch.optim.SGD(self.net[0].parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
        rest = [p for n, p in self.named_parameters() if not n.startswith("net.0.")]
        return first, torch.optim.Adam(rest, lr=1e-3, weight_decay=0.01)


def test_manual_optimization_with_two_optimizers(tmp_path):
    module = TwoOptimizers()
    logger, _, fit_trainer = _fit(tmp_path, WeightMonitor(log_every_n_steps=2), module=module, max_steps=8)
    steps = [step for step, m in logger.calls if "weight_norm/total" in m]
    # Two optimizer steps per batch, one step of Lightning's axis: four batches, logged at 1 and 3.
    assert steps == [1, 3] and fit_trainer.global_step == 8
    metrics = logger.calls[-1][1]
    assert metrics["effective_decay/group_0_0"] == pytest.approx(0.1 * 0.01 / (1 - 0.9))
    assert "effective_decay/net.0.weight" not in metrics  # SGD: the same rate for the whole group
    assert "effective_decay/net.3.weight" in metrics  # Adam, coupled: a rate per parameter
    assert {"weight_norm/group_0_0", "weight_norm/group_1_0"} <= set(metrics)
    expected = weight_stats(module, list(fit_trainer.optimizers))
    assert {k for k in expected if k.startswith("weight_norm/")} <= set(metrics)
    for key in set(expected) & set(metrics):
        assert metrics[key] == pytest.approx(expected[key], rel=1e-6)


def test_per_module_include_cap_and_prefix(tmp_path):
    monitor = WeightMonitor(log_every_n_steps=6, per_module=True, include=["net.*"], max_series=1, prefix="train/")
    with pytest.warns(UserWarning, match="max_series=1: 2 smaller series"):
        logger, module, _ = _fit(tmp_path, monitor)
    metrics = logger.calls[-1][1]
    # Three modules own parameters: net.0 (63 elements), net.1 (18), net.3 (10); the cap keeps the largest.
    series = {k for k in metrics if not k.split("/")[-1].startswith(("group_", "total"))}
    assert series == {"train/weight_norm/net.0"}  # AdamW: decay per group only
    layer = module.net[0]
    assert metrics["train/weight_norm/net.0"] == pytest.approx(torch.cat([layer.weight.flatten(), layer.bias]).norm().item(), rel=1e-6)
    assert metrics["train/effective_decay/group_0_0"] == pytest.approx(1e-3)
    assert "train/weight_norm/total" in metrics and "train/weight_norm/group_0_1" in metrics


def test_per_module_decay_where_it_varies(tmp_path):
    logger, module, _ = _fit(tmp_path, WeightMonitor(log_every_n_steps=6, per_module=True), module=TinyModule("adam"))
    metrics = logger.calls[-1][1]
    expected = weight_stats(module, module.trainer.optimizers[0], per_module=True)
    # Adam's coupled decay differs per parameter: net.0 and net.3 hold decayed weights, net.1 (LayerNorm) none.
    assert {k for k in metrics if k.startswith("effective_decay/net.")} == {"effective_decay/net.0", "effective_decay/net.3"}
    for key in ("effective_decay/net.0", "effective_decay/net.3", "weight_norm/net.1"):
        assert metrics[key] == pytest.approx(expected[key], rel=1e-6)


def test_include_selects_by_pattern(tmp_path):
    logger, _, _ = _fit(tmp_path, WeightMonitor(log_every_n_steps=6, include="*.bias"))
    keys = set(logger.calls[-1][1])
    norms = {f"weight_norm/{n}" for n in ("net.0.bias", "net.1.bias", "net.3.bias", "group_0_0", "group_0_1", "total")}
    assert keys == norms | {"effective_decay/group_0_0", "effective_decay/total"}


def test_one_host_transfer_per_logging_step(tmp_path, monkeypatch):
    import sys

    from wd_guard import _plan

    module = TinyModule("adam")
    fit_trainer = trainer(tmp_path, [], max_steps=3)
    fit_trainer.fit(module, loader())
    monitor = WeightMonitor(log_every_n_steps=1)
    monitor.setup(fit_trainer, module)
    reads, transfers = [], []
    for name in ("item", "tolist", "cpu", "__float__", "__int__", "__bool__", "numpy"):
        original = getattr(torch.Tensor, name)

        def recording(self, *args, _original=original, _name=name, **kwargs):
            # Before the transfer, every tensor wd-guard reads lives where the weights live:
            # on an accelerator, each of these calls would wait for the device.
            if not transfers and "wd_guard" in sys._getframe(1).f_code.co_filename:
                reads.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, recording)
    to_host = _plan._to_host

    def transfer(*args):
        result = to_host(*args)
        transfers.append(True)
        return result

    monkeypatch.setattr(_plan, "_to_host", transfer)
    metrics = monitor.compute(fit_trainer, module)
    monkeypatch.undo()
    # The one transfer brings the per-parameter results (squared norms, medians of the state
    # sample) to the host; nothing is read from where the tensors live before it.
    assert transfers == [True] and reads == []
    assert "effective_decay/net.0.weight" in metrics


def _set_step(fit_trainer, step):
    fit_trainer.fit_loop.epoch_loop._batches_that_stepped = step


def test_non_logging_batches_do_no_work(tmp_path, monkeypatch):
    module = TinyModule()
    fit_trainer = trainer(tmp_path, [], max_steps=2, logger=RecordingLogger())
    fit_trainer.fit(module, loader())
    monitor = WeightMonitor(log_every_n_steps=50)
    monitor.setup(fit_trainer, module)
    computed = []
    monkeypatch.setattr(monitor._plan, "compute", lambda: computed.append(_current[0]) or {})
    _current = [0]
    for now in range(2, 49):  # several batches per step, none reaching Lightning's step 49
        _current[0] = now
        _set_step(fit_trainer, now)
        for _ in range(3):
            monitor.on_train_batch_end(fit_trainer, module)
    assert computed == []
    _current[0] = 49
    _set_step(fit_trainer, 49)
    monitor.on_train_batch_end(fit_trainer, module)
    monitor.on_train_batch_end(fit_trainer, module)  # a second batch of the same step: no work
    assert computed == [49]


def test_nothing_is_computed_without_a_logger(tmp_path, monkeypatch):
    from wd_guard import _plan

    monkeypatch.setattr(_plan.StatsPlan, "compute", lambda self: pytest.fail("computed without a logger"))
    monkeypatch.setattr(_plan.StatsPlan, "__init__", lambda self, *a, **k: pytest.fail("planned without a logger"))
    fit_trainer = trainer(tmp_path, [MonitorCallback(WeightMonitor(log_every_n_steps=1))], logger=False)
    fit_trainer.fit(TinyModule(), loader())
    assert fit_trainer.global_step == 6


def test_other_ranks_compute_for_their_callbacks_but_do_not_log(tmp_path, monkeypatch):
    logger = RecordingLogger()
    module = TinyModule()
    fit_trainer = trainer(tmp_path, [], max_steps=2, logger=logger)
    fit_trainer.fit(module, loader())
    monkeypatch.setattr(type(fit_trainer), "is_global_zero", property(lambda self: False))
    monitor = WeightMonitor(log_every_n_steps=1)
    monitor.setup(fit_trainer, module)
    logger.calls.clear()
    _set_step(fit_trainer, 7)
    monitor.on_train_batch_end(fit_trainer, module)
    assert logger.calls == []
    # Every rank's EarlyStopping or ModelCheckpoint must see the same totals.
    total = math.sqrt(sum(p.norm().item() ** 2 for p in module.parameters()))
    assert fit_trainer.callback_metrics["weight_norm/total"].item() == pytest.approx(total, rel=1e-6)


def test_csv_logger_output_has_the_series(tmp_path):
    csv_logger = CSVLogger(tmp_path, name="csv")
    fit_trainer = trainer(tmp_path, [MonitorCallback(WeightMonitor(log_every_n_steps=2))], logger=csv_logger)
    fit_trainer.fit(TinyModule("adam"), loader())
    with open(f"{csv_logger.log_dir}/metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    logged = [r for r in rows if r.get("weight_norm/net.0.weight")]
    assert [int(r["step"]) for r in logged] == [1, 3, 5]
    assert all(float(r["effective_decay/net.0.weight"]) > 0 for r in logged)  # Adam, coupled: per parameter
    assert "effective_decay/net.0.bias" not in rows[0]  # not decayed: no constant-zero series


def test_tensorboard_output_has_the_series(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb_logger = TensorBoardLogger(tmp_path, name="tb")
    fit_trainer = trainer(tmp_path, [MonitorCallback(WeightMonitor(log_every_n_steps=3))], logger=tb_logger)
    fit_trainer.fit(TinyModule("sgd"), loader())
    events = EventAccumulator(tb_logger.log_dir)
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"weight_norm/net.3.weight", "effective_decay/group_0_0", "weight_norm/total"} <= tags
    assert not any(tag.startswith("effective_decay/net.") for tag in tags)  # SGD: one rate per group
    assert [e.step for e in events.Scalars("effective_decay/group_0_0")] == [2, 5]
    assert events.Scalars("effective_decay/group_0_0")[0].value == pytest.approx(1e-2 * 0.1)
