"""Fixes for the optimizer rules, built on libcst so that layout and comments survive.

WD101: ``Adam(...)`` becomes ``AdamW(...)`` (the decoupled counterpart the optimizer table
knows), keeping every argument and the import style; an explicit ``decoupled_weight_decay=False``
becomes ``True``; an optimizer with a decoupling flag and no counterpart (NAdam, RAdam) gets
``decoupled_weight_decay=True``. WD210: ``Opt(model.parameters(), ..., weight_decay=wd)`` becomes
``Opt(wd_guard.param_groups(model, weight_decay=wd), ...)``, with ``import wd_guard`` added.
Both change what the code does and are unsafe fixes. Anything the fix cannot do exactly (an
alias bound by assignment, a name already taken, a positional argument in the middle) means
no fix is offered.
"""

from __future__ import annotations

from collections import Counter
from typing import List, Optional, Tuple

import libcst as cst

from wd_guard.catalogue import RETUNE_HINT
from wd_guard.optimizers import DecayKind, OptimizerFact, lookup

from wd_guard.lint.analysis.names import Names, dotted, string_value
from wd_guard.lint.analysis.walk import iter_nodes
from wd_guard.lint.fixes.layout import comments_in
from wd_guard.lint.fixes.imports import import_placement
from wd_guard.lint.rules.base import Change, DeleteLines, FileContext, FixPlan, InsertLines, Replace
from wd_guard.lint.fixes import partials
from wd_guard.lint.rules.sites import PARAMS, WEIGHT_DECAY, Site

HELPER_MODULE = "wd_guard"
HELPER = "param_groups"
_NO_SPACE = cst.SimpleWhitespace("")


def decoupled_counterpart(fact: OptimizerFact) -> Optional[OptimizerFact]:
    """The decoupled optimizer named like ``fact`` plus ``W`` with the same arguments (AdamW
    for Adam), if the optimizer table knows one."""
    other = lookup(f"{fact.name}W")
    if other is not None and other.decay is DecayKind.DECOUPLED and other.positional == fact.positional:
        return other
    return None


# -- layout-keeping edits of argument and import lists ------------------------------------


def _continuation(tail: object, before: object) -> Tuple[object, object]:
    """Whitespace for an item inserted after one whose following whitespace is ``tail``, in a
    list whose items are preceded by ``before``: what follows the old item's new comma (its
    own comment stays on its line, the next line is indented like the items) and what
    follows the new item. Items on one line are simply separated by a space."""
    if isinstance(tail, cst.ParenthesizedWhitespace) and isinstance(before, cst.ParenthesizedWhitespace):
        after_old = tail.with_changes(indent=before.indent, last_line=before.last_line)
        return after_old, tail.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=[])
    return cst.SimpleWhitespace(" "), tail


def append_keyword(call: cst.Call, name: str, value: cst.BaseExpression) -> cst.Call:
    """``call`` with ``name=value`` added after its last argument, in the call's layout."""
    args = list(call.args)
    last = args[-1]
    before = args[-2].comma.whitespace_after if len(args) > 1 and isinstance(args[-2].comma, cst.Comma) else call.whitespace_before_args
    trailing = isinstance(last.comma, cst.Comma)
    after_old, after_new = _continuation(last.comma.whitespace_after if trailing else last.whitespace_after_arg, before)
    comma = last.comma if trailing else cst.Comma(whitespace_before=_NO_SPACE)
    equal = cst.AssignEqual(whitespace_before=_NO_SPACE, whitespace_after=_NO_SPACE)
    added = cst.Arg(value=value, keyword=cst.Name(name), equal=equal)
    if trailing:
        added = added.with_changes(comma=last.comma.with_changes(whitespace_after=after_new), whitespace_after_arg=last.whitespace_after_arg)
        args[-1] = last.with_changes(comma=comma.with_changes(whitespace_after=after_old))
    else:
        added = added.with_changes(whitespace_after_arg=after_new)
        args[-1] = last.with_changes(comma=comma.with_changes(whitespace_after=after_old), whitespace_after_arg=_NO_SPACE)
    return call.with_changes(args=[*args, added])


