"""Optimizer constructions in one file, read the way the optimizer itself would read them.

A *site* is a call that builds a known optimizer: ``torch.optim.Adam(...)`` under any import
style, ``functools.partial(torch.optim.Adam, ...)``, or a later call of such a partial. Its
arguments are bound to names with the facts in :mod:`wd_guard.optimizers` (positional order,
defaults, the flag that decouples decay) and inline param-group dicts are read as groups.
Whatever the code hides (``**kwargs``, ``*args``, groups built elsewhere) makes the affected
options unknown, and the rules stay silent about unknown options.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import libcst as cst

from wd_guard.optimizers import DecayKind, OptimizerFact, lookup

from wd_guard.lint.analysis.names import Names, string_value
from wd_guard.lint.analysis.values import Value, Values
from wd_guard.lint.intake.vocabulary import DECAYING, class_names
from wd_guard.lint.rules.base import AtLine, FileContext

PARTIAL = "functools.partial"
PARAMS = "params"
WEIGHT_DECAY = "weight_decay"
LR = "lr"


_CLASS_NAMES = frozenset(class_names())


@dataclass(frozen=True)
class Setting:
    """Where an option's value comes from: an expression in the code, or the default."""

    expr: Optional[cst.BaseExpression]
    default: object = None


@dataclass
class Group:
    """One param-group dict; ``open`` when it may set options the code does not show."""

    node: cst.CSTNode
    options: Dict[str, cst.BaseExpression] = field(default_factory=dict)
    open: bool = False

    @property
    def params(self) -> Optional[cst.BaseExpression]:
        return self.options.get(PARAMS)


@dataclass
class Site:
    """A call that builds a known optimizer, with its arguments bound to names."""

    call: cst.Call
    func: cst.BaseExpression  # the expression that names the optimizer class
    fact: OptimizerFact
    names: Names
    arguments: Dict[str, cst.Arg]
    open: bool  # ``*args`` or ``**kwargs``: options the code does not show
    groups: Optional[List[Group]] = None  # inline param groups, or None
    origin: Optional[cst.Call] = None  # the call that holds ``func``, when it is not ``call``
    values: Optional[Values] = None  # resolution of options the code takes from elsewhere
    candidates: Tuple[str, ...] = ()  # the classes the code chooses among, when it chooses
    defaults: Mapping[str, object] = field(default_factory=dict)  # a factory's own defaults
    built: Optional[str] = None  # "factory" or "config" when no call of the class is visible
    split: Optional[bool] = None  # factories and configs: whether they split decay / no-decay
    everything: Optional[cst.BaseExpression] = None  # factories and configs: what they hand over

    @property
    def holder(self) -> cst.Call:
        """The call whose arguments include ``func`` or whose callee it is."""
        return self.origin or self.call

    @property
    def name(self) -> str:
        if self.candidates:
            return f"{self.fact.short_name} (one of {', '.join(self.candidates)}, chosen at run time)"
        return self.fact.short_name

    @property
    def fixable(self) -> bool:
        """Whether the code names the class itself, so a fix can rewrite it."""
        return not self.candidates and self.built is None

    def scopes(self) -> Sequence[Optional[Group]]:
        """The groups, or ``[None]`` for the call's single implicit group."""
        return self.groups or [None]

    def setting(self, option: str, group: Optional[Group] = None) -> Optional[Setting]:
        """Where ``option`` comes from for ``group`` (or the call); None when unknown."""
        if group is not None:
            if option in group.options:
                return Setting(group.options[option])
            if group.open:
                return None
        arg = self.arguments.get(option)
        if arg is not None:
            return Setting(arg.value)
        if self.open:
            return None
        return self._default(option)

    def _default(self, option: str) -> Optional[Setting]:
        if option in self.defaults:
            return Setting(None, self.defaults[option])
        if option == WEIGHT_DECAY:
            return Setting(None, self.fact.default_weight_decay)
        if option == LR:
            return None if self.fact.default_lr is None else Setting(None, self.fact.default_lr)
        if option == self.fact.decoupled_flag:
            return Setting(None, self.fact.decoupled_by_default)
        return None

    def kind(self, group: Optional[Group] = None) -> Optional[DecayKind]:
        """How decay acts in ``group`` (or the call); None when the decoupling flag is unknown."""
        flag = self.fact.decoupled_flag
        if flag is None:
            return self.fact.decay
        setting = self.setting(flag, group)
        if setting is None:
            return None
        value = setting.default if setting.expr is None else self.names.truth(setting.expr)
        return None if value is None else self.fact.kind_for({flag: value})

    def decays(self, group: Optional[Group] = None) -> Optional[bool]:
        """Whether ``group`` (or the call) has a weight decay that is not literally zero;
        None when the code does not show it."""
        if self.fact.decay not in DECAYING:
            return False
        setting = self.setting(WEIGHT_DECAY, group)
        if setting is None:
            return None
        if setting.expr is None:
            return bool(setting.default)
        if self.names.is_zero(setting.expr):
            return False
        resolved = self.resolve(setting.expr)
        return resolved is None or resolved.number != 0

    def resolve(self, expr: cst.BaseExpression) -> Optional[Value]:
        """The value of ``expr`` and where it comes from, when the file fixes it."""
        return None if self.values is None else self.values.resolve(expr, self.names)

    def number(self, option: str, group: Optional[Group] = None) -> Optional[float]:
        """The literal value of ``option`` for ``group``, the default if it is not given."""
        setting = self.setting(option, group)
        if setting is None:
            return None
        if setting.expr is None:
            return setting.default if isinstance(setting.default, (int, float)) else None
        number = self.names.number(setting.expr)
        if number is None:
            resolved = self.resolve(setting.expr)
            number = None if resolved is None else resolved.number
        return number

    def decay_text(self, group: Optional[Group], ctx: FileContext) -> Union[str, AtLine]:
        """The weight decay as the code writes it (with the value the file gives it and where,
        when the code reads it from elsewhere), or the default it falls back to."""
        setting = self.setting(WEIGHT_DECAY, group)
        if setting is None or setting.expr is None:
            default = None if setting is None else setting.default
            return f"{default} by default"
        return shown(setting.expr, self.resolve(setting.expr), ctx)


