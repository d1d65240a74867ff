"""What weight-stats logging costs, as ratios against baselines measured in the same run.

For GPT-2 small and ResNet-50 parameter sets (models written here, nothing downloaded):

- one read of the parameters where they live (the faster of a ``sum`` per tensor and
  ``torch._foreach_norm`` with ``ord=1``): the baseline of a logging step;
- a logging step of the callback (norms, effective decay, one host transfer,
  ``logger.log_metrics``) with AdamW, with Adam decaying the weight matrices (coupled decay:
  the median of a fixed sample of the state per tensor), and with Adam decaying every tensor;
- a non-logging step, in microseconds;
- a whole Lightning fit at the Trainer's default cadence (a logging step every 50 steps) on
  ResNet-50 with a small batch, two ways: the share of a guarded fit's time spent inside the
  guard's hooks and in the logger's writes (both timed within the same fit, so load changes
  both alike), and a fit with ``WeightDecayGuard`` against a separate fit without it;
- on CUDA (``--device cuda``), the host synchronisations of one logging step, counted with
  ``torch.cuda.set_sync_debug_mode``.

Functions take turns over several rounds and each ratio is the median of the round-by-round
ratios, so background load on a shared machine disturbs them less. ``--threads 1 2`` runs
each thread count in turn (CPU); ``--quick`` uses fewer rounds.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import tempfile
import time
import warnings
from typing import Callable, Dict, List, NamedTuple, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

import lightning as L
from lightning.pytorch.loggers import CSVLogger

from wd_guard import WeightDecayGuard
from wd_guard.monitor import WeightMonitor

# ---------------------------------------------------------------- models


class GPTBlock(nn.Module):
    def __init__(self, d: int = 768, heads: int = 12) -> None:
        super().__init__()
        self.heads = heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in self.attn(self.ln_1(x)).split(d, -1))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln_2(x))))


class GPT2Small(nn.Module):
    """GPT-2 small's parameter set (124M, 148 tensors, tied output embedding)."""

    def __init__(self) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(50257, 768), nn.Embedding(1024, 768)
        self.blocks = nn.ModuleList(GPTBlock() for _ in range(12))
        self.ln_f = nn.LayerNorm(768)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1], device=tokens.device))
        for block in self.blocks:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.T
        return F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten())


class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * 4
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet50(nn.Module):
    """ResNet-50's parameter set (25.6M, 161 tensors)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64)
        layers, cin = [], 64
        for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(blocks):
                layers.append(Bottleneck(cin, width, stride if i == 0 else 1))
                cin = width * 4
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(2048, 1000)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(images))), 3, 2, 1)
        x = self.layers(x).mean((2, 3))
        return F.cross_entropy(self.fc(x), torch.zeros(len(images), dtype=torch.long, device=images.device))


SETS: Dict[str, Tuple[Callable[[], nn.Module], Callable[[torch.device], torch.Tensor]]] = {
    "GPT-2 small": (GPT2Small, lambda d: torch.randint(0, 50257, (1, 64), device=d)),
    "ResNet-50": (ResNet50, lambda d: torch.randn(8, 3, 112, 112, device=d)),
}

# ---------------------------------------------------------------- timing


def interleaved(fns: Dict[str, Callable[[], object]], repeat: int, sync: Callable[[], None]) -> Dict[str, List[float]]:
    """Wall times of each function in seconds, over ``repeat`` rounds in which they take turns."""
    for fn in fns.values():
        fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def paired_ratio(times: Dict[str, List[float]], name: str, base: str) -> float:
    """Median over rounds of ``name``'s time divided by ``base``'s time in the same round."""
    return statistics.median(a / b for a, b in zip(times[name], times[base]))


def param_groups(model: nn.Module, wd: float) -> List[dict]:
    decay = [p for p in model.parameters() if p.dim() > 1]
    rest = [p for p in model.parameters() if p.dim() <= 1]
    return [{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}]


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    model(batch).backward()
    optimizer.step()


def logging_step(model: nn.Module, optimizer: torch.optim.Optimizer, root: str) -> Tuple[Callable[[], None], Callable[[], None]]:
    """(one logging step, one non-logging step) of a WeightMonitor set up on a real Trainer."""
    trainer = L.Trainer(logger=CSVLogger(root), accelerator="cpu", devices=1, enable_progress_bar=False)
    trainer.optimizers = [optimizer]
    monitor = WeightMonitor(log_every_n_steps=50)
    monitor.setup(trainer, model)

    def log() -> None:  # what a logging step does after the step check
        metrics = monitor.compute(trainer, model)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    return log, lambda: monitor.on_train_batch_end(trainer, model)


def per_call(fn: Callable[[], None], calls: int = 20000) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def host_syncs(fn: Callable[[], None]) -> int:
    """Synchronising CUDA calls made by ``fn``, as counted by torch's sync debug mode."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message).lower() for w in caught)


