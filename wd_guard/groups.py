"""The decay / no-decay split of a model's parameters, ready for any torch optimizer."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List

from torch import nn

from wd_guard.classify import NO_DECAY_ROLES, classify, matches_any

__all__ = ["param_groups"]


def param_groups(model: nn.Module, weight_decay: float, no_decay: Iterable[str] = ()) -> List[Dict[str, Any]]:
    """Two param groups: weights decayed by ``weight_decay``, everything else not decayed.

    Biases, normalisation scales and shifts, other 0-d and 1-D gains (LayerScale, ``logit_scale``),
    embedding tables, class tokens and position tables, and the names the model declares
    through ``no_weight_decay()`` / ``no_weight_decay_keywords()`` (on itself or any submodule,
    wildcards matched as timm does) go into the group with ``weight_decay=0.0``, as do the
    parameters named in ``no_decay`` (a parameter name, or a module name / prefix that covers
    every parameter under it). The audit uses the same classification, so these groups never
    trigger WD201 to WD203; ``docs/parameter-roles.md`` lists the conventions. Every trainable
    parameter appears exactly once (tied weights included); frozen ones are left out, and an
    empty group is dropped.

    Raises:
        RuntimeError: when the model's ``no_weight_decay()`` (or ``no_weight_decay_keywords()``)
            raises, naming the class: the groups would otherwise silently decay what it declares.

    Weights that feed straight into BatchNorm stay decayed, as in the usual recipes; name them
    in ``no_decay`` to exclude them (see WD204).

    Example:
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        >>> groups = param_groups(model, weight_decay=0.05)
        >>> [len(g["params"]) for g in groups], [g["weight_decay"] for g in groups]
        ([1, 3], [0.05, 0.0])
    """
    if isinstance(no_decay, str):
        raise TypeError(f"no_decay must be a list of names, not the string {no_decay!r}")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be a non-negative number, got {weight_decay!r}")
    extra = list(no_decay)
    decay: List[nn.Parameter] = []
    keep: List[nn.Parameter] = []
    for info in classify(model).values():
        if not info.trainable:
            continue
        excluded = info.role in NO_DECAY_ROLES or any(matches_any(n, extra) for n in (info.name, *info.aliases))
        (keep if excluded else decay).append(info.param)
    groups = [{"params": decay, "weight_decay": float(weight_decay)}, {"params": keep, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]
