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


def test_logs_every_n_optimizer_steps_with_all_keys(tmp_path):
    logger, module, _ = _fit(tmp_path, WeightMonitor(log_every_n_steps=2))
    assert [step for step, _ in logger.calls if any(k.startswith("weight_norm/") for k in _)] == [2, 4, 6]
    _, metrics = logger.calls[-1]
    names = [n for n, _ in module.named_parameters()]
    for name in names:
        assert f"weight_norm/{name}" in metrics and f"effective_decay/{name}" in metrics
    for key in ("group_0_0", "group_0_1", "total"):
        assert f"weight_norm/{key}" in metrics and f"effective_decay/{key}" in metrics
    assert all(type(v) is float for v in metrics.values())
    # The last logging step happened after the last optimizer step: values are current.
    assert metrics["weight_norm/net.0.weight"] == pytest.approx(module.net[0].weight.norm().item(), rel=1e-6)
    assert metrics["effective_decay/net.0.weight"] == pytest.approx(1e-2 * 0.1)
    assert metrics["effective_decay/net.0.bias"] == 0.0
    decay_sq = sum(p.norm().item() ** 2 for p in module.param_groups()[0]["params"])
    assert metrics["weight_norm/group_0_0"] == pytest.approx(math.sqrt(decay_sq), rel=1e-6)
    total_sq = sum(p.norm().item() ** 2 for p in module.parameters())
    assert metrics["weight_norm/total"] == pytest.approx(math.sqrt(total_sq), rel=1e-6)
    # Norm-weighted: the decay group's rate times its share of the squared norm.
    assert metrics["effective_decay/total"] == pytest.approx(1e-3 * decay_sq / total_sq, rel=1e-6)


def test_defaults_to_trainer_cadence(tmp_path):
    logger, _, _ = _fit(tmp_path, WeightMonitor(), log_every_n_steps=3)
    assert [step for step, m in logger.calls if "weight_norm/total" in m] == [3, 6]


def test_gradient_accumulation_logs_on_optimizer_steps(tmp_path):
    logger, _, fit_trainer = _fit(tmp_path, WeightMonitor(log_every_n_steps=1), accumulate_grad_batches=3, max_steps=3)
    assert fit_trainer.global_step == 3
    assert [step for step, m in logger.calls if "weight_norm/total" in m] == [1, 2, 3]


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
    logger, _, fit_trainer = _fit(tmp_path, WeightMonitor(log_every_n_steps=4), module=module, max_steps=8)
    steps = [step for step, m in logger.calls if "weight_norm/total" in m]
    assert steps == [4, 8] and fit_trainer.global_step == 8
    metrics = logger.calls[-1][1]
    assert metrics["effective_decay/net.0.weight"] == pytest.approx(0.1 * 0.01 / (1 - 0.9))
    assert {"weight_norm/group_0_0", "weight_norm/group_1_0"} <= set(metrics)
    expected = weight_stats(module, list(fit_trainer.optimizers))
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-6)


def test_per_module_include_cap_and_prefix(tmp_path):
    monitor = WeightMonitor(log_every_n_steps=6, per_module=True, include=["net.*"], max_series=1, prefix="train/")
    with pytest.warns(UserWarning, match="max_series=1: 2 smaller series"):
        logger, module, _ = _fit(tmp_path, monitor)
    metrics = logger.calls[-1][1]
    # Three modules own parameters: net.0 (63 elements), net.1 (18), net.3 (10); the cap keeps the largest.
    series = {k for k in metrics if not k.split("/")[-1].startswith(("group_", "total"))}
    assert series == {"train/weight_norm/net.0", "train/effective_decay/net.0"}
    layer = module.net[0]
    assert metrics["train/weight_norm/net.0"] == pytest.approx(torch.cat([layer.weight.flatten(), layer.bias]).norm().item(), rel=1e-6)
    w2, b2 = layer.weight.norm().item() ** 2, layer.bias.norm().item() ** 2
    assert metrics["train/effective_decay/net.0"] == pytest.approx(1e-3 * w2 / (w2 + b2), rel=1e-6)
    assert "train/weight_norm/total" in metrics and "train/weight_norm/group_0_1" in metrics