def drop_arg(call: cst.Call, arg: cst.Arg) -> Optional[cst.Call]:
    """``call`` without ``arg``; comments on the lines before it, a trailing comma and the
    line break before ``)`` stay, and the argument's own comments stay on lines of their own
    where it was. None when they cannot (an argument and its comment on one line with others)."""
    args = list(call.args)
    index = next(i for i, item in enumerate(args) if item is arg)
    before = args[index - 1].comma.whitespace_after if index > 0 and isinstance(args[index - 1].comma, cst.Comma) else call.whitespace_before_args
    if index == len(args) - 1 and index > 0:
        previous = args[index - 1]
        trailing = isinstance(arg.comma, cst.Comma)
        tail = arg.comma.whitespace_after if trailing else arg.whitespace_after_arg
        kept = _joined(previous.comma.whitespace_after, tail) if isinstance(previous.comma, cst.Comma) else tail
        if trailing:
            args[index - 1] = previous.with_changes(comma=arg.comma.with_changes(whitespace_after=kept))
        else:
            args[index - 1] = previous.with_changes(comma=cst.MaybeSentinel.DEFAULT, whitespace_after_arg=kept)
    del args[index]
    lost = Counter(comments_in(call)) - Counter(comments_in(call.with_changes(args=args)))
    if not lost:
        return call.with_changes(args=args)
    return _keep_comments(call, args, index, list(lost.elements()), before)


def _keep_comments(call: cst.Call, args: List[cst.Arg], index: int, comments: List[str], before: object) -> Optional[cst.Call]:
    """``call`` with ``args`` (one removed at ``index``) and ``comments`` on lines of their own
    in the gap the argument left, indented like the argument was (``before`` preceded it)."""
    if not isinstance(before, cst.ParenthesizedWhitespace):
        return None

    def with_lines(space: object) -> Optional[cst.ParenthesizedWhitespace]:
        if not isinstance(space, cst.ParenthesizedWhitespace):
            return None
        lines = [cst.EmptyLine(indent=before.indent, whitespace=before.last_line, comment=cst.Comment(c)) for c in comments]
        return space.with_changes(empty_lines=[*space.empty_lines, *lines])

    if index == 0:
        gap = with_lines(call.whitespace_before_args)
        return None if gap is None else call.with_changes(whitespace_before_args=gap, args=args)
    previous = args[index - 1]
    if isinstance(previous.comma, cst.Comma):
        gap = with_lines(previous.comma.whitespace_after)
        previous = previous.with_changes(comma=previous.comma.with_changes(whitespace_after=gap)) if gap is not None else previous
    else:
        gap = with_lines(previous.whitespace_after_arg)
        previous = previous.with_changes(whitespace_after_arg=gap) if gap is not None else previous
    if gap is None:
        return None
    args[index - 1] = previous
    return call.with_changes(args=args)


def _joined(before: object, tail: object) -> object:
    """The whitespace before a removed last item followed by the one after it: comments
    before the item stay, the closing bracket keeps its indentation."""
    if isinstance(before, cst.ParenthesizedWhitespace) and isinstance(tail, cst.ParenthesizedWhitespace):
        return before.with_changes(indent=tail.indent, last_line=tail.last_line)
    return tail


def insert_alias_after(statement: cst.ImportFrom, alias: cst.ImportAlias, name: str) -> cst.ImportFrom:
    """``from m import a`` becomes ``from m import a, name``, in the statement's layout."""
    aliases = list(statement.names)  # type: ignore[arg-type]
    index = next(i for i, item in enumerate(aliases) if item is alias)
    previous = aliases[index - 1].comma if index > 0 else None
    before = previous.whitespace_after if isinstance(previous, cst.Comma) else (statement.lpar.whitespace_after if statement.lpar else None)
    has_comma = isinstance(alias.comma, cst.Comma)
    rpar = statement.rpar
    tail = alias.comma.whitespace_after if has_comma else (rpar.whitespace_before if rpar else None)
    after_old, after_new = _continuation(tail, before)
    comma = alias.comma if has_comma else cst.Comma(whitespace_before=_NO_SPACE)
    aliases[index] = alias.with_changes(comma=comma.with_changes(whitespace_after=after_old))
    if has_comma:
        aliases.insert(index + 1, cst.ImportAlias(name=cst.Name(name), comma=alias.comma.with_changes(whitespace_after=after_new)))
        return statement.with_changes(names=aliases)
    aliases.insert(index + 1, cst.ImportAlias(name=cst.Name(name)))
    if rpar is not None:
        return statement.with_changes(names=aliases, rpar=rpar.with_changes(whitespace_before=after_new))
    return statement.with_changes(names=aliases)


