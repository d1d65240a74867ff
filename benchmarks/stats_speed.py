"""What the weight-stats logging costs, as ratios, on GPT-2-small and ResNet-50 parameter sets.

Prints, side by side for each parameter set:

- two read floors: one pass over a flat buffer with as many elements as the model (the
  faster of ``sum`` and ``linalg.vector_norm``: an ideal memory layout that no model has),
  and one read of the parameters where they live (``sum`` of each tensor, the faster of a
  Python loop and ``torch._foreach_norm`` with ``ord=1``); every ratio is given against both;
- ``torch._foreach_norm`` over the parameters as they are, the per-tensor norm pass alone;
- a naive loop of ``p.norm().item()`` per parameter;
- a wd-guard logging step (batched norms, effective decay, one host transfer, and
  ``logger.log_metrics``) with AdamW (decoupled), with Adam (coupled decay on the weight
  matrices: the median of the adaptive factor is estimated from a fixed sample of the
  state), and with Adam decaying every tensor (the worst case: a median per tensor);
- that sample of the coupled run's state read alone (1024 elements of each decayed
  ``exp_avg_sq``, after the parameters have streamed through the cache, as in a logging step);
- a non-logging step of the monitor, in microseconds;
- a training step (forward, backward, optimizer step) on a small batch, and the overhead a
  whole fit sees with the Trainer's default cadence (one logging step every 50);
- the median estimator's largest error (in rank, and relative in effective decay) against
  the exact median of the real Adam state after a training step;
- the per-step cost of ``LightningModule.log_dict`` with 300 keys against
  ``logger.log_metrics`` on logging steps only, in a real Lightning fit.

The functions take turns over several rounds and each ratio is the median of its
round-by-round ratios, so background load on a shared machine disturbs them less. Run ``python benchmarks/stats_speed.py`` (or
``make bench``); ``--threads N`` pins torch's thread count, ``--quick`` uses fewer runs.
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
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn
from torch.nn import functional as F

import lightning as L
from lightning.pytorch.loggers import CSVLogger

from wd_guard.monitor import WeightMonitor
from wd_guard._medians import SampleGather
from wd_guard._norms import Piece, sample

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
        x = self.wte(tokens) + self.wpe(torch.arange(tokens.shape[1]))
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
        return F.cross_entropy(self.fc(x), torch.zeros(len(images), dtype=torch.long))


SETS: Dict[str, Tuple[Callable[[], nn.Module], Callable[[], torch.Tensor]]] = {
    "GPT-2 small": (GPT2Small, lambda: torch.randint(0, 50257, (1, 64))),
    "ResNet-50": (ResNet50, lambda: torch.randn(8, 3, 112, 112)),
}

# ---------------------------------------------------------------- timing


def interleaved(fns: Dict[str, Callable[[], object]], repeat: int) -> Dict[str, List[float]]:
    """Wall times of each function in seconds, over ``repeat`` rounds in which they take turns.

    Within a round the functions see the same background load, so ratios between them are
    taken round by round (see ``paired_ratio``); this matters on a shared machine.
    """
    for fn in fns.values():
        fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
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


def median_errors(model: nn.Module, optimizer: torch.optim.Adam) -> Tuple[float, float]:
    """Largest rank error and relative error of the sampled median over every tensor's state.

    Rank error: |rank - 0.5| of the estimate among all of ``exp_avg_sq``'s elements. Relative
    error: of the effective decay ``lr * wd / (sqrt(v_hat) + eps)`` against the exact median.
    """
    worst_rank = worst_value = 0.0
    for group in optimizer.param_groups:
        beta2, eps = group["betas"][1], group["eps"]
        for p in group["params"]:
            state = optimizer.state[p]
            v = state["exp_avg_sq"].flatten()
            estimate, exact = torch.nanmedian(sample(state["exp_avg_sq"])), v.median()
            rank = ((v < estimate).double().mean() + (v <= estimate).double().mean()).item() / 2
            bias = 1 - beta2 ** float(state["step"])
            term = [1 / ((m / bias).sqrt() + eps) for m in (estimate.double(), exact.double())]
            worst_rank = max(worst_rank, abs(rank - 0.5))
            worst_value = max(worst_value, abs(term[0] / term[1] - 1).item())
    return worst_rank, worst_value


def logging_step(model: nn.Module, optimizer: torch.optim.Optimizer, root: str) -> Tuple[Callable[[], None], Callable[[], None]]:
    """(one logging step, one non-logging step) of a WeightMonitor set up on a real Trainer."""
    trainer = L.Trainer(logger=CSVLogger(root), accelerator="cpu", devices=1, enable_progress_bar=False)
    trainer.optimizers = [optimizer]
    monitor = WeightMonitor(log_every_n_steps=50)
    monitor.setup(trainer, model)

    def log() -> None:  # what a logging step does after the step counter check
        metrics = monitor.compute(trainer, model)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    return log, lambda: monitor.on_train_batch_end(trainer, model)


def per_call(fn: Callable[[], None], calls: int = 20000) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def measure_set(name: str, repeat: int, root: str) -> Dict[str, float]:
    make_model, make_batch = SETS[name]
    torch.manual_seed(0)
    model, batch = make_model(), make_batch()
    params = list(model.parameters())
    tensors = [p.detach() for p in params]  # no autograd bookkeeping in the floors
    numel = sum(p.numel() for p in params)
    flat = torch.randn(numel)
    optimizers = {
        "adamw": torch.optim.AdamW(param_groups(model, 0.05), lr=1e-4),
        "adam": torch.optim.Adam(param_groups(model, 1e-4), lr=1e-4),
        "adam_all": torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4),  # noqa: WD101 WD210 (the worst case, on purpose)
    }
    fns: Dict[str, Callable[[], object]] = {
        "floor": lambda: torch.linalg.vector_norm(flat),
        "floor_sum": lambda: flat.sum(),
        "in_place": lambda: [p.sum() for p in tensors],
        "in_place_foreach": lambda: torch._foreach_norm(tensors, 1),
        "foreach": lambda: torch._foreach_norm(tensors),
        "naive": lambda: [p.norm().item() for p in params],
    }
    idle = {}
    for label, optimizer in optimizers.items():
        train_step(model, optimizer, batch)  # real state, with real structure
        fns[f"log_{label}"], idle[label] = logging_step(model, optimizer, root)
    coupled = optimizers["adam"]
    states = [coupled.state[p]["exp_avg_sq"] for g in coupled.param_groups if g["weight_decay"] for p in g["params"]]
    fns["sample"] = SampleGather(states, [Piece()] * len(states), torch.device("cpu")).run
    times = interleaved(fns, repeat)
    # The floor is the faster flat pass of the two; each ratio is taken against it round by round.
    base = "floor" if statistics.median(times["floor"]) <= statistics.median(times["floor_sum"]) else "floor_sum"
    out = {name: paired_ratio(times, name, base) for name in fns}
    out["floor_ms"] = statistics.median(times[base]) * 1e3
    here = min(("in_place", "in_place_foreach"), key=lambda n: statistics.median(times[n]))
    out.update({f"{name}@in_place": paired_ratio(times, name, here) for name in fns})
    out["in_place_ms"] = statistics.median(times[here]) * 1e3
    out["train"] = min(interleaved({"train": lambda: train_step(model, optimizers["adamw"], batch)}, 2)["train"]) / (out["floor_ms"] / 1e3)
    out["idle"] = max(per_call(fn) for fn in idle.values())
    out["rank_error"], out["value_error"] = median_errors(model, optimizers["adam_all"])
    out.update(tensors=len(params), params_m=numel / 1e6)
    return out


# ---------------------------------------------------------------- log_dict vs log_metrics


KEYS = {f"weight_norm/layer_{i}": float(i) for i in range(300)}


class ManyKeys(L.LightningModule):
    """A tiny regressor that logs 300 keys every step through ``log_dict``, or nothing."""

    def __init__(self, log_dict: bool) -> None:
        super().__init__()
        self.layer = nn.Linear(8, 1)
        self.use_log_dict = log_dict

    def training_step(self, batch, batch_idx):
        if self.use_log_dict:
            self.log_dict(KEYS)
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=1e-3)


def fit_seconds(log_dict: bool, steps: int, root: str) -> float:
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(steps * 4, 8)), batch_size=4)
    trainer = L.Trainer(
        default_root_dir=root,
        logger=CSVLogger(root, name=f"log_dict_{log_dict}"),
        max_steps=steps,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    start = time.perf_counter()
    trainer.fit(ManyKeys(log_dict), data)
    return time.perf_counter() - start


def logging_costs(steps: int, repeat: int, root: str) -> Dict[str, float]:
    """Seconds per training step added by ``log_dict`` (300 keys), and per ``log_metrics`` call."""
    added = (fit_seconds(True, steps, root) - fit_seconds(False, steps, root)) / steps
    logger = CSVLogger(root, name="direct")
    call = statistics.median(interleaved({"log_metrics": lambda: logger.log_metrics(KEYS, step=0)}, repeat)["log_metrics"])
    return {"log_dict": added, "log_metrics": call}


# ---------------------------------------------------------------- report


def _both(name: str) -> Callable[[Dict[str, float]], str]:
    """A cell with the ratio to the flat floor, then to the in-place read."""
    return lambda s: f"{s[name]:.2f}x, {s[name + '@in_place']:.2f}x"


def report(sets: Dict[str, Dict[str, float]], fits: Dict[str, float]) -> None:
    names = list(sets)
    rows = [
        ("parameter tensors", lambda s: f"{s['tensors']:.0f}"),
        ("parameters (millions)", lambda s: f"{s['params_m']:.1f}"),
        ("read floor: flat buffer, params in place, ms", lambda s: f"{s['floor_ms']:.1f}, {s['in_place_ms']:.1f}"),
        ("naive p.norm().item() loop / floors", _both("naive")),
        ("torch._foreach_norm alone / floors", _both("foreach")),
        ("logging step, AdamW / floors", _both("log_adamw")),
        ("logging step, Adam (coupled) / floors", _both("log_adam")),
        ("  of which the state sample read alone / floors", _both("sample")),
        ("  same, decay on every tensor / floors", _both("log_adam_all")),
        ("non-logging step, us", lambda s: f"{s['idle'] * 1e6:.2f}"),
        ("training step / floor", lambda s: f"{s['train']:.0f}x"),
        ("fit overhead, 1 log per 50 steps", lambda s: f"{(s['log_adam_all'] / 50 + s['idle'] * 1e3 / s['floor_ms']) / s['train'] * 100:.3f}%"),
        ("sampled median: max rank error", lambda s: f"{s['rank_error']:.3f}"),
        ("  max relative error of the decay", lambda s: f"{s['value_error'] * 100:.1f}%"),
    ]
    width = max(len(r[0]) for r in rows) + 2
    print(f"{'':<{width}}" + "".join(f"{n:>18}" for n in names))
    for label, cell in rows:
        print(f"{label:<{width}}" + "".join(f"{cell(sets[n]):>18}" for n in names))
    print()
    print("Logging 300 keys (tiny model, CSVLogger):")
    print(f"  LightningModule.log_dict, added to every training step   {fits['log_dict'] * 1e3:9.3f} ms")
    print(f"  logger.log_metrics, one call on a logging step           {fits['log_metrics'] * 1e3:9.3f} ms")
    print(f"  ratio                                                    {fits['log_dict'] / fits['log_metrics']:9.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    repeat = 5 if args.quick else 15
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, GPU: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    with tempfile.TemporaryDirectory() as root:
        sets = {name: measure_set(name, repeat, root) for name in SETS}
        steps = 10 if args.quick else 30
        fits = logging_costs(steps, repeat, root)
    report(sets, fits)


if __name__ == "__main__":
    main()