def shown(expr: cst.BaseExpression, value: Optional[Value], ctx: FileContext) -> Union[str, AtLine]:
    """``expr`` as written, followed by its resolved value and origin when it has one."""
    code = ctx.code(expr)
    if value is None or value.origin is None or value.node is None:
        return code
    return AtLine(f"{code} = {value.number:g} ({value.origin}, line {{line}})", value.node)


def file_values(ctx: FileContext) -> Values:
    """The file's resolvable values (shared by every rule that reads optimizer options)."""
    return Values(ctx.nodes(cst.Call), ctx.nodes(cst.ClassDef), ctx.names.at)


def optimizer_sites(ctx: FileContext) -> List[Site]:
    """Every optimizer construction in the file (shared by the optimizer and penalty rules):
    calls of a known class, of a partial of one, of a class chosen among known ones, of
    factories whose options name a known class, and mmengine-style config dicts."""
    from wd_guard.lint.rules.choices import chosen_sites
    from wd_guard.lint.rules.factories import config_sites, factory_sites

    sites: List[Site] = []
    consumed = set()
    for call in ctx.nodes(cst.Call):
        names = ctx.names.at(call)
        site = _direct_site(call, names) or _partial_site(call, names)
        if site is None:
            site, partial = _through_partial(call, names)
            if partial is not None:
                consumed.add(partial)
        if site is not None:
            sites.append(site)
        else:
            sites.extend(chosen_sites(call, names) or factory_sites(call, names, ctx))
    sites.extend(config_sites(ctx))
    values = ctx.shared(file_values)
    for site in sites:
        site.values = values
    # A partial whose later call is visible is judged at that call, with all its arguments.
    return [site for site in sites if site.call not in consumed]


def optimizer_fact(expr: cst.BaseExpression, names: Names) -> Optional[OptimizerFact]:
    """The fact for the optimizer class ``expr`` names, or None when it is not a known one."""
    if isinstance(expr, cst.Attribute) and expr.attr.value not in _CLASS_NAMES:
        return None  # ``x.view(...)``, ``self.log(...)``: no attribute chain ends elsewhere
    qualified = names.qualified(expr)
    fact = lookup(qualified) if qualified else None
    if fact is None:
        fact = next(filter(None, map(lookup, names.star_candidates(expr))), None)
    return fact


def _direct_site(call: cst.Call, names: Names) -> Optional[Site]:
    fact = optimizer_fact(call.func, names)
    if fact is None:
        return None
    return _site(call, call.func, fact, names, call.args)


def _partial_parts(call: cst.Call, names: Names) -> Optional[Tuple[cst.BaseExpression, OptimizerFact]]:
    if not call.args or call.args[0].keyword is not None or call.args[0].star:
        return None
    fact = optimizer_fact(call.args[0].value, names)
    if fact is None or names.qualified(call.func) != PARTIAL:
        return None
    return call.args[0].value, fact


def _partial_site(call: cst.Call, names: Names) -> Optional[Site]:
    parts = _partial_parts(call, names)
    if parts is None:
        return None
    return _site(call, parts[0], parts[1], names, call.args[1:])