def drop_alias(statement: cst.ImportFrom, alias: cst.ImportAlias) -> cst.ImportFrom:
    """``statement`` without ``alias`` (which must not be its only one)."""
    aliases = list(statement.names)  # type: ignore[arg-type]
    index = next(i for i, item in enumerate(aliases) if item is alias)
    if index == len(aliases) - 1:
        aliases[index - 1] = aliases[index - 1].with_changes(comma=alias.comma)
    del aliases[index]
    return statement.with_changes(names=aliases)


def rename_alias(statement: cst.ImportFrom, alias: cst.ImportAlias, name: str) -> cst.ImportFrom:
    """``from m import a as b`` becomes ``from m import name``."""
    return statement.deep_replace(alias, alias.with_changes(name=cst.Name(name), asname=None))  # type: ignore[return-value]


def name_counts(ctx: FileContext) -> Counter:
    """How often each name is read in the file, whatever the scope (computed once a file).
    A string holding just the name counts too: ``__all__ = ["Adam"]`` re-exports it."""
    counts: Counter = Counter()
    for node in iter_nodes(ctx.module):
        if isinstance(node, cst.Name):
            counts[node.value] += 1
        elif isinstance(node, cst.SimpleString):
            value = string_value(node)
            if value is not None and value.isidentifier():
                counts[value] += 1
    return counts


def other_uses(ctx: FileContext, name: cst.Name) -> int:
    """How many other reads of ``name``'s identifier the file has (any scope: a safe count)."""
    return ctx.shared(name_counts)[name.value] - 1


# -- WD101 -------------------------------------------------------------------------------


def decouple(site: Site, ctx: FileContext) -> Optional[FixPlan]:
    """Make the site's decay decoupled: set the flag, rename to the counterpart, or pass it.
    The number stays while its meaning changes, so the title says to retune it."""
    plan = _decouple(site, ctx)
    return None if plan is None else FixPlan(f"{plan.title}; {RETUNE_HINT}", plan.changes)


def _decouple(site: Site, ctx: FileContext) -> Optional[FixPlan]:
    flag = site.fact.decoupled_flag
    if flag is not None and any(group is not None and flag in group.options for group in site.scopes()):
        return None  # groups that set the flag themselves are left to the user
    given = site.arguments.get(flag) if flag is not None else None
    if given is not None:
        if site.names.truth(given.value) is False and _within(given, site.call):
            return FixPlan(f"Set {flag}=True", (Replace(given.value, "True"),))
        return None
    counterpart = decoupled_counterpart(site.fact)
    plan = _rename(site, counterpart, ctx) if counterpart is not None else None
    if plan is None and flag is not None:
        added = append_keyword(site.call, flag, cst.Name("True"))
        plan = FixPlan(f"Pass {flag}=True", (Replace(site.call, added),))
    return plan


def _within(arg: cst.Arg, call: cst.Call) -> bool:
    return any(item is arg for item in call.args)


def _rename(site: Site, counterpart: OptimizerFact, ctx: FileContext) -> Optional[FixPlan]:
    names = ctx.names.at(site.holder)
    found = _renamed_callee(site.func, counterpart, names, ctx)
    if found is None:
        return None
    target, new_name, imports = found
    title = f"Replace {site.fact.short_name} with {counterpart.short_name}"
    if site.origin is not None:
        return _rename_partial(site, site.origin, target, new_name, title, imports, ctx)
    if not _needs_default_decay(site):
        return FixPlan(title, (Replace(target, new_name), *imports))
    # AdamW's default decay differs from Adam's: groups without their own keep Adam's.
    call = append_keyword(site.call.deep_replace(target, cst.Name(new_name)), WEIGHT_DECAY, _default_decay(site))  # type: ignore[arg-type]
    return FixPlan(title, (Replace(site.call, call), *imports))


