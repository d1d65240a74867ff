"""Optimizers built where no call of the class is visible: factories and config dicts.

``timm.optim.create_optimizer_v2(model, opt="adam", weight_decay=0.05)`` builds the class its
``opt=`` name stands for (the names are in :data:`wd_guard.optimizers.TIMM_OPT_NAMES`), and
splits decay / no-decay itself when handed a module with ``filter_bias_and_bn`` on. The
legacy ``timm.optim.create_optimizer(args, model)`` reads the same options off ``args``
(``args.opt``, ``args.weight_decay``): they are judged when the file's argparse defaults or
dataclass fields fix them; an ``args.layer_decay`` the file may set makes the grouping
unknown, and an ``args.opt_args`` (merged over every option) the whole call.
mmengine and mmcv configs spell an optimizer as ``dict(type="AdamW", weight_decay=0.05)``
(under ``optimizer=`` of an ``optim_wrapper`` dict, or bound to ``optimizer``); the default
constructor hands it every parameter unless ``paramwise_cfg`` sets a decay multiplier of
zero. Configs that inherit (``_base_``) may take any option from the base file: only what
the file itself writes is judged.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import libcst as cst

from wd_guard.optimizers import FactoryFact, OptimizerFact, factory, lookup

from wd_guard.lint.analysis.names import Names, dotted, string_value
from wd_guard.lint.analysis.values import Values
from wd_guard.lint.rules.base import FileContext
from wd_guard.lint.rules.params import BlanketSearch
from wd_guard.lint.rules.sites import Site, bind, file_values, optimizer_fact

TYPE = "type"
OPTIMIZER = "optimizer"
PARAMWISE = "paramwise_cfg"
CONSTRUCTOR = "constructor"
BASE = "_base_"
_MULTIPLIERS = ("norm_decay_mult", "bias_decay_mult", "decay_mult", "dwconv_decay_mult", "flat_decay_mult")


def factory_sites(call: cst.Call, names: Names, ctx: FileContext) -> List[Site]:
    """The site of a factory call whose ``opt=`` name is known."""
    if not isinstance(call.func, (cst.Name, cst.Attribute)):
        return []
    qualified = names.qualified(call.func)
    fact = factory(qualified) if qualified else None
    if fact is None:
        return []
    values = ctx.shared(file_values)
    arguments, open_ = _bind_factory(fact, call.args)
    custom = any(option in arguments for option in fact.custom_groups)
    if fact.namespace is not None:
        read = _namespace(fact, arguments, values)
        if read is None:
            return []
        options, custom = read
        arguments = {**options, **arguments}
    opt = arguments.get("opt")
    name = fact.default_opt if opt is None and not open_ else _string(opt, names, values)
    option = fact.opt_names.get(name.lower().split("_")[-1]) if name else None
    cls = lookup(option.cls) if option is not None else None
    if cls is None:
        return []
    site = Site(call, call.func, cls, names, arguments, open_, built="factory")
    site.defaults = {"weight_decay": fact.default_weight_decay, **option.options}  # type: ignore[union-attr]
    site.split, site.everything = (None, None) if custom else _factory_split(fact, arguments, open_, names, ctx)
    return [site]


def _namespace(fact: FactoryFact, arguments: Dict[str, cst.Arg], values: Values):
    """The options a factory reads off the object it is handed (``args.opt``, ...), as
    arguments that read them, and whether that object may ask for groups of its own. None
    when the object is not a plain name or attribute chain, or when it may carry options
    that replace any of these (timm merges ``args.opt_args`` over them)."""
    given = arguments.get(fact.namespace)  # type: ignore[arg-type]
    if given is None or dotted(given.value) is None or not all(values.unset(option) for option in fact.namespace_kwargs):
        return None
    options = {option: cst.Arg(cst.Attribute(given.value, cst.Name(option))) for option in fact.namespace_options}
    return options, not all(values.unset(option) for option in fact.custom_groups)


def _bind_factory(fact: FactoryFact, args) -> tuple:
    arguments: Dict[str, cst.Arg] = {}
    open_ = False
    for index, arg in enumerate(args):
        if arg.star:
            open_ = True
        elif arg.keyword is not None:
            arguments[arg.keyword.value] = arg
        elif index < len(fact.positional):
            arguments[fact.positional[index]] = arg
        else:
            open_ = True
    return {key: arg for key, arg in arguments.items()}, open_


def _string(arg: Optional[cst.Arg], names: Names, values: Values) -> Optional[str]:
    return None if arg is None else values.text(arg.value, names)


def _factory_split(fact: FactoryFact, arguments: Dict[str, cst.Arg], open_: bool, names: Names, ctx: FileContext):
    """Whether the factory splits decay / no-decay, and what it hands over whole if not."""
    given = arguments.get(fact.model)
    if given is None or open_:
        return None, None
    source = BlanketSearch(ctx).source(given.value, names)
    if source is not None:
        return False, source  # parameters, not a module: passed through as one group
    value = names.follow(given.value)
    if not isinstance(value, (cst.Name, cst.Attribute)):
        return None, None  # groups built elsewhere, or a module: cannot tell
    flag = arguments.get(fact.split_flag)
    split = fact.split_default if flag is None else names.truth(flag.value)
    return split, (None if split is not False else given.value)


# -- mmengine / mmcv config dicts ----------------------------------------------------------

def config_sites(ctx: FileContext) -> List[Site]:
    """Every ``dict(type=<known optimizer>, ...)`` that a config hands to an optimizer
    constructor: the ``optimizer=`` of a wrapper dict, or the module's ``optimizer`` name."""
    module = Names(ctx.names, ctx.names.module)
    inherits = ctx.names.module.binds(BASE)
    sites: List[Site] = []
    seen = set()
    for call in ctx.nodes(cst.Call):
        names = ctx.names.at(call)
        if names.scope.kind != "module" or not names.is_builtin(call.func, "dict"):
            continue  # configs are module-level dicts; one built in a function may be anything
        keywords = _keywords(call)
        inner = names.follow(keywords[OPTIMIZER]) if OPTIMIZER in keywords else None
        if isinstance(inner, cst.Call) and inner not in seen:
            site = _config_site(inner, call, ctx.names.at(inner), inherits)
            if site is not None:
                seen.add(inner)
                sites.append(site)
    # An mmcv config's ``optimizer = dict(...)``; next to an ``optim_wrapper`` it is unused.
    bound = None if ctx.names.module.binds("optim_wrapper") else module.assigned(OPTIMIZER)
    if isinstance(bound, cst.Call) and bound not in seen:
        site = _config_site(bound, None, module, inherits)
        if site is not None:
            sites.append(site)
    return sites


