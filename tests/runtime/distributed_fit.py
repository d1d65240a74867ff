"""A two-process CPU fit (gloo) with WeightDecayGuard; each rank writes what it saw to OUT/rank<N>.json.

Usage: python distributed_fit.py OUT {ddp,ddp-strict-error,fsdp2}

Lightning re-launches this script once per extra rank, so it must be runnable as a file.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings

import lightning.pytorch as pl
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from runtime_models import GuardedModule, cnn, trainer_kwargs  # noqa: E402

from wd_guard import WeightDecayGuard  # noqa: E402
from wd_guard.callback import WeightDecayGuardError  # noqa: E402
from wd_guard.findings import WeightDecayWarning  # noqa: E402


def blanket_adamw(net: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(net.parameters(), lr=0.2, weight_decay=0.05)


def blanket_adam(net: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(net.parameters(), weight_decay=0.1)


class Sharded(GuardedModule):
    """An MLP with BatchNorm and LayerNorm, sharded with FSDP2's fully_shard in configure_model."""

    def __init__(self) -> None:
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(4, 8, bias=False), nn.BatchNorm1d(8), nn.Linear(8, 8), nn.LayerNorm(8), nn.Linear(8, 2))
        super().__init__(net, blanket_adamw)

    def configure_model(self) -> None:
        from torch.distributed.fsdp import fully_shard

        mesh = self.device_mesh["data_parallel"] if "data_parallel" in (self.device_mesh.mesh_dim_names or ()) else None
        for layer in self.net:
            if any(True for _ in layer.parameters()):
                fully_shard(layer, mesh=mesh)
        fully_shard(self.net, mesh=mesh)


def main(out: str, mode: str) -> None:
    if mode == "fsdp2":
        from lightning.pytorch.strategies import ModelParallelStrategy

        module: pl.LightningModule = Sharded()
        strategy = ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1)
    else:
        module = GuardedModule(cnn(), blanket_adam if mode == "ddp-strict-error" else blanket_adamw)
        strategy = "ddp"
    # Weight logging on every step: under FSDP2 it needs a collective on every rank.
    guard = WeightDecayGuard(strict=mode == "ddp-strict-error", log_every_n_steps=1)
    trainer = pl.Trainer(callbacks=[guard], **trainer_kwargs(out, devices=2, strategy=strategy))
    error = None
    logged: list = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("wd_guard").addHandler(handler)
    logging.getLogger("wd_guard").setLevel(logging.INFO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            trainer.fit(module)
        except WeightDecayGuardError as exc:
            error = str(exc)
    record = {
        "rank": trainer.global_rank,
        "steps": trainer.global_step,
        "findings": [[f.code, f.severity, list(f.params), f.optimizer, f.group] for f in guard.findings],
        "warnings": [str(w.message) for w in caught if issubclass(w.category, WeightDecayWarning)],
        "logged": [text.split()[0] for text in logged if text.startswith("WD")],
        "error": error,
        "param_types": sorted({type(p).__name__ for p in module.parameters()}),
    }
    with open(os.path.join(out, f"rank{trainer.global_rank}.json"), "w") as handle:
        json.dump(record, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
