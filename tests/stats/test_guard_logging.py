"""End to end through WeightDecayGuard: one fit, CSV and TensorBoard loggers side by side."""

from __future__ import annotations

import csv
import warnings

import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")

from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger  # noqa: E402
from stats_helpers import TinyModule, loader, trainer  # noqa: E402

from wd_guard import WeightDecayGuard, WeightDecayWarning, weight_stats  # noqa: E402


def test_guard_logs_current_stats_to_every_logger(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    loggers = [CSVLogger(tmp_path, name="csv"), TensorBoardLogger(tmp_path, name="tb")]
    module = TinyModule("adam")  # coupled decay: effective decay comes from the sampled second moments
    fit = trainer(tmp_path, [WeightDecayGuard(log_every_n_steps=2)], logger=loggers, accumulate_grad_batches=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeightDecayWarning)  # WD101 on Adam is expected here
        fit.fit(module, loader(n=64))
    assert fit.global_step == 6
    final = weight_stats(module, fit.optimizers[0])

    with open(f"{loggers[0].log_dir}/metrics.csv") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("weight_norm/net.0.weight")]
    assert [int(r["step"]) for r in rows] == [1, 3, 5]
    logged = {key: float(value) for key, value in rows[-1].items() if value and key != "step"}
    for key, value in final.items():
        # Norms of every parameter; Adam's coupled decay for the decayed weights only.
        if key.startswith("weight_norm/") or key.endswith("weight") and "net.1." not in key:
            assert logged[key] == pytest.approx(value, rel=1e-6), key
        else:
            assert key not in logged, key
    assert float(rows[-1]["weight_norm/total"]) > 0 and float(rows[-1]["effective_decay/group_0_0"]) > 0

    events = EventAccumulator(loggers[1].log_dir)
    events.Reload()
    scalars = events.Scalars("effective_decay/net.0.weight")
    assert [e.step for e in scalars] == [1, 3, 5]
    assert scalars[-1].value == pytest.approx(final["effective_decay/net.0.weight"], rel=1e-6)
    assert {"weight_norm/group_0_1", "effective_decay/total"} <= set(events.Tags()["scalars"])
