"""Every weight-decay mistake wd-lint reports by default, each on a line marked with its code.

    wd-lint examples/bad_optimizers.py                         # found before the code runs
    wd-lint --extend-select WD204 examples/bad_optimizers.py   # adds the opt-in rule
    python examples/bad_optimizers.py                          # what audit() says at run time

A line ending in ``# wd-lint: CODE`` is where the linter reports CODE with its default rules;
``# wd-lint opt-in: CODE`` marks a rule that is off unless selected. The test suite checks
that wd-lint reports exactly these lines and codes, and nothing else.
"""

from __future__ import annotations

from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import Adam

from wd_guard import audit


def make_model() -> nn.Sequential:
    """A small classifier whose first layer feeds straight into BatchNorm."""
    return nn.Sequential(
        nn.Linear(8, 32, bias=False),  # wd-lint opt-in: WD204
        nn.BatchNorm1d(32),
        nn.ReLU(),
        nn.Linear(32, 2),
    )


def split(model: nn.Module) -> List[Dict]:
    """Parameter groups by hand: matrices take the optimizer's decay, vectors none."""
    named = list(model.named_parameters())
    matrices = [p for _, p in named if p.ndim > 1]
    vectors = [p for _, p in named if p.ndim <= 1]
    return [{"params": matrices}, {"params": vectors, "weight_decay": 0.0}]


def coupled_adam(model: nn.Module) -> torch.optim.Optimizer:
    """Adam adds weight_decay to the gradient, and its adaptive step then distorts it."""
    return Adam(split(model), lr=1e-3, weight_decay=1e-2)  # wd-lint: WD101


def coupled_rmsprop_positional(model: nn.Module) -> torch.optim.Optimizer:
    """The same mistake with RMSprop, weight_decay given as its fourth positional argument."""
    return torch.optim.RMSprop(split(model), 1e-3, 0.99, 1e-8, 1e-4)  # wd-lint: WD101


def adamw_defaults(model: nn.Module) -> torch.optim.Optimizer:
    """AdamW's default weight_decay is 0.01: every bias and norm scale is decayed."""
    return torch.optim.AdamW(model.parameters(), lr=3e-4)  # wd-lint: WD210


def sgd_blanket(model: nn.Module) -> torch.optim.Optimizer:
    """The usual requires_grad filter still hands every parameter to one decayed group."""
    return torch.optim.SGD(filter(lambda p: p.requires_grad, model.parameters()), lr=0.1, weight_decay=5e-4)  # wd-lint: WD210


def sgd_excessive(model: nn.Module) -> torch.optim.Optimizer:
    """lr * weight_decay = 0.5: half of every decayed weight is gone after one step."""
    return torch.optim.SGD(split(model), lr=1.0, weight_decay=0.5)  # wd-lint: WD302


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """One step with an L2 penalty in the loss, on top of the optimizers' own decay."""
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y) + 1e-4 * sum(p.pow(2).sum() for p in model.parameters())  # wd-lint: WD401 WD402
    loss.backward()
    optimizer.step()
    return loss.item()


BUILDERS = (coupled_adam, coupled_rmsprop_positional, adamw_defaults, sgd_blanket, sgd_excessive)


def main() -> None:
    """Build each optimizer above on a real model and print what the runtime audit finds."""
    torch.manual_seed(0)
    x, y = torch.randn(16, 8), torch.randint(0, 2, (16,))
    for build in BUILDERS:
        model = make_model()
        optimizer = build(model)
        findings = audit(model, optimizer, example_input=x)
        print(f"{build.__name__}: {', '.join(f.code for f in findings) or 'no findings'}")
        for finding in findings:
            print(f"    {finding}")
        train_step(model, optimizer, x, y)


if __name__ == "__main__":
    main()