def test_include_selects_by_pattern(tmp_path):
    logger, _, _ = _fit(tmp_path, WeightMonitor(log_every_n_steps=6, include="*.bias"))
    keys = {k.split("/", 1)[1] for k in logger.calls[-1][1]}
    assert keys == {"net.0.bias", "net.1.bias", "net.3.bias", "group_0_0", "group_0_1", "total"}


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


def test_non_logging_batches_do_no_work(tmp_path, monkeypatch):
    module = TinyModule()
    fit_trainer = trainer(tmp_path, [], max_steps=2)
    fit_trainer.fit(module, loader())
    monitor = WeightMonitor(log_every_n_steps=50)
    monitor.setup(fit_trainer, module)
    step = {"now": fit_trainer.global_step}
    monkeypatch.setattr(type(fit_trainer), "global_step", property(lambda self: step["now"]))
    computed = []
    monkeypatch.setattr(monitor._plan, "compute", lambda: computed.append(step["now"]) or {})
    for now in range(step["now"], 50):  # several batches per step, none reaching step 50
        step["now"] = now
        for _ in range(3):
            monitor.on_train_batch_end(fit_trainer, module)
    assert computed == []
    step["now"] = 50
    monitor.on_train_batch_end(fit_trainer, module)
    monitor.on_train_batch_end(fit_trainer, module)  # a second batch of the same step: no work
    assert computed == [50]


def test_other_ranks_neither_compute_nor_log(tmp_path, monkeypatch):
    logger = RecordingLogger()
    module = TinyModule()
    fit_trainer = trainer(tmp_path, [], max_steps=2, logger=logger)
    fit_trainer.fit(module, loader())
    monkeypatch.setattr(type(fit_trainer), "is_global_zero", property(lambda self: False))
    monitor = WeightMonitor(log_every_n_steps=1)
    monitor.setup(fit_trainer, module)
    monkeypatch.setattr(monitor._plan, "compute", lambda: pytest.fail("a DDP rank other than zero computed"))
    logger.calls.clear()
    fit_trainer.fit_loop.epoch_loop.automatic_optimization.optim_progress.optimizer.step.total.completed += 1
    assert fit_trainer.global_step == 3  # a new logging step for rank zero
    monitor.on_train_batch_end(fit_trainer, module)
    assert logger.calls == []


def test_csv_logger_output_has_the_series(tmp_path):
    csv_logger = CSVLogger(tmp_path, name="csv")
    fit_trainer = trainer(tmp_path, [MonitorCallback(WeightMonitor(log_every_n_steps=2))], logger=csv_logger)
    fit_trainer.fit(TinyModule("adam"), loader())
    with open(f"{csv_logger.log_dir}/metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    logged = [r for r in rows if r.get("weight_norm/net.0.weight")]
    assert [int(r["step"]) for r in logged] == [2, 4, 6]
    assert all(float(r["effective_decay/net.0.weight"]) > 0 for r in logged)
    assert all(float(r["effective_decay/net.0.bias"]) == 0.0 for r in logged)


def test_tensorboard_output_has_the_series(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb_logger = TensorBoardLogger(tmp_path, name="tb")
    fit_trainer = trainer(tmp_path, [MonitorCallback(WeightMonitor(log_every_n_steps=3))], logger=tb_logger)
    fit_trainer.fit(TinyModule("sgd"), loader())
    events = EventAccumulator(tb_logger.log_dir)
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"weight_norm/net.3.weight", "effective_decay/net.3.weight", "weight_norm/total"} <= tags
    assert [e.step for e in events.Scalars("effective_decay/net.3.weight")] == [3, 6]
    assert events.Scalars("effective_decay/net.3.weight")[0].value == pytest.approx(1e-2 * 0.1)
