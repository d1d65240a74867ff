"""Rules about an explicit L2 penalty added to a loss (WD401, WD402).

A penalty is an L2 term of a *parameter*: a loop variable over ``x.parameters()`` or
``x.named_parameters()``, or a ``.weight`` attribute. Squared norms, ``p.pow(2).sum()``,
``(p ** 2).sum()``, ``torch.norm(p)``, ``torch.linalg.norm(p)`` and their sums over the
parameters count, directly or through a variable or a function that computes them. The rules
report where a penalty is added to something else (the loss), in files that also build an
optimizer with non-zero decay (WD401) or an adaptive one (WD402). Norms of activations or of
gradients (a gradient penalty) are not parameters and never count.
"""

from __future__ import annotations

from typing import Dict, FrozenSet, Iterator, List, Optional, Set

import libcst as cst

from wd_guard.lint.analysis.names import NameTable, Names, string_value
from wd_guard.lint.analysis.walk import iter_nodes
from wd_guard.lint.intake.vocabulary import BY_CODE, NORM_METHODS, NORMS, POWS, SQUARE_METHODS, SQUARES
from wd_guard.lint.rules.base import FileContext, Invalid, LintRule, Report
from wd_guard.lint.rules.sites import iter_decaying, optimizer_sites

_REDUCTIONS = frozenset({"sum", "mean"})
_TORCH_REDUCTIONS = frozenset({"torch.sum", "torch.mean"})
_RESHAPES = frozenset({"view", "flatten", "reshape", "float", "double", "contiguous", "ravel"})
_ZEROS = frozenset({"torch.tensor", "torch.as_tensor", "torch.scalar_tensor", "torch.zeros", "torch.zeros_like"})
_KNOWN_LAST = frozenset(name.rsplit(".", 1)[-1] for name in NORMS | SQUARES | POWS | _TORCH_REDUCTIONS | _ZEROS)
_DEPTH = 48
Params = FrozenSet[str]
NO_PARAMS: Params = frozenset()


class _AnyName(frozenset):
    """Parameters that contain every name: to ask whether an expression has a term's shape."""

    def __contains__(self, item: object) -> bool:
        return True


ANY_NAME: Params = _AnyName()
# How one binding of a name relates to a penalty.
_ZERO, _PENALTY, _ACCUMULATE, _OTHER = "zero", "penalty", "accumulate", "other"


