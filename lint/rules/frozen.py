"""Which modules a file freezes, so that their trainable parameters are only part of them.

A script that freezes a model (``model.requires_grad_(False)``, or a loop over
``model.parameters()`` that sets ``requires_grad = False``) or wraps it in adapters
(``get_peft_model(model, ...)``, ``LoraModel(config, model)``, ``model.add_adapter(...)``,
``inject_adapter_in_model(config, model)``) trains only what it unfreezes or adds, typically
LoRA matrices without bias, norm or embedding. ``model.parameters()`` filtered by
``requires_grad`` is then a split the linter cannot see, not every parameter of the module.

Names bound to what such a model is made into count too: an adapter wrapper's result
(``peft_model = get_peft_model(model, ...)``) and diffusers' ``AttnProcsLayers(model.attn_processors)``,
which holds the attention processors installed in ``model``: with the model frozen, the
adapters the file installed (``model.set_attn_processor(...)``).
"""

from __future__ import annotations

from typing import FrozenSet, List, Optional, Set

import libcst as cst
from libcst.helpers import get_full_name_for_node

from wd_guard.lint.rules.base import FileContext

# Where each adapter wrapper takes the model: positions, then keyword. peft's ``LoraModel`` took
# ``(config, model)`` and now takes ``(model, config, adapter_name)``: both positions count (a
# config has no parameters, so naming it too changes nothing).
_ADAPTER_FUNCTIONS = {
    "get_peft_model": ((0,), "model"),
    "inject_adapter_in_model": ((1,), "model"),
    "LoraModel": ((0, 1), "model"),
    "PeftModel": ((0,), "model"),
}
# Calls whose result holds parts of the module an argument reads them from.
_VIEWS = ("AttnProcsLayers",)
_PARAMETER_METHODS = ("parameters", "named_parameters")


def frozen_modules(ctx: FileContext) -> FrozenSet[str]:
    """Dotted names (``unet``, ``self.unet``) of the modules whose parameters the file freezes."""
    found: Set[str] = set()
    for call in ctx.nodes(cst.Call):
        found |= _frozen_by_call(call)  # type: ignore[arg-type]
    for loop in ctx.nodes(cst.For):
        module = _frozen_by_loop(loop)  # type: ignore[arg-type]
        if module is not None:
            found.add(module)
    assigns = [node for node in ctx.nodes(cst.Assign) if isinstance(node.value, cst.Call)]  # type: ignore[attr-defined]
    bound = [(target, assign.value) for assign in assigns for target in _targets(assign)]
    found.update(target for target, call in bound if _callee(call) in _ADAPTER_FUNCTIONS)
    found.update(target for target, call in bound if _is_view(call, found))
    return frozenset(found)


def _targets(assign: cst.Assign) -> List[str]:
    """The dotted names ``assign`` binds (``a = ...``, ``self.a = ...``, ``a = b = ...``)."""
    names = (get_full_name_for_node(target.target) for target in assign.targets if isinstance(target.target, (cst.Name, cst.Attribute)))
    return [name for name in names if name is not None]


def _is_view(call: cst.Call, frozen: Set[str]) -> bool:
    """Whether ``call`` gathers parts of a frozen module (``AttnProcsLayers(unet.attn_processors)``).

    Only views count: a module built from a frozen one (``ControlNetModel.from_unet(unet)``
    copies its weights) or sized after it (``nn.Linear(backbone.num_features, n)``) trains whole.
    """
    if _callee(call) not in _VIEWS:
        return False
    arguments = (_dotted(arg.value) for arg in call.args if arg.keyword is None and not arg.star)
    return any(argument is not None and _inside(argument, frozen) for argument in arguments)


def _dotted(expr: cst.BaseExpression) -> Optional[str]:
    return get_full_name_for_node(expr) if isinstance(expr, (cst.Name, cst.Attribute)) else None


def _inside(name: str, frozen: Set[str]) -> bool:
    """Whether ``name`` is an attribute of a frozen module (``unet.attn_processors``)."""
    return any(name.startswith(module + ".") for module in frozen)


def _callee(call: cst.Call) -> Optional[str]:
    """The last name of what ``call`` calls (``get_peft_model`` for ``peft.get_peft_model``)."""
    func = call.func
    return func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else None


def receiver(call: cst.Call) -> Optional[str]:
    """``a.b`` for ``a.b.method(...)``, when the receiver is a plain dotted name."""
    if isinstance(call.func, cst.Attribute) and isinstance(call.func.value, (cst.Name, cst.Attribute)):
        return get_full_name_for_node(call.func.value)
    return None


def _frozen_by_call(call: cst.Call) -> Set[str]:
    """``X`` for ``X.requires_grad_(False)``, ``X.add_adapter(...)``, ``get_peft_model(X, ...)``."""
    func = call.func
    if isinstance(func, cst.Attribute) and (func.attr.value == "add_adapter" or _freezes(call)):
        module = receiver(call)
        return {module} if module is not None else set()
    name = _callee(call)
    if name not in _ADAPTER_FUNCTIONS:
        return set()
    indices, keyword = _ADAPTER_FUNCTIONS[name]
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    model = [arg for arg in call.args if arg.keyword is not None and arg.keyword.value == keyword]
    args = model or [positional[index] for index in indices if index < len(positional)]
    names = (_dotted(arg.value) for arg in args)
    return {name for name in names if name is not None}


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
