"""Rules about how an optimizer is built: coupled decay, blanket decay, excessive decay."""

from __future__ import annotations

import functools
from typing import Iterator, Optional

import libcst as cst

from wd_guard.optimizers import DecayKind

from wd_guard.lint.analysis.names import Names
from wd_guard.lint.intake.vocabulary import BY_CODE, DECAYING
from wd_guard.lint.rules.base import Invalid, LintRule, Report
from wd_guard.lint.fixes.rewrites import decouple, use_param_groups
from wd_guard.lint.rules.sites import Group, Site, optimizer_sites


class CoupledDecayAdaptive(LintRule):
    """An adaptive optimizer whose ``weight_decay`` is coupled L2 is given a non-zero decay."""

    CODE = "WD101"
    NODES = (cst.Call,)
    VOCABULARY = BY_CODE[CODE]
    VALID = (
        "import torch\nopt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)\n",
        "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3)\n",
        "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=0.0)\n",
        "import torch\nopt = torch.optim.Adam(groups, lr=1e-3, weight_decay=0.01, decoupled_weight_decay=True)\n",
        "from torch.optim import NAdam\nopt = NAdam(params, weight_decay=0.01, decoupled_weight_decay=True)\n",
        "import torch\nopt = torch.optim.Adam(params, lr=1e-3, weight_decay=cfg.wd, **kwargs)\n",
        "import torch\nopt = getattr(torch.optim, name)(params, lr=1e-3, weight_decay=0.01)\n",
        "class Adam:\n    def __init__(self, params, weight_decay):\n        pass\n\nopt = Adam(params, weight_decay=0.1)\n",
        '"""Use torch.optim.Adam(params, weight_decay=0.1) and see."""\n# torch.optim.Adam(params, weight_decay=0.1)\n',
        "import torch\nopt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)\n",
        "import torch\nopt = torch.optim.Adam([{'params': a, 'weight_decay': 0.0}, {'params': b}], lr=1e-3)\n",
        "import torch\nwd = 0.0\nopt = torch.optim.Adam(params, lr=1e-3, weight_decay=wd)\n",
    )
    INVALID = (
        Invalid(
            "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)\n",
            line=2,
            fixed="import torch\nopt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)\n",
        ),
        Invalid(
            "from torch.optim import Adam as A\nopt = A(params, 1e-3, (0.9, 0.999), 1e-8, 1e-2)\n",
            line=2,
            fixed="from torch.optim import AdamW\nopt = AdamW(params, 1e-3, (0.9, 0.999), 1e-8, 1e-2)\n",
        ),
        Invalid(
            "from torch.optim import Adam, SGD\nfast = Adam(head, weight_decay=1e-4)\nslow = Adam(body)\n",
            line=2,
            fixed="from torch.optim import Adam, AdamW, SGD\nfast = AdamW(head, weight_decay=1e-4)\nslow = Adam(body)\n",
        ),
        Invalid(
            "from torch.optim import AdamW\nfrom torch.optim import SGD, Adam\nopt = Adam(params, weight_decay=1e-4)\n",
            fixed="from torch.optim import AdamW\nfrom torch.optim import SGD\nopt = AdamW(params, weight_decay=1e-4)\n",
        ),
        Invalid("import torch.optim as optim\nopt = optim.RMSprop(params, lr=1e-2, weight_decay=self.hparams.weight_decay)\n"),
        Invalid("from torch import optim\nopt = optim.Adagrad(params, weight_decay=cfg.wd)\n"),
        Invalid(
            "import torch\nopt = torch.optim.Adam([{'params': a, 'weight_decay': wd}, {'params': b}])\n",
            fixed="import torch\nopt = torch.optim.AdamW([{'params': a, 'weight_decay': wd}, {'params': b}], weight_decay=0.0)\n",
        ),
        Invalid(
            "import functools, torch\nmake = functools.partial(torch.optim.Adam, lr=1e-3, weight_decay=1e-4)\n",
            fixed="import functools, torch\nmake = functools.partial(torch.optim.AdamW, lr=1e-3, weight_decay=1e-4)\n",
        ),
        Invalid(
            "from functools import partial\nfrom torch.optim import Adam\nmake = partial(Adam, lr=1e-3)\nopt = make(params, weight_decay=1e-4)\n",
            line=4,
            fixed="from functools import partial\nfrom torch.optim import AdamW\nmake = partial(AdamW, lr=1e-3)\nopt = make(params, weight_decay=1e-4)\n",
        ),
        Invalid(
            "import torch\nopt = torch.optim.RAdam(params, weight_decay=0.1, decoupled_weight_decay=False)\n",
            fixed="import torch\nopt = torch.optim.RAdam(params, weight_decay=0.1, decoupled_weight_decay=True)\n",
        ),
        Invalid(
            "import torch\nopt = torch.optim.NAdam(\n    params,\n    weight_decay=1e-4,  # from the paper\n)\n",
            line=2,
            fixed="import torch\nopt = torch.optim.NAdam(\n    params,\n    weight_decay=1e-4,  # from the paper\n    decoupled_weight_decay=True,\n)\n",
        ),
        Invalid("import torch\ndef build(params, wd):\n    return torch.optim.Adamax(params, weight_decay=wd, **extra)\n", line=3),
        Invalid(
            "from torch.optim import *\nopt = NAdam(params, lr=2e-3, weight_decay=1e-4)\n",
            fixed="from torch.optim import *\nopt = NAdam(params, lr=2e-3, weight_decay=1e-4, decoupled_weight_decay=True)\n",
        ),
    )

    def check(self) -> Iterator[Report]:
        for site in self.ctx.shared(optimizer_sites):
            if any(site.kind(group) is DecayKind.COUPLED_ADAPTIVE and site.decays(group) for group in site.scopes()):
                yield Report(site.call, {"optimizer": site.name}, fix=functools.partial(decouple, site, self.ctx))