class Penalties:
    """Where one file adds an L2 penalty on parameters to something else."""

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx
        self.table: NameTable = ctx.names
        # Resolution from the statement being read; set by ``_enter`` for each one.
        self.names: Names = self.table.at(ctx.module)
        self.scope: Dict[cst.CSTNode, Params] = {}  # nodes inside loops over parameters
        self.variables: Set[str] = set()
        self.functions: Set[str] = set()
        self._returns: Dict[cst.FunctionDef, List[cst.Return]] = {}
        self.active = self._has_term_shapes()
        if self.active:
            self._scan_loops()
            self._find_variables_and_functions()

    def _enter(self, node: cst.CSTNode) -> Params:
        """Read names as seen from ``node``; the parameters its enclosing loops bind."""
        self.names = self.table.at(node)
        return self.scope.get(node, NO_PARAMS)

    def _has_term_shapes(self) -> bool:
        """Whether any expression looks like an L2 term of some name or ``.weight``: files
        without one skip the analysis (most files that build optimizers)."""
        candidates = (*self.ctx.nodes(cst.Call), *self.ctx.nodes(cst.BinaryOperation))
        return any(self._enter(node) is not None and self.is_term(node, ANY_NAME) for node in candidates)

    # -- what is a parameter -------------------------------------------------------------

    def loop_params(self, target: cst.BaseExpression, iterable: cst.BaseExpression) -> Params:
        """Names a loop binds to parameters when it runs over ``iterable``."""
        iterable = self.names.follow(iterable)
        if isinstance(iterable, cst.Call) and isinstance(iterable.func, cst.Attribute):
            method = iterable.func.attr.value
            if method == "parameters" and isinstance(target, cst.Name):
                return frozenset({target.value})
            if method == "named_parameters" and isinstance(target, (cst.Tuple, cst.List)) and len(target.elements) == 2:
                second = target.elements[1].value
                return frozenset({second.value}) if isinstance(second, cst.Name) else NO_PARAMS
        if isinstance(iterable, cst.Call) and iterable.args and self._is_wrapper(iterable):
            return self.loop_params(target, iterable.args[-1].value)
        if isinstance(iterable, (cst.List, cst.Tuple)) and iterable.elements and isinstance(target, cst.Name):
            if all(self.is_param(element.value, NO_PARAMS) for element in iterable.elements):
                return frozenset({target.value})
        return NO_PARAMS

    def _is_wrapper(self, call: cst.Call) -> bool:
        return any(self.names.is_builtin(call.func, name) for name in ("filter", "list", "tuple"))

    def is_param(self, expr: cst.BaseExpression, params: Params) -> bool:
        if isinstance(expr, cst.Name):
            return expr.value in params
        if isinstance(expr, cst.Attribute):
            return expr.attr.value == "weight"
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value in _RESHAPES:
            return self.is_param(expr.func.value, params)
        return False

    # -- what is an L2 term ----------------------------------------------------------------

    def _call_name(self, expr: cst.BaseExpression) -> Optional[str]:
        """The qualified name of a call of one of the torch functions this module knows."""
        if not isinstance(expr, cst.Call):
            return None
        func = expr.func
        last = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else None
        return self.names.qualified(func) if last in _KNOWN_LAST else None

    def squared(self, expr: cst.BaseExpression) -> Optional[cst.BaseExpression]:
        """``a`` when ``expr`` is ``a ** 2``, ``a.pow(2)``, ``torch.pow(a, 2)``, ``torch.square(a)``
        or ``a.square()``."""
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Power):
            return expr.left if self.names.number(expr.right) == 2 else None
        if not isinstance(expr, cst.Call):
            return None
        args = [arg for arg in expr.args if not arg.star]
        name = self._call_name(expr)
        # ``torch.square(a)`` and ``torch.pow(a, 2)`` end like the methods but are functions.
        if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in SQUARE_METHODS and name not in SQUARES | POWS:
            exponent = args[0].value if args else None
            if expr.func.attr.value == "square" and not args:
                return expr.func.value
            return expr.func.value if exponent is not None and self.names.number(exponent) == 2 else None
        if name in SQUARES and len(args) == 1:
            return args[0].value
        if name in POWS and len(args) == 2 and self.names.number(args[1].value) == 2:
            return args[0].value
        return None

    def is_norm(self, expr: cst.BaseExpression, params: Params) -> bool:
        """An L2 (or Frobenius) norm of a parameter."""
        if not isinstance(expr, cst.Call):
            return False
        args = list(expr.args)
        if any(arg.star for arg in args):
            return False
        if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in NORM_METHODS and self.names.qualified(expr.func) not in NORMS:
            subject, rest = expr.func.value, args
        elif self._call_name(expr) in NORMS and args and args[0].keyword is None:
            subject, rest = args[0].value, args[1:]
        else:
            return False
        return self.is_param(subject, params) and self._is_l2_order(rest)

    def _is_l2_order(self, args: List[cst.Arg]) -> bool:
        order = next((arg.value for arg in args if arg.keyword is not None and arg.keyword.value in ("p", "ord")), None)
        if order is None and args and args[0].keyword is None:
            order = args[0].value
        if order is None or (isinstance(order, cst.Name) and order.value == "None"):
            return True
        return self.names.number(order) == 2 or string_value(order) == "fro"

    def is_term(self, expr: cst.BaseExpression, params: Params) -> bool:
        """A scalar L2 term of one parameter: a norm, a squared norm, a sum of squares."""
        if self.is_norm(expr, params):
            return True
        base = self.squared(expr)
        if base is not None and self.is_norm(base, params):
            return True
        reduced = self._reduced(expr)
        if reduced is None:
            return False
        base = self.squared(reduced)
        return base is not None and (self.is_param(base, params) or self.is_norm(base, params))

    def _reduced(self, expr: cst.BaseExpression) -> Optional[cst.BaseExpression]:
        """``a`` when ``expr`` is ``a.sum()``, ``a.mean()``, ``torch.sum(a)`` or ``torch.mean(a)``."""
        if not isinstance(expr, cst.Call):
            return None
        if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in _REDUCTIONS and not expr.args:
            return expr.func.value
        if self._call_name(expr) in _TORCH_REDUCTIONS and len(expr.args) == 1 and not expr.args[0].star:
            return expr.args[0].value
        return None

    # -- what is a penalty -----------------------------------------------------------------

    def is_penalty(self, expr: cst.BaseExpression, params: Params, depth: int = 0) -> bool:
        """An L2 penalty: a term, a sum of terms over parameters, a scaled penalty, a sum of
        penalties, a penalty variable or a call of a penalty function."""
        if depth > _DEPTH:
            return False
        if self.is_term(expr, params):
            return True
        if isinstance(expr, cst.BinaryOperation):
            return self._is_penalty_operation(expr, params, depth + 1)
        if isinstance(expr, cst.Name):
            return expr.value in self.variables
        if isinstance(expr, cst.Call):
            return self._is_penalty_call(expr, params, depth + 1)
        return False

    def _is_penalty_operation(self, expr: cst.BinaryOperation, params: Params, depth: int) -> bool:
        left = self.is_penalty(expr.left, params, depth)
        if isinstance(expr.operator, cst.Multiply):
            return left or self.is_penalty(expr.right, params, depth)
        if isinstance(expr.operator, cst.Divide):
            return left
        if isinstance(expr.operator, cst.Add):
            return left and self.is_penalty(expr.right, params, depth)
        return False

    def _is_penalty_call(self, call: cst.Call, params: Params, depth: int) -> bool:
        if self.names.is_builtin(call.func, "sum") and call.args:
            items = call.args[0].value
            if isinstance(items, (cst.GeneratorExp, cst.ListComp)):
                return self.is_penalty(items.elt, params | self._comprehension_params(items.for_in), depth)
            if isinstance(items, (cst.List, cst.Tuple)) and items.elements:
                return all(self.is_penalty(element.value, params, depth) for element in items.elements)
        function = call.func.attr if isinstance(call.func, cst.Attribute) else call.func
        return isinstance(function, cst.Name) and function.value in self.functions

    def _comprehension_params(self, for_in: Optional[cst.CompFor]) -> Params:
        params = NO_PARAMS
        while for_in is not None:
            params |= self.loop_params(for_in.target, for_in.iter)
            for_in = for_in.inner_for_in
        return params

    # -- variables, functions and loops ------------------------------------------------------

    def _scan_loops(self) -> None:
        for loop in self.ctx.nodes(cst.For):
            self._enter(loop)
            params = self.loop_params(loop.target, loop.iter)
            if params:
                for node in iter_nodes(loop.body):
                    self.scope[node] = self.scope.get(node, NO_PARAMS) | params

    def _find_variables_and_functions(self) -> None:
        for _ in range(4):  # a penalty variable may be built from another one
            variables, functions = self._variables(), self._functions()
            if variables == self.variables and functions == self.functions:
                return
            self.variables, self.functions = variables, functions

    def _variables(self) -> Set[str]:
        """Names whose every binding starts a penalty at zero, assigns one or adds to one."""
        verdicts: Dict[str, List[str]] = {}
        for node in self.ctx.nodes(cst.Assign):
            if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
                name = node.targets[0].target.value
                verdicts.setdefault(name, []).append(self._assignment_kind(name, node.value, self._enter(node)))
        for node in self.ctx.nodes(cst.AugAssign):
            if isinstance(node.target, cst.Name):
                adds = isinstance(node.operator, cst.AddAssign) and self.is_penalty(node.value, self._enter(node))
                verdicts.setdefault(node.target.value, []).append(_ACCUMULATE if adds else _OTHER)
        return {name for name, kinds in verdicts.items() if self._is_variable(name, kinds)}

    def _is_variable(self, name: str, kinds: List[str]) -> bool:
        # Adding to a name proves nothing by itself (``loss = loss + penalty`` adds to a loss):
        # the name must also start at zero or be assigned a penalty outright.
        started = _ZERO in kinds or _PENALTY in kinds
        grown = _PENALTY in kinds or _ACCUMULATE in kinds
        complete = len(kinds) == len(self.table.bindings(name)) and not self.table.is_imported(name)
        return started and grown and _OTHER not in kinds and complete

    def _assignment_kind(self, name: str, value: cst.BaseExpression, params: Params) -> str:
        if self._is_zero_start(value):
            return _ZERO
        if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Add):
            for own, other in ((value.left, value.right), (value.right, value.left)):
                if isinstance(own, cst.Name) and own.value == name:
                    return _ACCUMULATE if self.is_penalty(other, params) else _OTHER
        return _PENALTY if self.is_penalty(value, params) else _OTHER

    def _is_zero_start(self, value: cst.BaseExpression) -> bool:
        if self.names.is_zero(value):
            return True
        if not isinstance(value, cst.Call) or self._call_name(value) not in _ZEROS:
            return False
        first = value.args[0].value if value.args and not value.args[0].keyword else None
        return self._call_name(value) in ("torch.zeros", "torch.zeros_like") or (first is not None and self.names.is_zero(first))

    def _functions(self) -> Set[str]:
        candidates = {function.name.value for function in self.ctx.nodes(cst.FunctionDef)}
        # Every definition of the name must return a penalty: methods of several classes may
        # share a name, and a call cannot tell which one it reaches.
        return {
            name
            for name in candidates
            if not self.table.is_imported(name) and all(self._returns_penalty(b) for b in self.table.bindings(name))
        }

    def _returns_penalty(self, binding: Optional[cst.CSTNode]) -> bool:
        if not isinstance(binding, cst.FunctionDef):
            return False
        if binding not in self._returns:
            self._returns[binding] = [n for n in iter_nodes(binding.body) if isinstance(n, cst.Return) and n.value is not None]
        returns = self._returns[binding]
        self.names = self.table.inside(binding)
        return bool(returns) and all(self.is_penalty(node.value, self.scope.get(node, NO_PARAMS)) for node in returns)

    # -- where a penalty is added to a loss ------------------------------------------------

    def additions(self) -> List[cst.BaseExpression]:
        """The penalty operands added to something that is not itself a penalty."""
        found: List[cst.BaseExpression] = []
        if not self.active:
            return found
        for node in self.ctx.nodes(cst.AugAssign):
            if isinstance(node.operator, cst.AddAssign) and not self._accumulates(node.target):
                if self.is_penalty(node.value, self._enter(node)):
                    found.append(node.value)
        for node in self.ctx.nodes(cst.BinaryOperation):
            if isinstance(node.operator, cst.Add):
                params = self._enter(node)
                left, right = self.is_penalty(node.left, params), self.is_penalty(node.right, params)
                if left != right:
                    found.append(node.left if left else node.right)
        return found

    def _accumulates(self, target: cst.BaseExpression) -> bool:
        return isinstance(target, cst.Name) and target.value in self.variables


