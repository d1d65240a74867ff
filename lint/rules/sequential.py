"""The opt-in static heuristic for scale-invariant weights (WD204).

A Linear or Conv layer whose output goes straight into a BatchNorm: next to each other in
``nn.Sequential``, or in a ``forward`` body as ``self.bn(self.conv(x))`` or ``x =
self.conv(x)`` followed by ``x = self.bn(x)`` (the layers assigned as ``self.conv = ...`` in
the class). Only in a file that builds an optimizer with non-zero decay: elsewhere nothing
says the weight is decayed at all.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Sequence

import libcst as cst

from wd_guard.lint.analysis.names import Names, dotted
from wd_guard.lint.analysis.walk import iter_nodes
from wd_guard.lint.intake.vocabulary import BATCH_NORMS, BY_CODE, LAYERS
from wd_guard.lint.rules.base import Invalid, LintRule, Report
from wd_guard.lint.rules.sites import iter_decaying, optimizer_sites

_SEQUENTIAL = "Sequential"
_FORWARD = "forward"
_OPTIMIZER = "import torch\nopt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=1e-4)\n"


def torch_nn_class(expr: cst.BaseExpression, names: Names) -> Optional[str]:
    """``'Conv2d'`` for ``nn.Conv2d``, ``torch.nn.Conv2d``, ``torch.nn.modules.conv.Conv2d``
    or an imported ``Conv2d`` from one of them; None for anything else."""
    qualified = names.qualified(expr)
    if qualified is None or not qualified.startswith("torch.nn."):
        return None
    module, _, name = qualified.rpartition(".")
    return name if module == "torch.nn" or module.startswith("torch.nn.modules") else None


class DecayedScaleInvariant(LintRule):
    """A Linear or Conv layer followed directly by a BatchNorm, in a file that decays weights."""

    CODE = "WD204"
    NODES = (cst.Call, cst.ClassDef, cst.Assign, cst.FunctionDef)
    VOCABULARY = BY_CODE[CODE]
    VALID = (
        "import torch.nn as nn\nblock = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.BatchNorm2d(8))\n" + _OPTIMIZER,
        "import torch.nn as nn\nblock = nn.Sequential(nn.BatchNorm1d(8), nn.Linear(8, 8))\n" + _OPTIMIZER,
        "from mylib import Sequential, Linear, BatchNorm1d\nblock = Sequential(Linear(8, 8), BatchNorm1d(8))\n" + _OPTIMIZER,
        "import torch.nn as nn\nblock = nn.Sequential(*layers, nn.BatchNorm1d(8))\n" + _OPTIMIZER,
        "import torch.nn as nn\nblock = nn.Sequential(nn.Conv2d(64, 64, 3, bias=False), nn.BatchNorm2d(64))\n",
        "import torch\nimport torch.nn as nn\nblock = nn.Sequential(nn.Conv2d(64, 64, 3), nn.BatchNorm2d(64))\n"
        "opt = torch.optim.Adam(block.parameters(), lr=2e-4, betas=(0.5, 0.999))\n",
        "import torch.nn as nn\nclass Block(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 8, 3)\n        self.bn = nn.BatchNorm2d(8)\n"
        "    def forward(self, x):\n        return self.conv(self.bn(x))\n" + _OPTIMIZER,
        "import torch.nn as nn\nclass Block(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.conv = nn.Conv2d(3, 8, 3)\n        self.bn = nn.BatchNorm2d(8)\n"
        "    def forward(self, x):\n        y = self.conv(x)\n        x = self.bn(x)\n        return x + y\n" + _OPTIMIZER,
    )
    INVALID = (
        Invalid("import torch.nn as nn\nblock = nn.Sequential(nn.Conv2d(64, 64, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU())\n" + _OPTIMIZER, line=2),
        Invalid("import torch\nhead = torch.nn.Sequential(\n    torch.nn.Linear(512, 256),\n    torch.nn.BatchNorm1d(256),\n)\n" + _OPTIMIZER[13:], line=3),
        Invalid(
            "from collections import OrderedDict\nfrom torch import nn\n"
            "stem = nn.Sequential(OrderedDict([('conv', nn.Conv2d(3, 32, 3)), ('bn', nn.SyncBatchNorm(32))]))\n" + _OPTIMIZER,
            line=3,
        ),
        Invalid(
            "import torch.nn as nn\nclass Block(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.conv = nn.Conv2d(3, 8, 3, bias=False)\n        self.bn = nn.BatchNorm2d(8)\n"
            "    def forward(self, x):\n        return self.bn(self.conv(x)).relu()\n" + _OPTIMIZER,
            line=8,
        ),
        Invalid(
            "from torch import nn\nclass Block(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.fc = nn.Linear(8, 8)\n        self.norm = nn.BatchNorm1d(8)\n"
            "    def forward(self, x):\n        x = self.fc(x)\n        x = self.norm(x)\n        return x\n" + _OPTIMIZER,
            line=8,
        ),
    )

    def check(self) -> Iterator[Report]:
        if not any(iter_decaying(self.ctx.shared(optimizer_sites))):
            return
        for call in self.ctx.nodes(cst.Call):
            names = self.ctx.names.at(call)
            if torch_nn_class(call.func, names) != _SEQUENTIAL:
                continue
            layers = _layers(call, names)
            for layer, following in zip(layers, layers[1:]):
                if _class_of(layer, names) in LAYERS and _class_of(following, names) in BATCH_NORMS:
                    yield Report(layer)
        for function in self.ctx.nodes(cst.FunctionDef):
            if function.name.value == _FORWARD:
                yield from self._forward(function)

    def _forward(self, function: cst.FunctionDef) -> Iterator[Report]:
        scope = self.ctx.names.inside(function).scope.parent
        owner = scope.node if scope is not None else None
        if not isinstance(owner, cst.ClassDef):
            return
        modules = _self_modules(owner, self.ctx.names.inside(owner))
        kinds = lambda call: modules.get(dotted(call.func) or "") if isinstance(call, cst.Call) else None  # noqa: E731
        for node in iter_nodes(function.body):
            if isinstance(node, cst.Call) and kinds(node) in BATCH_NORMS and len(node.args) == 1:
                inner = node.args[0].value
                if kinds(inner) in LAYERS:
                    yield Report(inner)
            if isinstance(node, (cst.IndentedBlock, cst.Module)):
                yield from _consecutive(node.body, kinds)


def _self_modules(cls: cst.ClassDef, names: Names) -> Dict[str, Optional[str]]:
    """``self.x`` -> the torch.nn class assigned to it in the class's methods (None when it is
    assigned more than once or something else)."""
    found: Dict[str, Optional[str]] = {}
    for node in iter_nodes(cls.body):
        if isinstance(node, cst.Assign) and len(node.targets) == 1:
            target = dotted(node.targets[0].target)
            if target is not None and target.startswith("self."):
                kind = _class_of(node.value, names)
                found[target] = None if target in found else kind
    return found


def _consecutive(statements: Sequence[cst.BaseStatement], kinds) -> Iterator[Report]:
    """``x = self.conv(x)`` directly followed by ``x = self.bn(x)``."""
    previous: Optional[cst.Assign] = None
    for line in statements:
        statement = line.body[0] if isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1 else None
        current = statement if isinstance(statement, cst.Assign) and len(statement.targets) == 1 else None
        if previous is not None and current is not None and isinstance(current.value, cst.Call):
            target = previous.targets[0].target
            args = current.value.args
            feeds = isinstance(target, cst.Name) and len(args) == 1 and isinstance(args[0].value, cst.Name) and args[0].value.value == target.value
            if feeds and kinds(previous.value) in LAYERS and kinds(current.value) in BATCH_NORMS:
                yield Report(previous.value)
        previous = current


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