class BlanketDecay(LintRule):
    """Every parameter of a module handed to an optimizer whose decay is non-zero."""

    CODE = "WD210"
    NODES = (cst.Call,)
    VOCABULARY = BY_CODE[CODE]
    VALID = (
        "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3)\n",
        "import torch\nopt = torch.optim.AdamW(model.parameters(), weight_decay=0.0)\n",
        "import torch\nopt = torch.optim.AdamW(groups, lr=3e-4)\n",
        "import torch\nopt = torch.optim.SGD([p for p in model.parameters() if p.ndim >= 2], lr=0.1, weight_decay=5e-4)\n",
        "import torch\nopt = torch.optim.AdamW([{'params': model.parameters(), 'weight_decay': 0.05}])\n",
        "import torch\nopt = torch.optim.AdamW(model.parameters(), lr=3e-4, **cfg)\n",
        "import torch\nopt = torch.optim.Rprop(model.parameters())\n",
        "import torch\nopt = torch.optim.SGD(model.named_parameters(), lr=0.1, weight_decay=5e-4)\n",
    )
    INVALID = (
        Invalid(
            "import torch\nopt = torch.optim.AdamW(model.parameters(), lr=3e-4)\n",
            line=2,
            fixed="import torch\nimport wd_guard\nopt = torch.optim.AdamW(wd_guard.param_groups(model, weight_decay=0.01), lr=3e-4)\n",
        ),
        Invalid(
            '"""Train."""\nfrom torch import optim\n\n\ndef build(self):\n    return optim.SGD(self.parameters(), lr=0.1, weight_decay=5e-4)\n',
            line=6,
            fixed='"""Train."""\nimport wd_guard\nfrom torch import optim\n\n\ndef build(self):\n'
            "    return optim.SGD(wd_guard.param_groups(self, weight_decay=5e-4), lr=0.1)\n",
        ),
        Invalid(
            "import torch\nopt = torch.optim.AdamW(\n    self.model.parameters(),\n    lr=3e-4,\n)\n",
            line=3,
            fixed="import torch\nimport wd_guard\nopt = torch.optim.AdamW(\n    wd_guard.param_groups(self.model, weight_decay=0.01),\n    lr=3e-4,\n)\n",
        ),
        Invalid(
            "import torch\nimport wd_guard\nopt = torch.optim.AdamW(filter(lambda p: p.requires_grad, net.parameters()), lr=1e-4)\n",
            fixed="import torch\nimport wd_guard\nopt = torch.optim.AdamW(wd_guard.param_groups(net, weight_decay=0.01), lr=1e-4)\n",
        ),
        Invalid(
            "from wd_guard import param_groups\nimport torch\nopt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], 0.1, 0.9, 0, 1e-4)\n",
            fixed="from wd_guard import param_groups\nimport torch\nopt = torch.optim.SGD(param_groups(net, weight_decay=1e-4), 0.1, 0.9, 0)\n",
        ),
        Invalid("import torch\nparams = list(model.parameters())\nopt = torch.optim.SGD(params, 0.1, 0.9, 0, 1e-4)\n", line=3),
        Invalid("import torch\nopt = torch.optim.AdamW([{'params': model.backbone.parameters(), 'lr': 1e-5}], lr=1e-3)\n"),
    )

    def check(self) -> Iterator[Report]:
        for site in self.ctx.shared(optimizer_sites):
            for group, params in _params_of(site):
                source = blanket_source(params, site.names)
                if source is not None and site.decays(group):
                    values = {"call": self.ctx.code(source), "optimizer": site.name, "weight_decay": site.decay_text(group, self.ctx)}
                    fix = functools.partial(use_param_groups, site, source, self.ctx) if group is None and _inline(params, source, site.names) else None
                    yield Report(params, values, fix)


def _params_of(site: Site) -> Iterator[tuple]:
    """``(group, parameters expression)`` pairs whose decay is not set by the group itself."""
    if site.groups is None:
        arg = site.arguments.get("params")
        if arg is not None:
            yield None, arg.value
        return
    for group in site.groups:
        if not group.open and group.params is not None and "weight_decay" not in group.options:
            yield group, group.params


def _inline(params: cst.BaseExpression, source: cst.Call, names: Names) -> bool:
    """Whether the parameters are written in the call itself, not through a variable."""
    return names.follow(params) is params


