"""Which loops bind parameters and which expressions are L2 penalties (WD401 / WD402)."""

from __future__ import annotations

import warnings

import pytest

from wd_guard.lint.analysis.engine import lint_source

SGD = "import torch\nopt = torch.optim.SGD(params, lr=0.1, weight_decay=5e-4)\n"


def _wd401(body: str) -> bool:
    # A rule that fails becomes a RuntimeWarning and no finding: make that fail the test,
    # so that "not reported" means the rule ran and found nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
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


P = "for p in model.parameters()"
PENALTIES = {
    "reshaped": f"loss = ce + sum((p.view(-1) ** 2).sum() {P})\n",
    "flattened": f"loss = ce + sum(p.flatten().pow(2).sum() {P})\n",
    "mean of squares": f"loss = ce + sum(p.pow(2).mean() {P})\n",
    "torch.mean": f"loss = ce + sum(torch.mean(p ** 2) {P})\n",
    "torch.square": f"loss = ce + sum(torch.square(p).sum() {P})\n",
    "torch.pow": f"loss = ce + sum(torch.pow(p, 2).sum() {P})\n",
    "pow keyword": f"loss = ce + sum(p.pow(exponent=2).sum() {P})\n",
    "squared norm method": f"loss = ce + sum(p.norm(2).pow(2) {P})\n",
    "weight attribute": "loss = ce + self.fc.weight.norm(2)\n",
    "divided": f"loss = ce + sum(p.pow(2).sum() {P}) / 2\n",
    "scaled on the right": f"loss = ce + sum(p.pow(2).sum() {P}) * lam\n",
    "list of terms": "loss = ce + sum([self.a.weight.pow(2).sum(), self.b.weight.pow(2).sum()])\n",
    "named_parameters": "loss = ce + sum(w.pow(2).sum() for _, w in model.named_parameters())\n",
    "tensor zero start": "reg = torch.tensor(0.)\nfor p in model.parameters():\n    reg = reg + p.pow(2).sum()\nloss = ce + reg\n",
    "torch.zeros start": "reg = torch.zeros(())\nfor p in model.parameters():\n    reg += p.pow(2).sum()\nloss = ce + reg\n",
    "loop over a list of weights": "reg = 0.0\nfor w in [self.a.weight, self.b.weight]:\n    reg += w.pow(2).sum()\nloss = ce + reg\n",
    "sum of two terms of one parameter": f"loss = ce + sum(p.pow(2).sum() + p.norm(2) {P})\n",
    "list of terms of a loop parameter": "reg = 0.0\nfor p in model.parameters():\n    reg += sum([p.norm(2), p.pow(2).sum()])\n"
    "loss = ce + reg\n",
    "nested loops": "reg = 0.0\nfor p in m1.parameters():\n    for q in m2.parameters():\n"
    "        reg += p.pow(2).sum() + q.pow(2).sum()\nloss = ce + reg\n",
    "loop over a local variable": "def f(model, ce):\n    ps = model.parameters()\n    reg = 0.0\n    for p in ps:\n"
    "        reg += p.pow(2).sum()\n    return ce + reg\n",
    "method": "class M:\n    def l2(self):\n        return sum(p.pow(2).sum() for p in self.parameters())\n"
    "    def loss(self, ce):\n        return ce + self.l2()\n",
}
NOT_PENALTIES = {
    "bias attribute": "loss = ce + (self.fc.bias ** 2).sum()\n",
    "activation": "loss = ce + (h ** 2).sum()\n",
    "norm of a keyword input": f"loss = ce + sum(torch.norm(input=p) {P})\n",
    "norm of unpacked arguments": f"loss = ce + sum(torch.norm(*p) {P})\n",
    "divided by a penalty": f"loss = ce + n / sum(p.pow(2).sum() {P})\n",
    "difference": f"loss = ce + (sum(p.pow(2).sum() {P}) - 1)\n",
    "list with a non-term": "loss = ce + sum([self.a.weight.pow(2).sum(), h.sum()])\n",
    "name of named_parameters": "loss = ce + sum(n.pow(2).sum() for n, _ in model.named_parameters())\n",
    "max of terms": "loss = ce + max([self.a.weight.pow(2).sum(), self.b.weight.pow(2).sum()])\n",
    "sum of a name": "norm = self.fc.weight.norm(2)\nloss = ce + sum(terms)\n",
    "sum of two penalties": "a = sum(p.pow(2).sum() for p in m1.parameters())\n"
    "b = sum(p.pow(2).sum() for p in m2.parameters())\nt = a + b\n",
    "subtracted in a loop": "reg = 0.0\nfor p in model.parameters():\n    reg -= p.pow(2).sum()\nloss = ce + reg\n",
    "loop over a list with a non-parameter": "reg = 0.0\nfor w in [self.a.weight, h]:\n    reg += w.pow(2).sum()\nloss = ce + reg\n",
}


@pytest.mark.parametrize("body", PENALTIES.values(), ids=list(PENALTIES))
def test_penalty_shapes_are_reported(body):
    assert _wd401(body)


@pytest.mark.parametrize("body", NOT_PENALTIES.values(), ids=list(NOT_PENALTIES))
def test_other_shapes_are_not_penalties(body):
    assert not _wd401(body)


@pytest.mark.parametrize(
    "loop",
    [
        "for h in self.activations():\n    reg += h.pow(2).sum()\n",
        "for k, v in state.items():\n    reg += v.pow(2).sum()\n",
        "for pair in model.named_parameters():\n    reg += pair.pow(2).sum()\n",
        "for name, [w] in model.named_parameters():\n    reg += w.pow(2).sum()\n",
        "for w in [w1, w2]:\n    reg += w.pow(2).sum()\n",
    ],
    ids=["other method", "other pairs", "named pairs unpacked later", "nested unpacking", "list of plain names"],
)
def test_loops_that_bind_no_parameter(loop):
    assert not _wd401(f"reg = 0.0\n{loop}loss = ce + reg\n")


def test_norm_order_read_through_a_variable():
    assert not _wd401(f"k = 1\nloss = ce + sum(p.norm(k) {P})\n")
    assert _wd401(f"k = 2\nloss = ce + sum(p.norm(k) {P})\n")


def _nested(levels: int, inner: str) -> str:
    return "2 * (" * levels + inner + ")" * levels


def test_a_penalty_is_reported_once_where_it_is_added():
    assert [d.code for d in lint_source(SGD + "loss = base + (ce + self.fc.weight.pow(2).sum())\n", select={"WD401"})] == ["WD401"]


def test_penalty_search_stops_at_its_depth_limit():
    """The search for a penalty inside an expression goes ``_DEPTH`` operations deep and no
    further (a guard against runaway recursion): no deeper expression counts, either way."""
    from wd_guard.lint.rules.penalties import _DEPTH

    term = "self.fc.weight.pow(2).sum()"
    assert _wd401(f"loss = ce + {_nested(_DEPTH, term)}\n")
    assert not _wd401(f"loss = ce + {_nested(_DEPTH + 1, term)}\n")
    assert not _wd401(f"loss = ce + {_nested(_DEPTH + 4, 'h')}\n")
    left = "(" * _DEPTH + term + " * 2)" * _DEPTH
    assert _wd401(f"loss = ce + {left}\n")
    assert not _wd401(f"loss = ce + ({left} * 2)\n")
    sums = "sum([" * _DEPTH + term + "])" * _DEPTH
    assert _wd401(f"loss = ce + {sums}\n")
    assert not _wd401(f"loss = ce + sum([{sums}])\n")