def _needs_default_decay(site: Site) -> bool:
    return bool(site.groups) and WEIGHT_DECAY not in site.arguments and any(
        group is not None and WEIGHT_DECAY not in group.options for group in site.scopes()
    )


def _default_decay(site: Site) -> cst.Float:
    return cst.Float(repr(float(site.fact.default_weight_decay)))


def _rename_partial(
    site: Site, partial: cst.Call, target: cst.Name, new_name: str, title: str, imports: Tuple[Change, ...], ctx: FileContext
) -> Optional[FixPlan]:
    """Rename the class inside ``functools.partial(Class, ...)``, which serves every call of it:
    unless it sets the decay or every use is a call that passes one, it gets the old default
    (zero for Adam), which calls still override; none may pass the decay by position."""
    given = partials.decay_in_partial(partial, site.fact)
    if given is None or not isinstance(site.call.func, cst.Name):
        return None  # ``*args`` or ``**kwargs`` in the partial: its decay is unknown
    if given:
        return FixPlan(title, (Replace(target, new_name), *imports))
    name = site.call.func.value
    calls = partials.calls_of(name, partial, ctx)
    if any(partials.may_pass_decay_by_position(call, partial, site.fact) for call in calls):
        return None
    unseen_uses = ctx.shared(name_counts)[name] - 1 - len(calls)  # besides its binding and the calls
    if not unseen_uses and all(partials.passes_decay(call) for call in calls):
        return FixPlan(title, (Replace(target, new_name), *imports))
    renamed = partial.deep_replace(target, cst.Name(new_name))
    return FixPlan(title, (Replace(partial, append_keyword(renamed, WEIGHT_DECAY, _default_decay(site))), *imports))  # type: ignore[arg-type]


Renamed = Tuple[cst.Name, str, Tuple[Change, ...]]


def _renamed_callee(func: cst.BaseExpression, counterpart: OptimizerFact, names: Names, ctx: FileContext) -> Optional[Renamed]:
    """The name node to replace, its new text and the import changes, keeping the style."""
    new = counterpart.short_name
    if isinstance(func, cst.Attribute):
        prefix = names.qualified(func.value)
        return (func.attr, new, ()) if prefix and lookup(f"{prefix}.{new}") is counterpart else None
    if not isinstance(func, cst.Name):
        return None
    found = names.import_of(func.value)
    if found is None:
        return _renamed_star(func, counterpart, names)
    statement, alias = found
    qualified = names.qualified(func)
    if not isinstance(statement, cst.ImportFrom) or qualified is None:
        return None
    target = f"{qualified.rpartition('.')[0]}.{new}"
    if lookup(target) is not counterpart:
        return None
    used_elsewhere = other_uses(ctx, func) > 0
    local = names.local_name_for(target) or names.local_name_for(counterpart.name)
    if local is not None:
        return func, local, () if used_elsewhere else (_remove_alias(statement, alias, ctx),)
    if not names.is_unbound(new):
        return None  # the new name is taken by something else
    edited = insert_alias_after(statement, alias, new) if used_elsewhere else rename_alias(statement, alias, new)
    return func, new, (Replace(statement, edited),)


def _renamed_star(func: cst.Name, counterpart: OptimizerFact, names: Names) -> Optional[Renamed]:
    new = counterpart.short_name
    modules = [c.rpartition(".")[0] for c in names.star_candidates(func) if lookup(c) is not None]
    if len(modules) != 1 or lookup(f"{modules[0]}.{new}") is not counterpart or not names.is_unbound(new):
        return None
    return func, new, ()


def _remove_alias(statement: cst.ImportFrom, alias: cst.ImportAlias, ctx: FileContext) -> Change:
    if len(statement.names) > 1:  # type: ignore[arg-type]
        return Replace(statement, drop_alias(statement, alias))
    return DeleteLines(statement)


# -- WD210 -------------------------------------------------------------------------------


