"""A LightningModule whose configure_optimizers couples decay and decays everything."""

import lightning as L
import torch
import wd_guard
from torch import nn


class LitModel(L.LightningModule):
    def __init__(self, lr: float = 1e-3, weight_decay: float = 1e-4):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 2))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(wd_guard.param_groups(self, weight_decay=self.hparams.weight_decay), lr=self.hparams.lr)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)
        return [optimizer], [scheduler]


class LitHead(L.LightningModule):
    def configure_optimizers(self):
        return {
            "optimizer": torch.optim.NAdam(wd_guard.param_groups(self.head, weight_decay=1e-2), lr=2e-3, decoupled_weight_decay=True),
            "monitor": "val_loss",
        }
