"""A logging step inside real Lightning runs: one step axis, other callbacks, NaN weights, missing state, WD101's number."""

from __future__ import annotations

import csv
import math
import warnings

import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")

from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402
from stats_helpers import TinyModule, loader, trainer  # noqa: E402
from torch import nn  # noqa: E402

from wd_guard import WeightDecayGuard, WeightDecayWarning, audit, weight_stats  # noqa: E402
from wd_guard._decay import decay_per_step  # noqa: E402
from wd_guard.optimizers import fact_for_class  # noqa: E402


class LoggedLoss(TinyModule):
    """Logs its loss with ``self.log`` on every step, as most modules do."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        self.log("loss", loss)
        return loss


class TwoOptimizersLoggedLoss(LoggedLoss):
    """Manual optimization: SGD steps the first layer, Adam the rest, both on every batch."""

    def __init__(self):
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        for optimizer in self.optimizers():
            optimizer.zero_grad()
        self.manual_backward(loss)
        for optimizer in self.optimizers():
            optimizer.step()

    def configure_optimizers(self):
        rest = [p for n, p in self.named_parameters() if not n.startswith("net.0.")]
        return torch.optim.SGD(self.net[0].parameters(), lr=0.1, weight_decay=0.01), torch.optim.AdamW(rest, lr=1e-3)


def _csv_fit(tmp_path, module, callbacks, **kwargs):
    csv_logger = CSVLogger(tmp_path, name="csv")
    fit = trainer(tmp_path, callbacks, logger=csv_logger, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightDecayWarning)
        fit.fit(module, loader(n=64))
    with open(f"{csv_logger.log_dir}/metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    return fit, rows


def _steps(rows, column):
    return sorted({int(r["step"]) for r in rows if r.get(column)})


@pytest.mark.parametrize(
    "module, kwargs",
    [
        (LoggedLoss, {"accumulate_grad_batches": 2, "max_steps": 8}),
        (TwoOptimizersLoggedLoss, {"max_steps": 16}),
    ],
    ids=["automatic-with-accumulation", "manual-two-optimizers"],
)
def test_weights_loss_and_learning_rate_share_one_step_axis_in_csv(tmp_path, module, kwargs):
    callbacks = [WeightDecayGuard(), LearningRateMonitor(logging_interval="step")]
    fit, rows = _csv_fit(tmp_path, module(), callbacks, log_every_n_steps=3, **kwargs)
    assert fit.global_step == (8 if module is LoggedLoss else 16)
    loss_steps = _steps(rows, "loss")
    assert loss_steps == [2, 5]  # Lightning's own axis: 8 windows (or batches), every third
    assert _steps(rows, "weight_norm/total") == loss_steps
    assert _steps(rows, "weight_norm/net.0.weight") == loss_steps
    lr_column = next(c for c in rows[0] if c.startswith("lr-"))
    assert set(loss_steps) <= set(_steps(rows, lr_column))


def test_totals_reach_early_stopping_and_model_checkpoint(tmp_path):
    # Without the totals in callback_metrics both callbacks stop the fit with an error.
    stop = EarlyStopping(monitor="weight_norm/total", mode="min", stopping_threshold=1e6, check_on_train_epoch_end=True)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="weight_norm/total", mode="min")
    module = TinyModule()
    fit = trainer(tmp_path, [WeightDecayGuard(), stop, checkpoint], logger=CSVLogger(tmp_path), max_steps=-1, max_epochs=3, enable_checkpointing=True)
    fit.fit(module, loader())
    total = math.sqrt(sum(p.norm().item() ** 2 for p in module.parameters()))
    assert fit.current_epoch == 1 and stop.stopped_epoch == 0  # the threshold was met at the first epoch's end
    assert fit.callback_metrics["weight_norm/total"].item() == pytest.approx(total, rel=1e-6)
    assert checkpoint.best_model_score.item() == pytest.approx(total, rel=1e-6)


class Diverging(TinyModule):
    """Training that turns the first layer's weights into NaN after a few steps."""

    def on_train_batch_start(self, batch, batch_idx):
        if batch_idx == 3:
            with torch.no_grad():
                self.net[0].weight[0, 0] = float("nan")


def test_nan_weights_are_named_once(tmp_path):
    fit = trainer(tmp_path, [WeightDecayGuard()], logger=CSVLogger(tmp_path), max_steps=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.fit(Diverging(), loader())
    nan_warnings = [str(w.message) for w in caught if "NaN" in str(w.message)]
    assert len(nan_warnings) == 1, nan_warnings
    assert "net.0.weight" in nan_warnings[0] and "step 3" in nan_warnings[0]


def test_totals_leave_out_parameters_without_state_yet():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.1)  # noqa: WD101 (coupled decay measured on purpose)
    model[0](torch.randn(3, 4)).sum().backward()  # the second layer gets no gradient: no state
    optimizer.step()
    from wd_guard._plan import StatsPlan

    stats = StatsPlan(model, [optimizer], totals=True).compute()
    assert "effective_decay/1.weight" not in stats
    w2, b2 = model[0].weight.norm().item() ** 2, model[0].bias.norm().item() ** 2
    expected = (stats["effective_decay/0.weight"] * w2 + stats["effective_decay/0.bias"] * b2) / (w2 + b2)
    for key in ("effective_decay/group_0_0", "effective_decay/total"):
        assert stats[key] == pytest.approx(expected, rel=1e-6)