def measure_set(name: str, repeat: int, root: str, device: torch.device) -> Dict[str, float]:
    make_model, make_batch = SETS[name]
    torch.manual_seed(0)
    model, batch = make_model().to(device), make_batch(device)
    tensors = [p.detach() for p in model.parameters()]
    optimizers = {
        "adamw": torch.optim.AdamW(param_groups(model, 0.05), lr=1e-4),
        "adam": torch.optim.Adam(param_groups(model, 1e-4), lr=1e-4),  # noqa: WD101 (coupled decay measured on purpose)
        "adam_all": torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4),  # noqa: WD101 WD210 (the worst case, on purpose)
    }
    fns: Dict[str, Callable[[], object]] = {
        "read_sum": lambda: [p.sum() for p in tensors],
        "read_foreach": lambda: torch._foreach_norm(tensors, 1),
    }
    idle = {}
    for label, optimizer in optimizers.items():
        train_step(model, optimizer, batch)  # real state, with real structure
        fns[f"log_{label}"], idle[label] = logging_step(model, optimizer, root)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    times = interleaved(fns, repeat, sync)
    base = min(("read_sum", "read_foreach"), key=lambda n: statistics.median(times[n]))
    out = {n: paired_ratio(times, n, base) for n in fns}
    out["read_ms"] = statistics.median(times[base]) * 1e3
    out["idle_us"] = max(per_call(fn) for fn in idle.values()) * 1e6
    if device.type == "cuda":
        out["syncs"] = max(host_syncs(fns[f"log_{label}"]) for label in optimizers)
    out.update(tensors=len(tensors), params_m=sum(p.numel() for p in tensors) / 1e6)
    return out


# ---------------------------------------------------------------- a whole fit


class FitModule(L.LightningModule):
    """ResNet-50 on small random images, AdamW with decay and no-decay groups."""

    def __init__(self) -> None:
        super().__init__()
        self.model = ResNet50()

    def training_step(self, batch, batch_idx):
        return self.model(batch[0])

    def configure_optimizers(self):
        return torch.optim.AdamW(param_groups(self.model, 0.05), lr=1e-4)


HOOKS = ("setup", "on_train_start", "on_train_batch_start", "on_train_batch_end")


def timed(spent: Dict[str, float], owner: object, names: Sequence[str]) -> None:
    """Add the seconds spent inside each of ``owner``'s methods ``names`` to ``spent``.

    The bound methods are wrapped on the instance (Lightning looks hooks up by name), so the
    time comes from the same fit as the fit's own time: machine load changes both alike,
    where two separate fits differ by far more than the hooks cost.
    """
    for name in names:
        spent.setdefault(name, 0.0)

        def wrapper(*args, _method=getattr(owner, name), _name=name, **kwargs):
            start = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                spent[_name] += time.perf_counter() - start

        setattr(owner, name, wrapper)


