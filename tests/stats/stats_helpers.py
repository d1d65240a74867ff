"""Shared pieces for the stats tests: a tiny LightningModule, data, and a callback that drives the monitor."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning")

from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from wd_guard.monitor import WeightMonitor  # noqa: E402


class MonitorCallback(L.Callback):
    """Drives a WeightMonitor the way the guard callback does (setup at train start, every batch end)."""

    def __init__(self, monitor: WeightMonitor) -> None:
        self.monitor = monitor

    def on_train_start(self, trainer, pl_module):
        self.monitor.setup(trainer, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.monitor.on_train_batch_end(trainer, pl_module)


class TinyModule(L.LightningModule):
    """A two-layer regressor with a LayerNorm, decay and no-decay groups, built by ``optimizer``."""

    def __init__(self, optimizer: str = "adamw", lr: float = 1e-2, weight_decay: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 9), nn.LayerNorm(9), nn.Tanh(), nn.Linear(9, 1))
        self.kind, self.lr, self.wd = optimizer, lr, weight_decay

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def param_groups(self):
        decay = [p for n, p in self.named_parameters() if n.endswith("weight") and p.dim() > 1]
        other = [p for n, p in self.named_parameters() if not (n.endswith("weight") and p.dim() > 1)]
        return [{"params": decay, "weight_decay": self.wd}, {"params": other, "weight_decay": 0.0}]

    def configure_optimizers(self):
        cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}[self.kind]
        return cls(self.param_groups(), lr=self.lr)


def loader(n: int = 32, batch_size: int = 4, seed: int = 0) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=generator)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=batch_size)


def trainer(tmp_path, callbacks, **kwargs) -> "L.Trainer":
    options = dict(
        default_root_dir=tmp_path,
        accelerator="cpu",
        devices=1,
        max_steps=6,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
        log_every_n_steps=1,
    )
    options.update(kwargs)
    return L.Trainer(callbacks=callbacks, **options)
