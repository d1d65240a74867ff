"""The opt-in static heuristic for scale-invariant weights (WD204)."""

from __future__ import annotations

from typing import Iterator, List, Optional, Sequence

import libcst as cst

from wd_guard.lint.analysis.names import Names
from wd_guard.lint.intake.vocabulary import BATCH_NORMS, BY_CODE, LAYERS
from wd_guard.lint.rules.base import Invalid, LintRule, Report

_SEQUENTIAL = "Sequential"
def torch_nn_class(expr: cst.BaseExpression, names: Names) -> Optional[str]:
    """``'Conv2d'`` for ``nn.Conv2d``, ``torch.nn.Conv2d``, ``torch.nn.modules.conv.Conv2d``
    or an imported ``Conv2d`` from one of them; None for anything else."""
    qualified = names.qualified(expr)
    if qualified is None or not qualified.startswith("torch.nn."):
        return None
    module, _, name = qualified.rpartition(".")
    return name if module == "torch.nn" or module.startswith("torch.nn.modules") else None


class DecayedScaleInvariant(LintRule):
    """A Linear or Conv layer followed directly by a BatchNorm inside ``nn.Sequential``."""

    CODE = "WD204"
    NODES = (cst.Call,)
    VOCABULARY = BY_CODE[CODE]
    VALID = (
        "import torch.nn as nn\nblock = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.BatchNorm2d(8))\n",
        "import torch.nn as nn\nblock = nn.Sequential(nn.BatchNorm1d(8), nn.Linear(8, 8))\n",
        "from mylib import Sequential, Linear, BatchNorm1d\nblock = Sequential(Linear(8, 8), BatchNorm1d(8))\n",
        "import torch.nn as nn\nblock = nn.Sequential(*layers, nn.BatchNorm1d(8))\n",
    )
    INVALID = (
        Invalid("import torch.nn as nn\nblock = nn.Sequential(nn.Conv2d(64, 64, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU())\n", line=2),
        Invalid("import torch\nhead = torch.nn.Sequential(\n    torch.nn.Linear(512, 256),\n    torch.nn.BatchNorm1d(256),\n)\n", line=3),
        Invalid(
            "from collections import OrderedDict\nfrom torch import nn\n"
            "stem = nn.Sequential(OrderedDict([('conv', nn.Conv2d(3, 32, 3)), ('bn', nn.SyncBatchNorm(32))]))\n",
            line=3,
        ),
    )

    def check(self) -> Iterator[Report]:
        for call in self.ctx.nodes(cst.Call):
            names = self.ctx.names.at(call)
            if torch_nn_class(call.func, names) != _SEQUENTIAL:
                continue
            layers = _layers(call, names)
            for layer, following in zip(layers, layers[1:]):
                if _class_of(layer, names) in LAYERS and _class_of(following, names) in BATCH_NORMS:
                    yield Report(layer)


def _class_of(expr: Optional[cst.BaseExpression], names: Names) -> Optional[str]:
    return torch_nn_class(expr.func, names) if isinstance(expr, cst.Call) else None


def _layers(call: cst.Call, names: Names) -> Sequence[Optional[cst.BaseExpression]]:
    """The modules of ``nn.Sequential(...)`` in order; None where one cannot be seen."""
    args = call.args
    if len(args) == 1 and not args[0].star and isinstance(args[0].value, cst.Call):
        inner = args[0].value
        if names.qualified(inner.func) == "collections.OrderedDict" and len(inner.args) == 1:
            return _ordered_dict_layers(inner.args[0].value)
    return [None if arg.star or arg.keyword else arg.value for arg in args]


def _ordered_dict_layers(items: cst.BaseExpression) -> List[Optional[cst.BaseExpression]]:
    if not isinstance(items, (cst.List, cst.Tuple)):
        return []
    layers: List[Optional[cst.BaseExpression]] = []
    for element in items.elements:
        pair = element.value
        is_pair = isinstance(element, cst.Element) and isinstance(pair, cst.Tuple) and len(pair.elements) == 2
        layers.append(pair.elements[1].value if is_pair else None)
    return layers