def penalty_additions(ctx: FileContext) -> List[cst.BaseExpression]:
    """Shared by WD401 and WD402: where the file adds an L2 penalty to a loss."""
    return Penalties(ctx).additions()


_NODES = (cst.Call, cst.For, cst.Assign, cst.AugAssign, cst.BinaryOperation, cst.FunctionDef)


class DoubleL2(LintRule):
    """An explicit L2 penalty in the loss, and an optimizer that also decays."""

    CODE = "WD401"
    NODES = _NODES
    VOCABULARY = BY_CODE[CODE]
    VALID = (
        "import torch\nloss = ce + 1e-4 * sum(p.pow(2).sum() for p in model.parameters())\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n",
        "import torch\nloss = ce + 1e-4 * sum(p.pow(2).sum() for p in model.parameters())\nopt = torch.optim.SGD(params, lr=0.1, weight_decay=0)\n",
        "import torch\nopt = torch.optim.SGD(params, lr=0.1, weight_decay=5e-4)\ngp = ((grad.norm(2, dim=1) - 1) ** 2).mean()\nloss = d_loss + 10 * gp\n",
        "import torch\nopt = torch.optim.SGD(params, lr=0.1, weight_decay=5e-4)\nloss = mse + torch.norm(z, 2) ** 2\n",
        "import torch\nopt = torch.optim.SGD(params, lr=0.1, weight_decay=5e-4)\nl1 = sum(p.abs().sum() for p in model.parameters())\nloss = ce + 1e-5 * l1\n",
        "import torch\nopt = torch.optim.SGD(params, lr=0.1, weight_decay=5e-4)\nn = sum(p.numel() for p in model.parameters())\ntotal = base + n\n",
    )
    INVALID = (
        Invalid(
            "import torch\nopt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=5e-4)\n"
            "loss = criterion(out, y) + 1e-4 * sum(p.pow(2).sum() for p in model.parameters())\n",
            line=3,
        ),
        Invalid(
            "import torch\nopt = torch.optim.SGD(params, lr=0.1, weight_decay=5e-4)\nl2 = 0.0\n"
            "for p in model.parameters():\n    l2 += (p ** 2).sum()\nloss = loss + lam * l2\n",
            line=6,
        ),
        Invalid(
            "import torch\nopt = torch.optim.AdamW(params, lr=1e-3)\nfor name, w in model.named_parameters():\n"
            "    loss += 1e-4 * torch.norm(w, 2) ** 2\n",
            line=4,
        ),
        Invalid(
            "import torch\nopt = torch.optim.SGD(params, lr=0.1, weight_decay=1e-4)\n"
            "def l2(model):\n    return sum(torch.linalg.norm(p) ** 2 for p in model.parameters())\n"
            "def step(model, x, y):\n    return F.cross_entropy(model(x), y) + 1e-4 * l2(model)\n",
            line=6,
        ),
        Invalid("import torch\nopt = torch.optim.SGD(params, lr=0.1, weight_decay=1e-4)\nloss = ce + self.fc.weight.pow(2).sum()\n"),
    )

    def check(self) -> Iterator[Report]:
        if any(iter_decaying(self.ctx.shared(optimizer_sites))):
            for node in self.ctx.shared(penalty_additions):
                yield Report(node)