def test_wd101_says_once_which_adamw_decay_matches(tmp_path):
    module = TinyModule("adam", lr=1e-2, weight_decay=0.1)
    fit = trainer(tmp_path, [WeightDecayGuard(log_every_n_steps=2)], logger=CSVLogger(tmp_path), max_steps=6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit.fit(module, loader())
    hints = [str(w.message) for w in caught if "AdamW(lr=" in str(w.message)]
    assert len(hints) == 1, hints
    assert hints[0].startswith("wd-guard weight stats: WD101 optimizer 0 (Adam), group 0: at step 1")
    # The same sample as the series: the per-parameter values of the decayed group at that step
    # are not kept, so check the number against the one the message states.
    rate = float(hints[0].split("removes ")[1].split(" ")[0])
    wd = float(hints[0].split("weight_decay=")[1].split(")")[0])
    assert wd == pytest.approx(rate / 1e-2, rel=1e-2)
    assert rate > 0


def test_wd101_number_is_the_median_of_the_group():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 40), nn.Linear(40, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.1)  # noqa: WD101 (coupled decay measured on purpose)
    model(torch.randn(8, 40)).sum().backward()
    optimizer.step()
    from wd_guard._plan import StatsPlan

    plan = StatsPlan(model, [optimizer])
    stats = plan.compute()
    # Element-weighted median of the parameters' values: 0.weight holds 1600 of 1763 elements.
    assert plan.varying_medians() == {(0, 0): stats["effective_decay/0.weight"]}


def test_wd302_judges_the_steady_state_decay_with_momentum():
    model = nn.Sequential(nn.Linear(4, 4, bias=False))
    sgd = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.05)
    fact = fact_for_class(torch.optim.SGD)
    assert decay_per_step(fact, sgd.param_groups[0], sgd) == pytest.approx(0.25)
    assert weight_stats(model, sgd)["effective_decay/0.weight"] == pytest.approx(0.25)
    assert [f.code for f in audit(model, sgd)] == ["WD302"]
    # Equal steady-state decay, equal verdicts: AdamW removing 25% per step as well.
    assert [f.code for f in audit(model, torch.optim.AdamW(model.parameters(), lr=0.5, weight_decay=0.5))] == ["WD302"]
    assert audit(model, torch.optim.SGD(model.parameters(), lr=0.5, weight_decay=0.05)) == []


def test_wd301_counts_momentum():
    model = nn.Sequential(nn.Linear(4, 4, bias=False))
    plain = torch.optim.SGD(model.parameters(), lr=0.01, weight_decay=2e-4)
    with_momentum = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=2e-4)
    # 1000 steps of 2e-6 shrink weights by 0.2%: negligible; momentum makes it 2%.
    assert [f.code for f in audit(model, plain, total_steps=1000)] == ["WD301"]
    assert audit(model, with_momentum, total_steps=1000) == []
    assert decay_per_step(fact_for_class(torch.optim.Adam), torch.optim.Adam(model.parameters(), weight_decay=0.1).param_groups[0]) is None  # noqa: WD101


class SmallConvNet(L.LightningModule):
    """Convolutions with BatchNorm and a head, trained with decay and no-decay AdamW groups."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))

    def training_step(self, batch, batch_idx):
        return self.net(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        decay = [p for p in self.parameters() if p.dim() > 1]
        rest = [p for p in self.parameters() if p.dim() <= 1]
        return torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}], lr=1e-3)


def test_dashboard_has_no_constant_series(tmp_path):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(16, 3, 8, 8)), batch_size=4)
    module = SmallConvNet()
    module.net(torch.randn(1, 3, 8, 8))  # materialise the lazy head
    csv_logger = CSVLogger(tmp_path, name="csv")
    fit = trainer(tmp_path, [WeightDecayGuard(dataflow=False)], logger=csv_logger, max_steps=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightDecayWarning)
        fit.fit(module, data)
    with open(f"{csv_logger.log_dir}/metrics.csv") as handle:
        columns = [c for c in next(csv.reader(handle)) if "/" in c]
    params = [n for n, _ in module.named_parameters()]
    assert {f"weight_norm/{n}" for n in params} <= set(columns)
    decay_columns = sorted(c for c in columns if c.startswith("effective_decay/"))
    assert decay_columns == ["effective_decay/group_0_0", "effective_decay/total"]
    assert len(columns) == len(params) + 3 + 2  # a norm per parameter, per group and in total; two decays
