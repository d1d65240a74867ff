"""wd-guard without Lightning: audit an optimizer, fix it with param_groups, watch weight_stats.

    python examples/plain_pytorch.py [--steps 200]
"""

from __future__ import annotations

import argparse
import os
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from wd_guard import audit, param_groups, weight_stats

DEFAULT_STEPS = int(os.environ.get("WD_GUARD_EXAMPLE_STEPS", "200"))


def make_model() -> nn.Module:
    """A one-block transformer classifier: embeddings, attention, LayerNorms, biases."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Embedding(100, 32),
        nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64, batch_first=True),
        nn.Flatten(),
        nn.Linear(32 * 8, 2),
    )


def batch(size: int = 32) -> Sequence[torch.Tensor]:
    """Token sequences of length 8 labelled by whether token 7 occurs in them."""
    tokens = torch.randint(0, 100, (size, 8))
    return tokens, (tokens == 7).any(dim=1).long()


def show(stats: Dict[str, float], step: int) -> None:
    """One line per parameter of the first LayerNorm and attention projection."""
    for key, value in stats.items():
        if ".self_attn.in_proj_weight" in key or ".norm1." in key:
            print(f"  step {step:4d}  {key:<44} {value:.3g}")


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # a model this small runs fastest on one thread
    model = make_model()

    mistaken = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)
    print("audit of Adam(model.parameters(), weight_decay=1e-2):")
    for finding in audit(model, mistaken):
        print(f"  {finding}")

    optimizer = torch.optim.AdamW(param_groups(model, weight_decay=0.05), lr=1e-3)
    findings = audit(model, optimizer)
    print("audit of AdamW(param_groups(model, weight_decay=0.05)):", findings or "no findings")

    for step in range(args.steps):
        tokens, labels = batch()
        loss = F.cross_entropy(model(tokens), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % max(1, args.steps // 4) == 0 or step == args.steps - 1:
            show(weight_stats(model, optimizer), step)
    print(f"final loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