def use_param_groups(site: Site, source: cst.Call, ctx: FileContext) -> Optional[FixPlan]:
    """Hand the optimizer ``wd_guard.param_groups(module, weight_decay=...)`` instead of every
    parameter of ``module``, moving the optimizer's decay into the helper."""
    params = site.arguments.get(PARAMS)
    if params is None or site.groups is not None or not _within(params, site.call):
        return None
    moved = _moved_decay(site)
    found = _helper_reference(ctx.names.at(site.call), ctx)
    if moved is None or found is None or not isinstance(source.func, cst.Attribute):
        return None
    decay, call = moved
    helper, imports = found
    replacement = _helper_call(helper, source.func.value, decay)
    call = call.deep_replace(params.value, replacement)  # type: ignore[assignment]
    title = f"Use {ctx.code(replacement)}"
    return FixPlan(title, (Replace(site.call, call), *imports))


def _moved_decay(site: Site) -> Optional[Tuple[cst.BaseExpression, cst.Call]]:
    """The decay to hand the helper, and the call without its ``weight_decay`` argument."""
    setting = site.setting(WEIGHT_DECAY)
    if setting is None:
        return None
    if setting.expr is None:
        return cst.Float(repr(float(setting.default))), site.call  # type: ignore[arg-type]
    given = site.arguments[WEIGHT_DECAY]
    if not _within(given, site.call) or not _removable(given, site.call):
        return None
    call = drop_arg(site.call, given)
    return None if call is None else (setting.expr, call)


def _helper_call(helper: str, module: cst.BaseExpression, decay: cst.BaseExpression) -> cst.Call:
    equal = cst.AssignEqual(whitespace_before=_NO_SPACE, whitespace_after=_NO_SPACE)
    return cst.Call(
        func=_dotted_expression(helper),
        args=[
            cst.Arg(value=module, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
            cst.Arg(value=decay, keyword=cst.Name(WEIGHT_DECAY), equal=equal),
        ],
    )


def _dotted_expression(name: str) -> cst.BaseExpression:
    """``a.b.c`` as libcst nodes, built directly: a parse would cost more than the whole fix."""
    first, *rest = name.split(".")
    expr: cst.BaseExpression = cst.Name(first)
    for part in rest:
        expr = cst.Attribute(value=expr, attr=cst.Name(part))
    return expr


def _removable(arg: cst.Arg, call: cst.Call) -> bool:
    """A keyword, or the last positional argument: removing it shifts nothing."""
    if arg.keyword is not None:
        return True
    positional = [item for item in call.args if item.keyword is None and not item.star]
    return positional[-1] is arg and not any(item.star == "*" for item in call.args)


def _helper_reference(names: Names, ctx: FileContext) -> Optional[Tuple[str, Tuple[Change, ...]]]:
    """How the code can call the helper, and the import to add for it, if any."""
    for qualified in (f"{HELPER_MODULE}.{HELPER}", f"{HELPER_MODULE}.groups.{HELPER}"):
        local = names.local_name_for(qualified)
        if local is not None:
            return local, ()
    module = names.local_name_for(HELPER_MODULE)
    if module is not None:
        return f"{module}.{HELPER}", ()
    existing = _helper_module_import(ctx)
    if existing is not None and names.is_unbound(HELPER):  # ``from wd_guard import audit`` gains it
        statement, last = existing
        return HELPER, (Replace(statement, insert_alias_after(statement, last, HELPER)),)
    if not names.is_unbound(HELPER_MODULE):
        return None
    placed = import_placement(ctx.module, HELPER_MODULE)
    if placed is None:
        return None
    anchor, before, text = placed
    return f"{HELPER_MODULE}.{HELPER}", (InsertLines(anchor, text, before=before),)


def _helper_module_import(ctx: FileContext) -> Optional[Tuple[cst.ImportFrom, cst.ImportAlias]]:
    """A module-level ``from wd_guard import ...`` (not a star import) and its last alias."""
    for found in ctx.names.module.import_nodes.values():
        for statement, _ in found:
            if isinstance(statement, cst.ImportFrom) and not statement.relative and statement.module is not None:
                if dotted(statement.module) == HELPER_MODULE and not isinstance(statement.names, cst.ImportStar):
                    return statement, statement.names[-1]
    return None


__all__: List[str] = ["append_keyword", "decouple", "decoupled_counterpart", "drop_alias", "drop_arg", "insert_alias_after", "use_param_groups"]
