"""How a ``functools.partial`` of an optimizer and its calls pass the weight decay.

Renaming the class inside the partial changes every call of it; the fix needs to know whether
the partial sets the decay itself, which calls rely on the class's default, and whether a call
could pass the decay by position (a decay added to the partial would then be passed twice).
"""

from __future__ import annotations

from typing import List, Optional

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


def calls_of(name: str, partial: cst.Call, ctx: FileContext) -> List[cst.Call]:
    """Every call ``name(...)`` that calls this partial."""
    return [
        call
        for call in ctx.nodes(cst.Call)
        if isinstance(call.func, cst.Name) and call.func.value == name and ctx.names.at(call).assigned(name) is partial
    ]


def may_pass_decay_by_position(call: cst.Call, partial: cst.Call, fact: OptimizerFact) -> bool:
    """Whether a call of the partial passes ``weight_decay`` by position, or may (``*args``)."""
    if any(arg.star == "*" for arg in call.args):
        return True
    taken = sum(1 for arg in partial.args[1:] if arg.keyword is None)
    positional = sum(1 for arg in call.args if arg.keyword is None and not arg.star)
    return WEIGHT_DECAY in (PARAMS, *fact.positional)[taken : taken + positional]


def passes_decay(call: cst.Call) -> bool:
    """Whether a call passes ``weight_decay`` by keyword."""
    return any(arg.keyword is not None and arg.keyword.value == WEIGHT_DECAY for arg in call.args)
