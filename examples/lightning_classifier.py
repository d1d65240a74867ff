"""One classifier trained twice on generated data: with the classic weight-decay mistakes, and fixed.

The mistaken run hands ``self.parameters()`` whole to Adam with ``weight_decay=1e-2``: Adam
applies it as coupled L2 that its adaptive step distorts (WD101), and the token embeddings,
the LayerNorm and every bias are decayed with the weight matrices (WD203, WD202, WD201). The
fixed run gives the same value to AdamW through ``wd_guard.param_groups``. ``WeightDecayGuard``
reports the mistakes when the fit starts and logs every layer's weight norm to each run's CSV
log; validation accuracy comes from torchmetrics. This script prints each layer's first and last
logged norm; ``examples/demo.py`` draws the whole curves.

    python examples/lightning_classifier.py [--steps 600] [--out demo_output/classifier]
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from wd_guard import WeightDecayGuard, param_groups

VOCAB, LENGTH, CLASSES, SIGNALS = 500, 24, 4, 10
DEFAULT_STEPS = int(os.environ.get("WD_GUARD_EXAMPLE_STEPS", "600"))
Series = Dict[str, List[Tuple[int, float]]]


def token_dataset(size: int, seed: int) -> TensorDataset:
    """Sequences of noise tokens with one of ten signal tokens of their class hidden inside."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(CLASSES * SIGNALS, VOCAB, (size, LENGTH), generator=generator)
    labels = torch.randint(0, CLASSES, (size,), generator=generator)
    signal = labels * SIGNALS + torch.randint(0, SIGNALS, (size,), generator=generator)
    tokens[torch.arange(size), torch.randint(0, LENGTH, (size,), generator=generator)] = signal
    return TensorDataset(tokens, labels)


class TokenData(L.LightningDataModule):
    """Generated training and validation sets (no download)."""

    def __init__(self, batch_size: int = 64, train_size: int = 4096) -> None:
        super().__init__()
        self.batch_size, self.train_size = batch_size, train_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(token_dataset(self.train_size, seed=0), batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(token_dataset(1024, seed=1), batch_size=256)


class TokenClassifier(L.LightningModule):
    """Bag of token embeddings, LayerNorm, and a two-layer head."""

    def __init__(self, fixed: bool = False, lr: float = 3e-3, weight_decay: float = 1e-2) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.embedding = nn.Embedding(VOCAB, 32)
        self.norm = nn.LayerNorm(32)
        self.hidden = nn.Linear(32, 64)
        self.head = nn.Linear(64, CLASSES)
        self.val_accuracy = MulticlassAccuracy(num_classes=CLASSES, average="micro")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        features = self.norm(self.embedding(tokens).mean(dim=1))
        return self.head(F.relu(self.hidden(features)))

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        tokens, labels = batch
        loss = F.cross_entropy(self(tokens), labels)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> None:
        tokens, labels = batch
        self.val_accuracy(self(tokens), labels)
        self.log("val_acc", self.val_accuracy)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hparams = self.hparams
        if hparams.fixed:
            # Decoupled decay, on the weight matrices only.
            return torch.optim.AdamW(param_groups(self, weight_decay=hparams.weight_decay), lr=hparams.lr)
        # The mistakes: coupled decay in Adam, applied to every parameter.
        return torch.optim.Adam(self.parameters(), lr=hparams.lr, weight_decay=hparams.weight_decay)


def fit(fixed: bool, steps: int, out: Path) -> Path:
    """Train one run from the same initial weights; return the path of its CSV log."""
    torch.manual_seed(0)
    name = "fixed" if fixed else "mistaken"
    logger = CSVLogger(save_dir=out, name="", version=name)
    trainer = L.Trainer(
        max_steps=steps,
        val_check_interval=max(1, steps // 10),
        check_val_every_n_epoch=None,
        log_every_n_steps=max(1, steps // 60),
        callbacks=[WeightDecayGuard()],
        logger=logger,
        default_root_dir=out,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(TokenClassifier(fixed=fixed), datamodule=TokenData())
    return Path(logger.log_dir) / "metrics.csv"


def read_metrics(path: Path) -> Series:
    """Every column of a CSVLogger ``metrics.csv`` as ``(step, value)`` pairs, empty cells skipped."""
    series: Series = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            step = int(row["step"])
            for key, value in row.items():
                if key not in ("step", "epoch") and value not in ("", None):
                    series.setdefault(key, []).append((step, float(value)))
    return series


def describe(name: str, series: Series) -> str:
    """Final validation accuracy and each weight norm's first and last logged value."""
    lines = [f"{name}: validation accuracy {series['val_acc'][-1][1]:.3f}"]
    parameters = {f"weight_norm/{name}" for name, _ in TokenClassifier().named_parameters()}
    for key in sorted(parameters & set(series)):
        first, last = series[key][0][1], series[key][-1][1]
        lines.append(f"    {key:<34} {first:8.2f} -> {last:8.2f}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="training steps per run")
    parser.add_argument("--out", type=Path, default=Path("demo_output") / "classifier", help="where the CSV logs go")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # a model this small runs fastest on one thread
    for fixed in (False, True):
        log = fit(fixed, args.steps, args.out)
        print(describe("fixed" if fixed else "mistaken", read_metrics(log)))


if __name__ == "__main__":
    main()