def fit_seconds(with_guard: bool, steps: int, root: str, device: torch.device) -> Tuple[float, Dict[str, float]]:
    """(the fit's wall time, seconds inside each of the guard's hooks and the logger's
    ``save``) of one ResNet-50 fit."""
    torch.manual_seed(0)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(steps * 2, 3, 64, 64)), batch_size=2)
    guard, logger = WeightDecayGuard(dataflow=False), CSVLogger(root, name=f"fit_{with_guard}")
    spent: Dict[str, float] = {}
    if with_guard:  # the module logs nothing itself: every row the logger writes is the guard's
        timed(spent, guard, HOOKS)
        timed(spent, logger, ("save",))
    trainer = L.Trainer(
        default_root_dir=root,
        logger=logger,
        callbacks=[guard] if with_guard else [],
        max_steps=steps,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    module = FitModule()
    start = time.perf_counter()
    trainer.fit(module, data)
    return time.perf_counter() - start, spent


class Fit(NamedTuple):
    """A whole fit with and without the guard, over several rounds."""

    inside: float  # median share of a guarded fit's time inside the guard's hooks and logger writes
    steady: float  # the same, with the one-time audit at the start (setup, on_train_start) left out
    ab: float  # median of (fit with the guard) / (fit without it) - 1
    rounds: List[float]  # every round's value of ``ab``


def fit_overhead(steps: int, rounds: int, root: str, device: torch.device) -> Fit:
    """What the guard adds to a whole fit, measured two ways (see ``Fit``)."""
    fit_seconds(True, 3, root, device)  # warm up
    inside, steady, ab = [], [], []
    for _ in range(rounds):
        without, _ = fit_seconds(False, steps, root, device)
        with_guard, spent = fit_seconds(True, steps, root, device)
        ab.append(with_guard / without - 1)
        once = spent["setup"] + spent["on_train_start"]
        inside.append(sum(spent.values()) / with_guard)
        steady.append((sum(spent.values()) - once) / (with_guard - once))
    return Fit(statistics.median(inside), statistics.median(steady), statistics.median(ab), ab)


# ---------------------------------------------------------------- report


def report(sets: Dict[str, Dict[str, float]], fit: Fit, fit_steps: int) -> None:
    names = list(sets)
    rows = [
        ("parameter tensors", lambda s: f"{s['tensors']:.0f}"),
        ("parameters (millions)", lambda s: f"{s['params_m']:.1f}"),
        ("one read of the parameters, ms", lambda s: f"{s['read_ms']:.2f}"),
        ("logging step, AdamW / read", lambda s: f"{s['log_adamw']:.2f}x"),
        ("logging step, Adam (coupled) / read", lambda s: f"{s['log_adam']:.2f}x"),
        ("  same, decay on every tensor / read", lambda s: f"{s['log_adam_all']:.2f}x"),
        ("non-logging step, us", lambda s: f"{s['idle_us']:.2f}"),
    ]
    if "syncs" in sets[names[0]]:
        rows.append(("host synchronisations per logging step", lambda s: f"{s['syncs']:.0f}"))
    width = max(len(r[0]) for r in rows) + 2
    print(f"{'':<{width}}" + "".join(f"{n:>16}" for n in names))
    for label, cell in rows:
        print(f"{label:<{width}}" + "".join(f"{cell(sets[n]):>16}" for n in names))
    print(f"whole fit, ResNet-50, {fit_steps} steps, a logging step every 50:")
    print(f"  time inside the guard's hooks and the logger's writes / the fit's time: {fit.inside * 100:.2f}% "
          f"({fit.steady * 100:.2f}% without the one-time audit at the start)")
    print(f"  fit with the guard / fit without it - 1: {fit.ab * 100:+.2f}% "
          f"(rounds: {', '.join(f'{r * 100:+.2f}%' for r in fit.rounds)}; separate fits, so machine noise included)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2], help="torch thread counts to run in turn (CPU)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--fit-steps", type=int, default=150, help="optimizer steps of each whole fit")
    parser.add_argument("--fit-rounds", type=int, default=3, help="fits with and without the guard, taking turns")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)  # configured: the guard leaves its summary to it
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    device = torch.device(args.device)
    repeat = 5 if args.quick else 15
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    for threads in args.threads if device.type == "cpu" else [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, device {device}, GPU: {gpu}")
        with tempfile.TemporaryDirectory() as root:
            sets = {name: measure_set(name, repeat, root, device) for name in SETS}
            fit = fit_overhead(args.fit_steps, 1 if args.quick else args.fit_rounds, root, device)
        report(sets, fit, args.fit_steps)


if __name__ == "__main__":
    main()
