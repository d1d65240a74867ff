"""The wd-guard demo (``make demo``): the runtime callback and the linter on the same mistakes.

1. Trains the classifier of ``lightning_classifier.py`` twice from the same initial weights:
   with the classic weight-decay mistakes, and fixed. ``WeightDecayGuard`` prints its summary
   table and warns about each mistake; both runs log per-layer weight norms to CSV.
2. Runs ``wd-lint examples/``, which finds the same mistakes in the source before anything runs.
3. Draws each layer's weight norm over the training steps for both runs, from their CSV logs,
   into ``demo_output/weight_norms.png``.

    python examples/demo.py [--steps 600] [--out demo_output]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch

import lightning_classifier as classifier
from wd_guard import WeightDecayWarning, param_groups
from wd_guard.lint.command import cli as wd_lint

EXAMPLES = Path(__file__).resolve().parent
RUNS = {
    "mistaken": "Adam(self.parameters(), weight_decay=1e-2)",
    "fixed": "AdamW(param_groups(self, weight_decay=1e-2))",
}
COLOURS = {"mistaken": "tab:red", "fixed": "tab:blue"}


def banner(title: str) -> None:
    print(f"\n{'=' * 78}\n{title}\n{'=' * 78}", flush=True)


def quiet_lightning() -> None:
    """Keep the output to what wd-guard says: no device banners, no data-loader hints."""
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def show_wd_guard_log() -> None:
    """Send the callback's log records (its summary table) to stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("wd_guard")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def train(name: str, steps: int, out: Path) -> Path:
    """One run with the callback; prints its warnings; returns the CSV log."""
    banner(f"{name} run: {RUNS[name]}, {steps} steps")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WeightDecayWarning)
        log = classifier.fit(name == "fixed", steps, out)
    found = [w for w in caught if issubclass(w.category, WeightDecayWarning)]
    print(f"\n{len(found)} WeightDecayWarning(s):")
    for warning in found:
        print(f"  {warning.message}")
    for warning in caught:
        if not issubclass(warning.category, WeightDecayWarning):
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    print("\n" + classifier.describe(name, classifier.read_metrics(log)))
    return log


def lint_examples() -> int:
    """Run wd-lint on the examples, as ``wd-lint examples/`` does on the command line."""
    relative = os.path.relpath(EXAMPLES)
    target = (EXAMPLES.as_posix() if relative.startswith("..") else relative) + os.sep
    banner(f"$ wd-lint {target}")
    sys.stdout.flush()
    status = wd_lint.main([target])
    sys.stdout.flush()
    sys.stderr.flush()
    print(f"(exit status {status}: 1 means findings)")
    return status


def decayed_when_fixed() -> Dict[str, bool]:
    """The classifier's parameters in model order, each with whether the fixed run decays it."""
    model = classifier.TokenClassifier()
    decayed = {id(p) for group in param_groups(model, weight_decay=1.0) if group["weight_decay"] for p in group["params"]}
    return {name: id(p) in decayed for name, p in model.named_parameters()}


def plot(logs: Dict[str, Path], path: Path) -> Path:
    """Validation accuracy and each parameter's weight norm over steps, both runs overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {name: classifier.read_metrics(log) for name, log in logs.items()}
    decayed = decayed_when_fixed()
    panels = ["val_acc"] + [f"weight_norm/{name}" for name in decayed]
    columns = 4
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.3 * rows), sharex=True, squeeze=False)
    for ax, key in zip(axes.flat, panels):
        _panel(ax, key, series, decayed.get(key.split("/", 1)[-1], False))
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=2, frameon=False, fontsize=11, bbox_to_anchor=(0.5, 0.94))
    fig.suptitle("Per-layer weight norms: the mistaken run shrinks embeddings and LayerNorm, the fixed run does not", fontsize=14, y=0.99)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _panel(ax, key: str, series: Dict[str, classifier.Series], decayed_when_fixed: bool) -> None:
    for name, run in series.items():
        points = run.get(key, [])
        ax.plot([s for s, _ in points], [v for _, v in points], color=COLOURS[name], lw=2, label=f"{name}: {RUNS[name]}")
    if key == "val_acc":
        ax.set_title("validation accuracy (torchmetrics)", fontweight="bold", pad=16)
        ax.set_ylim(0, 1)
        final = " · ".join(f"{name} {run[key][-1][1]:.2f}" for name, run in series.items() if run.get(key))
        _subtitle(ax, f"final: {final}")
        ax.set_ylabel("accuracy")
    else:
        fixed = "decayed (decoupled)" if decayed_when_fixed else "not decayed"
        ax.set_title(key.split("/", 1)[1], fontweight="bold", pad=16)
        _subtitle(ax, f"in the fixed run: {fixed}")
        ax.set_ylabel("L2 norm")
    ax.grid(alpha=0.3)


def _subtitle(ax, text: str) -> None:
    ax.text(0.5, 1.02, text, transform=ax.transAxes, ha="center", va="bottom", fontsize=9, color="0.35")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=classifier.DEFAULT_STEPS, help="training steps per run")
    parser.add_argument("--out", type=Path, default=Path("demo_output"), help="folder for the logs and the picture")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # a model this small runs fastest on one thread
    quiet_lightning()
    show_wd_guard_log()
    logs = {name: train(name, args.steps, args.out / "logs") for name in RUNS}
    lint_examples()
    picture = plot(logs, args.out / "weight_norms.png")
    banner("Per-layer weight norms of both runs")
    print(f"picture: {picture.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