def _through_partial(call: cst.Call, names: Names) -> Tuple[Optional[Site], Optional[cst.Call]]:
    """A call of a name bound once to ``functools.partial(Optimizer, ...)``."""
    if not isinstance(call.func, cst.Name):
        return None, None
    partial = names.assigned(call.func.value)
    if not isinstance(partial, cst.Call):
        return None, None
    parts = _partial_parts(partial, names)
    if parts is None:
        return None, None
    site = _site(call, parts[0], parts[1], names, (*partial.args[1:], *call.args))
    site.origin = partial
    return site, partial


def bound_site(call: cst.Call, func: cst.BaseExpression, fact: OptimizerFact, names: Names, args: Sequence[cst.Arg]) -> Site:
    """A site for ``call``, which passes ``args`` to the class ``func`` names."""
    return _site(call, func, fact, names, args)


def _site(call: cst.Call, func: cst.BaseExpression, fact: OptimizerFact, names: Names, args: Sequence[cst.Arg]) -> Site:
    arguments, open_ = _bind(fact, args)
    params = arguments.get(PARAMS)
    groups = _groups(params.value, names) if params is not None else None
    return Site(call, func, fact, names, arguments, open_, groups)


PARAM_GROUPS = ("wd_guard.param_groups", "wd_guard.groups.param_groups")


def _helper_groups(value: cst.BaseExpression, names: Names) -> Optional[List[Group]]:
    """The decay and no-decay groups of ``wd_guard.param_groups(model, weight_decay=...)``."""
    if not isinstance(value, cst.Call) or names.qualified(value.func) not in PARAM_GROUPS:
        return None
    decay = next((arg.value for arg in value.args if arg.keyword is not None and arg.keyword.value == WEIGHT_DECAY), None)
    if decay is None and len(value.args) > 1 and value.args[1].keyword is None and not value.args[1].star:
        decay = value.args[1].value
    if decay is None:
        return None
    return [Group(value, {WEIGHT_DECAY: decay}), Group(value, {WEIGHT_DECAY: cst.Float("0.0")})]


def bind(fact: OptimizerFact, args: Sequence[cst.Arg]) -> Tuple[Dict[str, cst.Arg], bool]:
    """Arguments by parameter name, and whether the call may pass options it does not show."""
    return _bind(fact, args)


def _bind(fact: OptimizerFact, args: Sequence[cst.Arg]) -> Tuple[Dict[str, cst.Arg], bool]:
    """Arguments by parameter name, as Python would bind them; later keywords win, as in a
    call of a partial."""
    positional_names = (PARAMS, *fact.positional)
    arguments: Dict[str, cst.Arg] = {}
    open_ = False
    index: Optional[int] = 0
    for arg in args:
        if arg.star == "**":
            open_ = True
        elif arg.star == "*":
            open_, index = True, None  # positions after ``*args`` are unknown
        elif arg.keyword is not None:
            arguments[arg.keyword.value] = arg
        elif index is None or index >= len(positional_names):
            open_ = True
        else:
            arguments[positional_names[index]] = arg
            index += 1
    return arguments, open_


def _groups(params: cst.BaseExpression, names: Names) -> Optional[List[Group]]:
    """The param groups when ``params`` is (or is bound once to) a literal list of dicts."""
    value = names.follow(params)
    helper = _helper_groups(value, names)
    if helper is not None:
        return helper
    if isinstance(value, (cst.ListComp, cst.GeneratorExp)):
        group = _group(value.elt, names)
        return [group] if group is not None else None
    if not isinstance(value, (cst.List, cst.Tuple)):
        return None
    groups = [_group(element.value, names) if isinstance(element, cst.Element) else None for element in value.elements]
    if not any(groups):
        return None  # a list of tensors, not of groups
    return [group if group is not None else Group(element, open=True) for group, element in zip(groups, value.elements)]


def read_group(expr: cst.BaseExpression, names: Names) -> Optional[Group]:
    """The param group a ``{...}`` or ``dict(...)`` expression spells, or None."""
    return _group(expr, names)


def _group(expr: cst.BaseExpression, names: Names) -> Optional[Group]:
    if isinstance(expr, cst.Dict):
        group = Group(expr)
        for element in expr.elements:
            key = string_value(element.key) if isinstance(element, cst.DictElement) else None
            if key is None:
                group.open = True
            else:
                group.options[key] = element.value
        return group
    if isinstance(expr, cst.Call) and names.is_builtin(expr.func, "dict"):
        group = Group(expr)
        for arg in expr.args:
            if arg.keyword is None:
                group.open = True
            else:
                group.options[arg.keyword.value] = arg.value
        return group
    return None


def iter_decaying(sites: Sequence[Site]) -> Iterator[Site]:
    """Sites where some group certainly has a weight decay that is not literally zero."""
    return (site for site in sites if any(site.decays(group) for group in site.scopes()))
