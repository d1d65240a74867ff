"""Optimizers chosen among known classes, and groups added after an optimizer is built.

``cls = torch.optim.Adam if cfg.adam else torch.optim.SGD``, an ``if``/``else`` that binds
``cls`` twice, or ``OPTIMIZERS[name]`` with ``OPTIMIZERS`` a literal dict of classes: every
class the code may call is known, so the call is judged once per candidate and the message
names them all. One candidate the linter does not know (``getattr(torch.optim, name)``, a
user's class) makes the whole choice unknown: no guess.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

import libcst as cst

from wd_guard.optimizers import OptimizerFact

from wd_guard.lint.analysis.names import Names, dotted
from wd_guard.lint.rules.base import FileContext
from wd_guard.lint.rules.sites import Group, Site, bound_site, optimizer_fact, optimizer_sites, read_group

_DEPTH_LIMIT = 6
ADD_PARAM_GROUP = "add_param_group"

Candidate = Tuple[cst.BaseExpression, OptimizerFact]


def chosen_sites(call: cst.Call, names: Names) -> List[Site]:
    """One site per candidate class when ``call`` calls a class chosen among known ones."""
    if not isinstance(call.func, (cst.Name, cst.IfExp, cst.Subscript)):
        return []
    candidates = _candidates(call.func, names, 0)
    if not candidates or len({fact.name for _, fact in candidates}) < 2:
        return []
    facts = list({fact.name: (expr, fact) for expr, fact in candidates}.values())
    shown = tuple(fact.short_name for _, fact in facts)
    sites = []
    for expr, fact in facts:
        site = bound_site(call, expr, fact, names, call.args)
        site.candidates = shown
        sites.append(site)
    return sites


def _candidates(expr: cst.BaseExpression, names: Names, depth: int) -> Optional[List[Candidate]]:
    """The known classes ``expr`` may evaluate to; None when one of them is unknown."""
    if depth > _DEPTH_LIMIT:
        return None
    fact = optimizer_fact(expr, names)
    if fact is not None:
        return [(expr, fact)]
    if isinstance(expr, cst.IfExp):
        return _all([_candidates(expr.body, names, depth + 1), _candidates(expr.orelse, names, depth + 1)])
    if isinstance(expr, cst.Name):
        found = names.all_bindings(expr.value)
        if found is None or not all(isinstance(binding, cst.BaseExpression) for binding in found[0]):
            return None
        return _all([_candidates(binding, found[1], depth + 1) for binding in found[0]])  # type: ignore[arg-type]
    if isinstance(expr, cst.Subscript):
        table = names.follow(expr.value) if isinstance(expr.value, cst.Name) else None
        values = _dict_values(table, names) if table is not None else None
        return None if values is None else _all([_candidates(value, names, depth + 1) for value in values])
    return None


def _all(parts: List[Optional[List[Candidate]]]) -> Optional[List[Candidate]]:
    if not parts or any(part is None for part in parts):
        return None
    return [candidate for part in parts for candidate in part]  # type: ignore[union-attr]


def _dict_values(table: cst.BaseExpression, names: Names) -> Optional[List[cst.BaseExpression]]:
    if isinstance(table, cst.Dict):
        if not table.elements or not all(isinstance(e, cst.DictElement) for e in table.elements):
            return None
        return [element.value for element in table.elements]
    if isinstance(table, cst.Call) and names.is_builtin(table.func, "dict") and table.args:
        if any(arg.keyword is None for arg in table.args):
            return None
        return [arg.value for arg in table.args]
    return None


# -- groups added later ---------------------------------------------------------------------

def added_groups(ctx: FileContext) -> Iterator[Tuple[cst.Call, Site, Group]]:
    """``opt.add_param_group({...})`` calls on an optimizer built in the file, with the site
    that built it and the group they add (only groups written as a dict)."""
    sites: Dict[cst.Call, List[Site]] = {}
    for site in ctx.shared(optimizer_sites):
        sites.setdefault(site.call, []).append(site)
    attributes = _attribute_assignments(ctx)
    for call in ctx.nodes(cst.Call):
        func = call.func
        if not (isinstance(func, cst.Attribute) and func.attr.value == ADD_PARAM_GROUP and len(call.args) == 1):
            continue
        names = ctx.names.at(call)
        built = _built_by(func.value, names, attributes)
        group = read_group(names.follow(call.args[0].value), names) if not call.args[0].star else None
        if built is None or group is None:
            continue
        for site in sites.get(built, ()):
            yield call, site, group


def _built_by(expr: cst.BaseExpression, names: Names, attributes: Dict[str, Optional[cst.BaseExpression]]) -> Optional[cst.Call]:
    if isinstance(expr, cst.Name):
        value = names.follow(expr)
        return value if isinstance(value, cst.Call) else None
    text = dotted(expr)
    value = attributes.get(text) if text is not None else None
    return value if isinstance(value, cst.Call) else None


def _attribute_assignments(ctx: FileContext) -> Dict[str, Optional[cst.BaseExpression]]:
    """``self.opt = ...`` assignments by target text; None where a target is assigned twice."""
    found: Dict[str, Optional[cst.BaseExpression]] = {}
    for node in ctx.nodes(cst.Assign):
        for target in node.targets:
            if isinstance(target.target, cst.Attribute):
                text = dotted(target.target)
                if text is not None:
                    found[text] = None if text in found else node.value
    return found