class L2PenaltyAdaptive(LintRule):
    """An explicit L2 penalty in the loss of a file that builds an adaptive optimizer."""

    CODE = "WD402"
    NODES = _NODES
    VOCABULARY = BY_CODE[CODE]
    VALID = (
        "import torch\nloss = ce + 1e-4 * sum(p.pow(2).sum() for p in model.parameters())\nopt = torch.optim.SGD(params, lr=0.1)\n",
        "import torch\nloss = ce + 1e-4 * sum(p.pow(2).sum() for p in model.parameters())\n",
        "class Adam:\n    pass\n\nopt = Adam()\nloss = ce + 1e-4 * sum(p.pow(2).sum() for p in model.parameters())\n",
    )
    INVALID = (
        Invalid(
            "import torch\nloss = criterion(out, y) + 1e-4 * sum((p ** 2).sum() for p in model.parameters())\n"
            "optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)\n",
            line=2,
        ),
        Invalid(
            "import torch\nfrom torch import optim\nopt = optim.RMSprop(params)\nreg = torch.tensor(0.)\nfor p in net.parameters():\n"
            "    reg = reg + p.norm(2)\nloss = ce + 0.01 * reg\n",
            line=7,
        ),
    )

    def check(self) -> Iterator[Report]:
        if any(site.fact.adaptive for site in self.ctx.shared(optimizer_sites)):
            for node in self.ctx.shared(penalty_additions):
                yield Report(node)