def blanket_source(expr: cst.BaseExpression, names: Names) -> Optional[cst.Call]:
    """The ``x.parameters()`` call when ``expr`` hands over every trainable parameter of ``x``:
    the call itself, ``list(...)``, ``filter(lambda p: p.requires_grad, ...)`` or
    ``[p for p in ... if p.requires_grad]``, directly or through a name bound once."""
    expr = names.follow(expr)
    if _is_parameters_call(expr):
        return expr  # type: ignore[return-value]
    if isinstance(expr, cst.Call) and len(expr.args) == 2 and names.is_builtin(expr.func, "filter"):
        test, iterable = expr.args
        if _is_requires_grad_lambda(test.value) and not iterable.keyword and not iterable.star:
            return blanket_source(iterable.value, names)
    if isinstance(expr, cst.Call) and len(expr.args) == 1 and not expr.args[0].keyword and not expr.args[0].star:
        if names.is_builtin(expr.func, "list") or names.is_builtin(expr.func, "tuple"):
            return blanket_source(expr.args[0].value, names)
    if isinstance(expr, (cst.ListComp, cst.GeneratorExp)) and _passes_through(expr):
        return blanket_source(expr.for_in.iter, names)
    return None


def _is_parameters_call(expr: cst.BaseExpression) -> bool:
    if not (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "parameters"):
        return False
    if not expr.args:
        return True
    (arg,) = expr.args if len(expr.args) == 1 else (None,)
    return arg is not None and arg.keyword is not None and arg.keyword.value == "recurse" and _is_name(arg.value, "True")


def _is_name(expr: cst.BaseExpression, name: str) -> bool:
    return isinstance(expr, cst.Name) and expr.value == name


def _is_requires_grad(test: cst.BaseExpression, var: str) -> bool:
    """``p.requires_grad`` (or ``is True`` / ``== True``) for the variable ``var``."""
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1:
        target = test.comparisons[0]
        if isinstance(target.operator, (cst.Is, cst.Equal)) and _is_name(target.comparator, "True"):
            test = test.left
    return isinstance(test, cst.Attribute) and test.attr.value == "requires_grad" and _is_name(test.value, var)


def _is_requires_grad_lambda(expr: cst.BaseExpression) -> bool:
    if not isinstance(expr, cst.Lambda):
        return False
    params = expr.params
    if len(params.params) != 1 or params.posonly_params or params.kwonly_params or params.star_kwarg:
        return False
    return _is_requires_grad(expr.body, params.params[0].name.value)


def _passes_through(comp: cst.BaseComp) -> bool:
    """``[p for p in xs]`` or ``[p for p in xs if p.requires_grad]``: every trainable item."""
    for_in = comp.for_in
    if for_in.inner_for_in is not None or for_in.asynchronous is not None:
        return False
    if not (isinstance(for_in.target, cst.Name) and _is_name(comp.elt, for_in.target.value)):
        return False
    return all(_is_requires_grad(if_.test, for_in.target.value) for if_ in for_in.ifs)


class ExcessiveDecay(LintRule):
    """``lr * weight_decay`` of 0.1 or more, both written as literals (defaults fill gaps)."""

    CODE = "WD302"
    NODES = (cst.Call,)
    VOCABULARY = BY_CODE[CODE]
    THRESHOLD = 0.1
    VALID = (
        "import torch\nopt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)\n",
        "import torch\nopt = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.1)\n",
        "import torch\nopt = torch.optim.SGD(params, lr=args.lr, weight_decay=0.5)\n",
        "import torch\nopt = torch.optim.SGD([{'params': a, 'weight_decay': 0.0}], lr=1.0, weight_decay=0.5)\n",
        "import torch\nopt = torch.optim.Rprop(params, lr=10.0)\n",
    )
    INVALID = (
        Invalid("import torch\nopt = torch.optim.SGD(model.parameters(), lr=1.0, weight_decay=0.5)\n", line=2),
        Invalid("import torch\nopt = torch.optim.AdamW(params, lr=10.0)\n"),
        Invalid("import torch\nopt = torch.optim.SGD(params, 0.5, 0.9, 0, 0.2)\n"),
        Invalid("import torch\nLR = 1.0\nopt = torch.optim.SGD([{'params': a, 'weight_decay': 0.1 * 2}], lr=LR)\n"),
        Invalid("import torch\nopt = torch.optim.Adam(params, weight_decay=100)\n"),
    )

    def check(self) -> Iterator[Report]:
        for site in self.ctx.shared(optimizer_sites):
            if site.fact.decay not in DECAYING:
                continue
            products = [p for p in (_product(site, group) for group in site.scopes()) if p is not None]
            worst = max(products, default=0.0)
            if worst >= self.THRESHOLD:
                yield Report(site.call, {"product": f"{worst:.3g}"})


def _product(site: Site, group: Optional[Group]) -> Optional[float]:
    lr, wd = site.number("lr", group), site.number("weight_decay", group)
    return None if lr is None or wd is None else lr * wd
