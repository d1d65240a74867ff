"""WD401 / WD402 report L2 penalties only: the order of a norm decides, not its name."""

from __future__ import annotations

import warnings

import pytest

from wd_guard.lint.analysis.engine import lint_source

# An L2 term of one parameter ``p``, in the spellings users write.
L2_TERMS = [
    "p.norm()",
    "p.norm(2)",
    "p.norm(p=2)",
    "p.norm(p='fro')",
    "p.norm(2) ** 2",
    "p.pow(2).sum()",
    "(p ** 2).sum()",
    "p.square().sum()",
    "torch.sum(p ** 2)",
    "torch.norm(p)",
    "torch.norm(p, 2)",
    "torch.norm(p, p=2)",
    "torch.norm(p, p=None)",
    "torch.linalg.norm(p)",
    "torch.linalg.norm(p, ord=2) ** 2",
]
# Penalties of another order (L1, max norm, cubes): not what weight decay does.
OTHER_TERMS = [
    "p.norm(1)",
    "p.norm(p=1)",
    "p.norm(1) ** 2",
    "p.norm(3)",
    "p.norm(float('inf'))",
    "p.abs().sum()",
    "p.pow(3).sum()",
    "p.pow(1).sum()",
    "(p ** 3).sum()",
    "torch.norm(p, 1)",
    "torch.norm(p, p=1)",
    "torch.norm(p, 1) ** 2",
    "torch.linalg.norm(p, ord=1)",
    "torch.pow(p, 3).sum()",
]
OPTIMIZERS = {
    "WD401": "torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=5e-4)",
    "WD402": "torch.optim.Adam(model.parameters(), lr=1e-3)",
}


def _codes(term: str, optimizer: str) -> list:
    source = f"import torch\nopt = {optimizer}\nloss = ce + 1e-4 * sum({term} for p in model.parameters())\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a failing rule must not pass as "no finding"
        return [d.code for d in lint_source(source, select=set(OPTIMIZERS))]


@pytest.mark.parametrize("code", sorted(OPTIMIZERS))
@pytest.mark.parametrize("term", L2_TERMS)
def test_l2_penalty_is_reported(term, code):
    assert _codes(term, OPTIMIZERS[code]) == [code]


@pytest.mark.parametrize("code", sorted(OPTIMIZERS))
@pytest.mark.parametrize("term", OTHER_TERMS)
def test_penalty_of_another_order_is_not_reported(term, code):
    assert _codes(term, OPTIMIZERS[code]) == []
