"""How a ``functools.partial`` of an optimizer and its calls pass the weight decay.

Renaming the class inside the partial changes every call of it; the fix needs to know whether
the partial sets the decay itself, and whether a call could pass it by position (a decay added
to the partial would then be passed twice).
"""

from __future__ import annotations

from typing import Optional

import libcst as cst

from wd_guard.optimizers import OptimizerFact

from wd_guard.lint.rules.base import FileContext
from wd_guard.lint.rules.sites import PARAMS, WEIGHT_DECAY


def decay_in_partial(partial: cst.Call, fact: OptimizerFact) -> Optional[bool]:
    """Whether the partial's own arguments set the decay; None when they may hide it."""
    args = partial.args[1:]
    if any(arg.star for arg in args):
        return None
    positional = sum(1 for arg in args if arg.keyword is None)
    keywords = {arg.keyword.value for arg in args if arg.keyword is not None}
    return WEIGHT_DECAY in keywords or WEIGHT_DECAY in (PARAMS, *fact.positional)[:positional]


def no_call_passes_decay_by_position(name: str, partial: cst.Call, fact: OptimizerFact, ctx: FileContext) -> bool:
    """No call of the partial bound to ``name`` passes ``weight_decay`` by position, or may
    (``*args``)."""
    names = (PARAMS, *fact.positional)
    taken = sum(1 for arg in partial.args[1:] if arg.keyword is None)
    for call in ctx.nodes(cst.Call):
        if not (isinstance(call.func, cst.Name) and call.func.value == name and ctx.names.at(call).assigned(name) is partial):
            continue
        if any(arg.star == "*" for arg in call.args):
            return False
        positional = sum(1 for arg in call.args if arg.keyword is None and not arg.star)
        if WEIGHT_DECAY in names[taken : taken + positional]:
            return False
    return True
