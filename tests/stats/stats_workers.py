"""Worker processes for the distributed stats tests (gloo on CPU): DDP, FSDP2 (DTensor), FSDP1, Lightning DDP."""

from __future__ import annotations

import json
import os

import torch
import torch.distributed as dist
from torch import nn

from wd_guard.stats import weight_stats

LR, WD = 1e-2, 0.1
STEPS = 3


def build_model() -> nn.Module:
    """Uneven sizes on purpose: 7 rows and a 3-element bias split unevenly over two ranks."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))


def batch(rank: int, step: int):
    generator = torch.Generator().manual_seed(100 * step + rank)
    x = torch.randn(4, 5, generator=generator)
    return x, x[:, :3].cos()


def optimizers(params, kind: str):
    params = list(params)
    if kind == "adam":
        return torch.optim.Adam(params, lr=LR, weight_decay=WD)  # noqa: WD101 (coupled decay on purpose)
    return torch.optim.AdamW(params, lr=LR, weight_decay=WD)


def train(model: nn.Module, optimizer, rank: int) -> None:
    for step in range(STEPS):
        optimizer.zero_grad()
        x, y = batch(rank, step)
        nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()


def reference(kind: str) -> dict:
    """Unsharded run on the union of both ranks' batches: the same gradients as DDP's average."""
    model = build_model()
    optimizer = optimizers(model.parameters(), kind)
    for step in range(STEPS):
        optimizer.zero_grad()
        loss = sum(nn.functional.mse_loss(model(batch(r, step)[0]), batch(r, step)[1]) for r in range(2)) / 2
        loss.backward()
        optimizer.step()
    return weight_stats(model, optimizer)


def _init(rank: int, world: int, port: int) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)


def _dump(out_dir: str, rank: int, payload: dict) -> None:
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as handle:
        json.dump(payload, handle)


def ddp_case(rank: int, kind: str) -> dict:
    model = nn.parallel.DistributedDataParallel(build_model())
    optimizer = optimizers(model.parameters(), kind)
    train(model, optimizer, rank)
    return {"stats": weight_stats(model.module, optimizer), "wrapped": weight_stats(model, optimizer)}


def _exact_adam(state) -> float:
    """Adam's effective decay from the full (gathered) state, exact lower median of v."""
    v = state["exp_avg_sq"].full_tensor().flatten()
    v_hat = v.sort().values[(v.numel() - 1) // 2] / (1 - 0.999 ** float(state["step"]))
    return float(LR * WD / (v_hat.sqrt() + 1e-8))


def fsdp2_case(rank: int, world: int) -> dict:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    model = build_model()
    fully_shard(model, mesh=init_device_mesh("cpu", (world,)))
    optimizer = optimizers(model.parameters(), "adam")
    train(model, optimizer, rank)
    return {
        "stats": weight_stats(model, optimizer),
        "full_norms": {n: float(p.full_tensor().norm()) for n, p in model.named_parameters()},
        "exact_decay": {n: _exact_adam(optimizer.state[p]) for n, p in model.named_parameters()},
        "local_shapes": {n: list(p.to_local().shape) for n, p in model.named_parameters()},
        "monitor": monitor_case(model, optimizer, rank),
    }


class _Recorder:
    """A logger that records every call on whatever rank it is called (no rank-zero guard)."""

    def __init__(self) -> None:
        self.calls: list = []

    def log_metrics(self, metrics, step=None) -> None:
        self.calls.append([step, metrics])


class _TrainerState:
    """The Trainer attributes the monitor reads, for driving it outside a fit."""

    def __init__(self, optimizer, rank: int) -> None:
        self.optimizers, self.loggers = [optimizer], [_Recorder()]
        self.is_global_zero, self.global_step, self.log_every_n_steps = rank == 0, 0, 1


def monitor_case(model: nn.Module, optimizer, rank: int) -> list:
    """Under FSDP2 every rank computes (the norms need a collective); only rank zero logs."""
    from wd_guard.monitor import WeightMonitor

    trainer = _TrainerState(optimizer, rank)
    monitor = WeightMonitor()
    monitor.setup(trainer, model)
    for step in (1, 2):
        trainer.global_step = step
        monitor.on_train_batch_end(trainer, model)
    return trainer.loggers[0].calls


def fsdp1_case(rank: int, use_orig_params: bool) -> dict:
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    model = FSDP(build_model(), device_id=torch.device("cpu"), use_orig_params=use_orig_params)
    optimizer = optimizers(model.parameters(), "adam")
    train(model, optimizer, rank)
    stats = weight_stats(model, optimizer)
    with FSDP.summon_full_params(model):
        full = {n.replace("_fsdp_wrapped_module.", ""): float(p.norm()) for n, p in model.named_parameters()}
    return {"stats": stats, "full_norms": full}


def lightning_ddp_case(rank: int, out_dir: str) -> dict:
    """A real Lightning fit with the DDP strategy, attached to this process group."""
    import lightning as L
    from lightning.pytorch.loggers import Logger
    from stats_helpers import MonitorCallback, TinyModule, loader, trainer

    from wd_guard.monitor import WeightMonitor

    class RecordingLogger(Logger):
        name, version = "recording", 0

        def __init__(self) -> None:
            super().__init__()
            self.calls: list = []

        def log_hyperparams(self, *args, **kwargs) -> None:
            pass

        def log_metrics(self, metrics, step=None) -> None:  # deliberately not rank-zero-only
            self.calls.append([step, dict(metrics)])

    logger = RecordingLogger()
    module = TinyModule("adam")
    fit = trainer(out_dir, [MonitorCallback(WeightMonitor(log_every_n_steps=2))], logger=logger, strategy="ddp", devices=2, max_steps=4)
    fit.fit(module, loader(seed=rank))
    assert isinstance(fit.strategy, L.pytorch.strategies.DDPStrategy)
    calls = [c for c in logger.calls if any(k.startswith("weight_norm/") for k in c[1])]
    total = fit.callback_metrics["weight_norm/total"].item()
    return {"calls": calls, "final": weight_stats(module, fit.optimizers[0]), "callback_total": total}


def all_cases(rank: int, world: int, port: int, out_dir: str) -> None:
    """Every distributed case in one process group (spawning processes is the slow part)."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank), NODE_RANK="0")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        payload = {
            "ddp_adam": ddp_case(rank, "adam"),
            "ddp_adamw": ddp_case(rank, "adamw"),
            "fsdp2": fsdp2_case(rank, world),
            "fsdp1_orig": fsdp1_case(rank, True),
            "fsdp1_flat": fsdp1_case(rank, False),
        }
        payload["lightning_ddp"] = lightning_ddp_case(rank, out_dir)  # last: Lightning tears the group down
        _dump(out_dir, rank, payload)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