def _keywords(call: cst.Call) -> Dict[str, cst.BaseExpression]:
    return {arg.keyword.value: arg.value for arg in call.args if arg.keyword is not None}


def _config_site(inner: cst.Call, wrapper: Optional[cst.Call], names: Names, inherits: bool) -> Optional[Site]:
    if not names.is_builtin(inner.func, "dict"):
        return None
    keywords = _keywords(inner)
    kind = keywords.get(TYPE)
    fact = _config_class(kind, names) if kind is not None else None
    if fact is None:
        return None
    options = [arg for arg in inner.args if arg.keyword is not None and arg.keyword.value in (fact.decoupled_flag, "lr", "weight_decay")]
    arguments, _ = bind(fact, options)
    open_ = inherits or any(arg.keyword is None for arg in inner.args)
    site = Site(inner, kind, fact, names, arguments, open_, built="config")  # type: ignore[arg-type]
    site.split = _config_split(keywords, _keywords(wrapper) if wrapper is not None else {}, names, inherits)
    site.everything = inner if site.split is False else None
    return site


def _config_class(kind: cst.BaseExpression, names: Names) -> Optional[OptimizerFact]:
    text = string_value(kind)
    if text is not None:
        return lookup(text) or lookup(f"torch.optim.{text}")
    return optimizer_fact(kind, names)


def _config_split(inner: Dict[str, cst.BaseExpression], wrapper: Dict[str, cst.BaseExpression], names: Names, inherits: bool) -> Optional[bool]:
    """True when a ``paramwise_cfg`` zeroes some decay multiplier, False when the config
    certainly hands every parameter over in one group, None when the file cannot tell."""
    if CONSTRUCTOR in wrapper or CONSTRUCTOR in inner:
        return None
    paramwise = wrapper.get(PARAMWISE, inner.get(PARAMWISE))
    if paramwise is None:
        return None if inherits else False
    return _zeroes_a_multiplier(names.follow(paramwise), names)


def _zeroes_a_multiplier(expr: cst.BaseExpression, names: Names, depth: int = 0) -> Optional[bool]:
    if depth > 4:
        return None
    items = _dict_items(expr, names)
    if items is None:
        return None
    verdict: Optional[bool] = False
    for key, value in items:
        if key in _MULTIPLIERS:
            if names.is_zero(value):
                return True
            if names.number(value) is None:
                verdict = None
        elif key == "custom_keys":
            inner = _dict_items(names.follow(value), names)
            if inner is None:
                verdict = None
                continue
            for _, entry in inner:
                found = _zeroes_a_multiplier(names.follow(entry), names, depth + 1)
                if found:
                    return True
                if found is None:
                    verdict = None
    return verdict


def _dict_items(expr: cst.BaseExpression, names: Names):
    if isinstance(expr, cst.Call) and names.is_builtin(expr.func, "dict"):
        if any(arg.keyword is None for arg in expr.args):
            return None
        return [(arg.keyword.value, arg.value) for arg in expr.args]  # type: ignore[union-attr]
    if isinstance(expr, cst.Dict):
        items = []
        for element in expr.elements:
            key = string_value(element.key) if isinstance(element, cst.DictElement) else None
            if key is None:
                return None
            items.append((key, element.value))
        return items
    return None
