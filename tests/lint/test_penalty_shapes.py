"""Which loops bind parameters and which expressions are L2 penalties (WD401 / WD402)."""

from __future__ import annotations

import pytest

from wd_guard.lint.analysis.engine import lint_source

SGD = "import torch\nopt = torch.optim.SGD(params, lr=0.1, weight_decay=5e-4)\n"


def _wd401(body: str) -> bool:
    return [d.code for d in lint_source(SGD + body, select={"WD401"})] == ["WD401"]


@pytest.mark.parametrize(
    "iterable",
    ["list(model.parameters())", "tuple(model.parameters())", "filter(lambda q: q.requires_grad, model.parameters())"],
)
def test_loop_over_a_wrapped_parameter_list_binds_parameters(iterable):
    assert _wd401(f"l2 = 0.0\nfor p in {iterable}:\n    l2 += p.pow(2).sum()\nloss = ce + l2\n")


def test_other_calls_and_shadowed_builtins_do_not_wrap_parameters():
    assert not _wd401("l2 = 0.0\nfor p in sorted(model.parameters()):\n    l2 += p.pow(2).sum()\nloss = ce + l2\n")
    assert not _wd401("list = dict\nl2 = 0.0\nfor p in list(model.parameters()):\n    l2 += p.pow(2).sum()\nloss = ce + l2\n")


@pytest.mark.parametrize(
    "loops",
    ["for p in model.parameters() for _ in range(2)", "for _ in range(2) for p in model.parameters()"],
)
def test_every_loop_of_a_comprehension_may_bind_the_parameter(loops):
    assert _wd401(f"loss = ce + sum(p.pow(2).sum() {loops})\n")


def test_penalty_function_reads_names_inside_its_own_scope():
    assert _wd401(
        "def l2(model):\n    from torch import linalg\n    return sum(linalg.norm(p) ** 2 for p in model.parameters())\n"
        "loss = ce + 1e-4 * l2(model)\n"
    )


def test_penalty_function_returning_from_inside_a_loop_over_parameters():
    assert _wd401("def l2(model):\n    for p in model.parameters():\n        return p.pow(2).sum()\nloss = ce + 1e-4 * l2(model)\n")


def test_a_name_also_bound_to_something_else_is_not_a_penalty_function():
    define = "def l2(model):\n    return sum(p.pow(2).sum() for p in model.parameters())\n"
    assert _wd401(define + "loss = ce + 1e-4 * l2(model)\n")
    assert not _wd401(define + "l2 = make_other()\nloss = ce + 1e-4 * l2(model)\n")
