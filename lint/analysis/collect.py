"""The engine's single walk over a parsed file.

It collects the node types the active rules read, records the scope each collected node sits
in, and fills the file's :class:`NameTable` with every binding on the way. Like
:func:`~wd_guard.lint.analysis.walk.iter_nodes` it reads node fields directly rather than going
through libcst's visitors, which rebuild every node they pass.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Tuple, Type, Union

import libcst as cst

from wd_guard.lint.analysis.names import NameTable, Scope
from wd_guard.lint.rules.base import FileContext, LintRule
from wd_guard.lint.analysis.walk import NODE_TYPES, child_fields


# Nodes whose children live in a scope of their own.
_NEW_SCOPE = {
    cst.FunctionDef: "function",
    cst.Lambda: "function",
    cst.ClassDef: "class",
    cst.ListComp: "comprehension",
    cst.SetComp: "comprehension",
    cst.DictComp: "comprehension",
    cst.GeneratorExp: "comprehension",
}

Binder = Callable[[cst.CSTNode, Scope], None]


def build_context(module: cst.Module, path: str, rules: Iterable[Type[LintRule]]) -> FileContext:
    """Walk ``module`` once: collect the node types ``rules`` read and fill the name table."""
    table = NameTable()
    nodes: Dict[type, List[cst.CSTNode]] = {node_type: [] for rule in rules for node_type in rule.NODES}
    binders = _binders(table)
    scope_of = table.scope_of
    stack: List[Tuple[cst.CSTNode, Scope]] = [(module, table.module)]
    pop, push = stack.pop, stack.append
    while stack:
        node, scope = pop()
        node_type = type(node)
        bucket = nodes.get(node_type)
        if bucket is not None:
            bucket.append(node)
            scope_of[node] = scope
        binder = binders.get(node_type)
        if binder is not None:
            binder(node, scope)
        kind = _NEW_SCOPE.get(node_type)
        if kind is not None:
            scope = scope.child(kind, node)
            table.inner_scope[node] = scope
        # Children are pushed last-first so that they are met first-first (source order).
        for name in child_fields(node_type):
            value = getattr(node, name)
            if type(value) in NODE_TYPES:
                push((value, scope))
            elif type(value) is tuple or type(value) is list:
                for item in reversed(value):
                    push((item, scope))
    return FileContext(module, path, table, nodes)


def _binders(table: NameTable) -> Dict[type, Binder]:
    """What each binding construct contributes to the name table."""

    def assign(node: cst.Assign, scope: Scope) -> None:
        for target in node.targets:
            table.bind_target(target.target, scope, node.value)

    def ann_assign(node: cst.AnnAssign, scope: Scope) -> None:
        if node.value is not None:
            table.bind_target(node.target, scope, node.value)

    def with_item(node: cst.WithItem, scope: Scope) -> None:
        if node.asname is not None:
            table.bind_target(node.asname.name, scope)

    def handler(node: cst.ExceptHandler, scope: Scope) -> None:
        if node.name is not None:
            table.bind_target(node.name.name, scope)

    def named(node: Union[cst.MatchAs, cst.MatchStar], scope: Scope) -> None:
        if node.name is not None:
            table.bind(node.name.value, scope)

    def walrus(node: cst.NamedExpr, scope: Scope) -> None:
        while scope.kind == "comprehension" and scope.parent is not None:
            scope = scope.parent  # PEP 572: the target belongs to the enclosing function
        table.bind_target(node.target, scope)

    def declare(names: str) -> Binder:
        def binder(node: Union[cst.Global, cst.Nonlocal], scope: Scope) -> None:
            getattr(scope, names).update(item.name.value for item in node.names)

        return binder

    def target(node: cst.CSTNode, scope: Scope) -> None:
        table.bind_target(node.target, scope)  # type: ignore[attr-defined]

    def definition(node: Union[cst.FunctionDef, cst.ClassDef], scope: Scope) -> None:
        table.bind(node.name.value, scope, node)

    return {
        cst.Import: table.add_import,
        cst.ImportFrom: table.add_import_from,
        cst.Assign: assign,
        cst.AnnAssign: ann_assign,
        cst.AugAssign: lambda node, scope: table.bind_target(node.target, scope, node),
        cst.For: target,
        cst.CompFor: target,
        cst.Del: target,
        cst.NamedExpr: walrus,
        cst.FunctionDef: definition,
        cst.ClassDef: definition,
        cst.Param: lambda node, scope: table.bind(node.name.value, scope, node),
        cst.WithItem: with_item,
        cst.ExceptHandler: handler,
        cst.MatchAs: named,
        cst.MatchStar: named,
        cst.Global: declare("globals"),
        cst.Nonlocal: declare("nonlocals"),
    }
