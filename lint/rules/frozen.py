"""Which modules a file freezes, so that their trainable parameters are only part of them.

A script that freezes a model (``model.requires_grad_(False)``, or a loop over
``model.parameters()`` that sets ``requires_grad = False``) or wraps it in adapters
(``get_peft_model(model, ...)``, ``model.add_adapter(...)``,
``inject_adapter_in_model(config, model)``) trains only what it unfreezes or adds, typically
LoRA matrices without bias, norm or embedding. ``model.parameters()`` filtered by
``requires_grad`` is then a split the linter cannot see, not every parameter of the module.
"""

from __future__ import annotations

from typing import FrozenSet, Optional, Set

import libcst as cst
from libcst.helpers import get_full_name_for_node

from wd_guard.lint.rules.base import FileContext

_ADAPTER_FUNCTIONS = {"get_peft_model": (0, "model"), "inject_adapter_in_model": (1, "model")}
_PARAMETER_METHODS = ("parameters", "named_parameters")


def frozen_modules(ctx: FileContext) -> FrozenSet[str]:
    """Dotted names (``unet``, ``self.unet``) of the modules whose parameters the file freezes."""
    found: Set[str] = set()
    for call in ctx.nodes(cst.Call):
        module = _frozen_by_call(call)
        if module is not None:
            found.add(module)
    for loop in ctx.nodes(cst.For):
        module = _frozen_by_loop(loop)  # type: ignore[arg-type]
        if module is not None:
            found.add(module)
    return frozenset(found)


def receiver(call: cst.Call) -> Optional[str]:
    """``a.b`` for ``a.b.method(...)``, when the receiver is a plain dotted name."""
    if isinstance(call.func, cst.Attribute) and isinstance(call.func.value, (cst.Name, cst.Attribute)):
        return get_full_name_for_node(call.func.value)
    return None


def _frozen_by_call(call: cst.Call) -> Optional[str]:
    """``X.requires_grad_(False)``, ``X.add_adapter(...)``, ``get_peft_model(X, ...)``."""
    func = call.func
    if isinstance(func, cst.Attribute) and (func.attr.value == "add_adapter" or _freezes(call)):
        return receiver(call)
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else None
    if name not in _ADAPTER_FUNCTIONS:
        return None
    index, keyword = _ADAPTER_FUNCTIONS[name]
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    model = [arg for arg in call.args if arg.keyword is not None and arg.keyword.value == keyword]
    arg = model[0] if model else positional[index] if len(positional) > index else None
    if arg is not None and isinstance(arg.value, (cst.Name, cst.Attribute)):
        return get_full_name_for_node(arg.value)
    return None


def _freezes(call: cst.Call) -> bool:
    """``.requires_grad_(False)`` or ``.requires_grad_(requires_grad=False)``."""
    func = call.func
    if not (isinstance(func, cst.Attribute) and func.attr.value == "requires_grad_" and len(call.args) == 1):
        return False
    arg = call.args[0]
    return _is_false(arg.value) and (arg.keyword is None or arg.keyword.value == "requires_grad")


def _frozen_by_loop(loop: cst.For) -> Optional[str]:
    """``for p in X.parameters(): p.requires_grad = False`` (or ``p.requires_grad_(False)``,
    or over ``X.named_parameters()``)."""
    it = loop.iter
    if not (isinstance(it, cst.Call) and isinstance(it.func, cst.Attribute) and it.func.attr.value in _PARAMETER_METHODS):
        return None
    variables = {node.value for node in _walk(loop.target) if isinstance(node, cst.Name)}
    for node in _walk(loop.body):
        if isinstance(node, cst.Call) and _freezes(node) and _is_variable(node.func.value, variables):  # type: ignore[attr-defined]
            return receiver(it)
        if isinstance(node, cst.Assign) and _is_false(node.value):
            for target in node.targets:
                attr = target.target
                if isinstance(attr, cst.Attribute) and attr.attr.value == "requires_grad" and _is_variable(attr.value, variables):
                    return receiver(it)
    return None


def _walk(node: cst.CSTNode):
    yield node
    for child in node.children:
        yield from _walk(child)


def _is_variable(expr: cst.BaseExpression, variables: Set[str]) -> bool:
    return isinstance(expr, cst.Name) and expr.value in variables


def _is_false(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "False"
