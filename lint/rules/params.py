"""Which expressions hand an optimizer every trainable parameter of a module.

``model.parameters()`` is the obvious one; real code wraps it (``list(...)``, a
``requires_grad`` filter, a comprehension over ``named_parameters()``), joins several
(``+``, ``[*a, *b]``, ``itertools.chain``) and grows a name step by step (``params =
params + [...]``, ``params += ...``, ``params.append(...)``, ``params.extend(...)``). Adding
parameters never takes any away, so a collection that contains everything of one module
hands over everything of it. A filter by name, shape or module type is a split and stops the
search; so does any binding of a name that cannot be followed, and so does a module whose
parameters the file freezes or wraps in adapters (``frozen.py``): what it trains is a part.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import libcst as cst

from wd_guard.lint.analysis.names import Names, Scope
from wd_guard.lint.rules.base import FileContext
from wd_guard.lint.rules.frozen import frozen_modules, receiver

_DEPTH_LIMIT = 12
_CHAINS = ("itertools.chain", "itertools.chain.from_iterable")
_COPIES = ("list", "tuple", "set")
_GROWERS = ("append", "extend")

Growth = Dict[Tuple[Scope, str], List[cst.BaseExpression]]


def growth(ctx: FileContext) -> Growth:
    """What ``name.append(x)`` / ``name.extend(xs)`` add to each name, by the scope that binds it."""
    found: Growth = {}
    for call in ctx.nodes(cst.Call):
        func = call.func
        if not (isinstance(func, cst.Attribute) and func.attr.value in _GROWERS and isinstance(func.value, cst.Name)):
            continue
        if len(call.args) != 1 or call.args[0].keyword is not None or call.args[0].star:
            continue
        names = ctx.names.at(call)
        owner = names.all_bindings(func.value.value)
        if owner is not None:
            arg = call.args[0].value
            # ``append(x)`` adds one item: it hands over everything only if ``x`` is a whole
            # collection wrapped as one item, which is not a parameter; only ``extend`` counts.
            if func.attr.value == "extend":
                found.setdefault((owner[1].scope, func.value.value), []).append(arg)
    return found


class BlanketSearch:
    """Finds the ``x.parameters()`` call behind an expression that hands over everything."""

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx
        self.growth = ctx.shared(growth)
        self.frozen = ctx.shared(frozen_modules)

    def source(self, expr: cst.BaseExpression, names: Names, _depth: int = 0) -> Optional[cst.Call]:
        """The ``x.parameters()`` (or ``x.named_parameters()``) call whose every parameter
        ``expr`` holds, or None."""
        if _depth > _DEPTH_LIMIT:
            return None
        depth = _depth + 1
        if isinstance(expr, cst.Name):
            return self._name(expr.value, names, depth)
        if _is_parameters_call(expr, "parameters"):
            return self._whole(expr)  # type: ignore[arg-type]
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):
            return self.source(expr.left, names, depth) or self.source(expr.right, names, depth)
        if isinstance(expr, (cst.List, cst.Tuple)):
            for element in expr.elements:
                if isinstance(element, cst.StarredElement):
                    found = self.source(element.value, names, depth)
                    if found is not None:
                        return found
            return None
        if isinstance(expr, (cst.ListComp, cst.GeneratorExp, cst.SetComp)):
            return self._comprehension(expr, names, depth)
        if isinstance(expr, cst.Call):
            return self._call(expr, names, depth)
        return None

    def _call(self, call: cst.Call, names: Names, depth: int) -> Optional[cst.Call]:
        args = [arg for arg in call.args if arg.keyword is None and not arg.star]
        if len(args) != len(call.args):
            return None
        if names.qualified(call.func) in _CHAINS:
            for arg in args:
                found = self.source(arg.value, names, depth)
                if found is not None:
                    return found
            if names.qualified(call.func) == _CHAINS[1] and len(args) == 1 and isinstance(args[0].value, (cst.List, cst.Tuple)):
                for element in args[0].value.elements:
                    found = self.source(element.value, names, depth)
                    if found is not None:
                        return found
            return None
        if len(args) == 1 and any(names.is_builtin(call.func, name) for name in _COPIES):
            return self.source(args[0].value, names, depth)
        if len(args) == 2 and names.is_builtin(call.func, "filter") and _is_requires_grad_lambda(args[0].value):
            return self.source(args[1].value, names, depth)
        return None

    def _comprehension(self, comp: cst.BaseComp, names: Names, depth: int) -> Optional[cst.Call]:
        """``[p for p in xs if p.requires_grad]`` or ``[p for _, p in m.named_parameters()]``."""
        for_in = comp.for_in
        if for_in.inner_for_in is not None or for_in.asynchronous is not None or not isinstance(comp.elt, cst.Name):
            return None
        var = comp.elt.value
        if not all(_is_requires_grad(if_.test, var) for if_ in for_in.ifs):
            return None
        target = for_in.target
        if isinstance(target, cst.Name) and target.value == var:
            return self.source(for_in.iter, names, depth)
        named = isinstance(target, cst.Tuple) and len(target.elements) == 2 and _is_name(target.elements[1].value, var)
        if named and _is_parameters_call(for_in.iter, "named_parameters"):
            return self._whole(for_in.iter)  # type: ignore[arg-type]
        return None

    def _whole(self, call: cst.Call) -> Optional[cst.Call]:
        """``call`` unless the file freezes part of its module: then which of its parameters
        train (and so which are decayed) is unknown."""
        return None if receiver(call) in self.frozen else call

    def _name(self, name: str, names: Names, depth: int) -> Optional[cst.Call]:
        """A name whose bindings (in source order) start it and only ever add to it."""
        found = names.all_bindings(name)
        if found is None:
            return None
        bindings, owner = found
        source: Optional[cst.Call] = None
        for index, binding in enumerate(bindings):
            if isinstance(binding, cst.AugAssign):
                if not isinstance(binding.operator, cst.AddAssign):
                    return None
                source = source or self.source(binding.value, owner, depth)
            elif not isinstance(binding, cst.BaseExpression):
                return None
            elif _extends(binding, name):
                source = source or self._extension_source(binding, name, owner, depth)
            elif index:
                return None  # rebound to something else: which value reaches the use is unknown
            else:
                source = self.source(binding, owner, depth)
        for added in self.growth.get((owner.scope, name), ()):
            source = source or self.source(added, owner, depth)
        return source

    def _extension_source(self, expr: cst.BaseExpression, name: str, names: Names, depth: int) -> Optional[cst.Call]:
        """The parameters call among what ``name + ...`` (or ``[*name, ...]``) adds."""
        parts: Sequence[cst.BaseExpression] = ()
        if isinstance(expr, cst.BinaryOperation):
            parts = (expr.left, expr.right)
        elif isinstance(expr, (cst.List, cst.Tuple)):
            parts = [element.value for element in expr.elements if isinstance(element, cst.StarredElement)]
        for part in parts:
            if not _is_name(part, name):
                found = self.source(part, names, depth)
                if found is not None:
                    return found
        return None


def _extends(expr: cst.BaseExpression, name: str) -> bool:
    """``name + x``, ``x + name`` or ``[*name, ...]``: the old value is kept whole."""
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):
        return _is_name(expr.left, name) or _is_name(expr.right, name)
    if isinstance(expr, (cst.List, cst.Tuple)):
        return any(isinstance(e, cst.StarredElement) and _is_name(e.value, name) for e in expr.elements)
    return False


def _is_parameters_call(expr: cst.BaseExpression, method: str) -> bool:
    if not (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == method):
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
