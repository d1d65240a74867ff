"""Light name resolution for one file, without importing it.

The table records the bindings of every name in every scope of the file (module, functions,
lambdas, classes, comprehensions): imports (``import torch.optim as optim``, ``from torch.optim
import Adam as A``, star imports) and everything else that binds a name (assignments,
definitions, parameters, loop targets). A name resolves the way Python looks it up (local
scope, enclosing functions, module, builtins), and to a qualified name only when its scope
binds it in one unambiguous way: a user's own ``class Adam`` or a name rebound in several
places stays unresolved, and the rules treat what cannot be followed as unknown.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Set, Tuple, Union

import libcst as cst

Number = Union[int, float]

_FOLLOW_LIMIT = 8  # alias chains longer than this are not followed (and cycles end)
_DEPTH_LIMIT = 64  # expressions nested deeper than this are not evaluated
_CONSTANTS = {"True": True, "False": False, "None": None}


def dotted(expr: cst.BaseExpression) -> Optional[str]:
    """``a.b.c`` for a chain of names and attributes, else None."""
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        base = dotted(expr.value)
        return None if base is None else f"{base}.{expr.attr.value}"
    return None


def string_value(expr: cst.CSTNode) -> Optional[str]:
    """The value of a plain string literal (no f-string), else None."""
    if isinstance(expr, (cst.SimpleString, cst.ConcatenatedString)):
        value = expr.evaluated_value
        return value if isinstance(value, str) else None
    return None


class Scope:
    """The names one module, function, class or comprehension binds."""

    __slots__ = ("parent", "kind", "node", "imports", "import_nodes", "others", "globals", "nonlocals")

    def __init__(self, parent: Optional["Scope"], kind: str, node: Optional[cst.CSTNode] = None) -> None:
        self.parent = parent
        self.kind = kind  # "module", "function", "class" or "comprehension"
        self.node = node  # the definition or comprehension that opens the scope (None: module)
        self.imports: Dict[str, Set[str]] = {}
        self.import_nodes: Dict[str, List[Tuple[cst.CSTNode, cst.ImportAlias]]] = {}
        self.others: Dict[str, List[Optional[cst.CSTNode]]] = {}
        self.globals: Set[str] = set()
        self.nonlocals: Set[str] = set()

    def binds(self, name: str) -> bool:
        return name in self.imports or name in self.others

    def child(self, kind: str, node: Optional[cst.CSTNode] = None) -> "Scope":
        return Scope(self, kind, node)


class NameTable:
    """Every binding of every name in one file, by scope."""

    def __init__(self) -> None:
        self.module = Scope(None, "module")
        self.star_modules: List[str] = []
        self._everywhere: Dict[str, List[Optional[cst.CSTNode]]] = {}
        self._imported: Set[str] = set()
        self.scope_of: Dict[cst.CSTNode, Scope] = {}  # collected node -> scope it sits in
        self.inner_scope: Dict[cst.CSTNode, Scope] = {}  # function, class, ... -> its own scope

    # -- building (called by the engine's walk) -------------------------------------------

    def add_import(self, node: cst.Import, scope: Scope) -> None:
        for alias in node.names:
            full = dotted(alias.name)
            if full is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self._import(alias.asname.name.value, full, scope, (node, alias))
            else:
                head = full.split(".", 1)[0]
                self._import(head, head, scope, (node, alias))

    def add_import_from(self, node: cst.ImportFrom, scope: Scope) -> None:
        base = dotted(node.module) if node.module is not None else ""
        module = "." * len(node.relative) + (base or "")
        if isinstance(node.names, cst.ImportStar):
            self.star_modules.append(module)
            return
        for alias in node.names:
            name = dotted(alias.name)
            if name is None:
                continue
            asname = alias.asname.name if alias.asname is not None else None
            local = asname.value if isinstance(asname, cst.Name) else name
            self._import(local, f"{module}.{name}", scope, (node, alias))

    def _import(self, local: str, qualified: str, scope: Scope, where: Tuple[cst.CSTNode, cst.ImportAlias]) -> None:
        target = self._target(local, scope)
        target.imports.setdefault(local, set()).add(qualified)
        target.import_nodes.setdefault(local, []).append(where)
        self._imported.add(local)

    def bind(self, name: str, scope: Scope, value: Optional[cst.CSTNode] = None) -> None:
        """Record a non-import binding; ``value`` is the assigned expression or definition."""
        self._target(name, scope).others.setdefault(name, []).append(value)
        self._everywhere.setdefault(name, []).append(value)

    def bind_target(self, target: cst.CSTNode, scope: Scope, value: Optional[cst.CSTNode] = None) -> None:
        """Record the names an assignment, loop or ``with`` target binds."""
        if isinstance(target, cst.Name):
            self.bind(target.value, scope, value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self.bind_target(element.value, scope)
        elif isinstance(target, cst.StarredElement):
            self.bind_target(target.value, scope)

    def _target(self, name: str, scope: Scope) -> Scope:
        """The scope a binding of ``name`` in ``scope`` lands in (``global``, ``nonlocal``)."""
        if name in scope.globals:
            return self.module
        if name in scope.nonlocals:
            # The enclosing binding changes in ways this table cannot follow: record an
            # unknown binding there as well, so that the name never resolves.
            outer = _enclosing_function(scope)
            if outer is not None:
                outer.others.setdefault(name, []).append(None)
        return scope

    # -- queries ---------------------------------------------------------------------------

    def at(self, node: cst.CSTNode) -> "Names":
        """Resolution as seen from ``node`` (a node the engine collected, or the module)."""
        return Names(self, self.scope_of.get(node, self.module))

    def inside(self, node: cst.CSTNode) -> "Names":
        """Resolution as seen from the body of a function, class or comprehension ``node``."""
        return Names(self, self.inner_scope.get(node, self.module))

    def bindings(self, name: str) -> Tuple[Optional[cst.CSTNode], ...]:
        """Every non-import binding of ``name`` in the whole file, whatever its scope."""
        return tuple(self._everywhere.get(name, ()))

    def is_imported(self, name: str) -> bool:
        """Whether an import statement anywhere in the file binds ``name``."""
        return name in self._imported


def _enclosing_function(scope: Scope) -> Optional[Scope]:
    outer = scope.parent
    while outer is not None and outer.kind not in ("function", "module"):
        outer = outer.parent
    return outer


class Names:
    """Name resolution from one scope of a file."""

    __slots__ = ("table", "scope")

    def __init__(self, table: NameTable, scope: Scope) -> None:
        self.table = table
        self.scope = scope

    def _owner(self, name: str) -> Optional[Scope]:
        """The scope whose binding of ``name`` a use in this scope sees, or None (builtin)."""
        scope: Optional[Scope] = self.scope
        first = True
        while scope is not None:
            # Class bodies are visible to their own statements only, not to nested functions.
            if (first or scope.kind != "class") and scope.binds(name):
                return scope
            scope, first = scope.parent, False
        return None

    def is_unbound(self, name: str) -> bool:
        """Whether no scope visible from here binds ``name`` (a builtin or star import)."""
        return self._owner(name) is None

    def is_builtin(self, expr: cst.BaseExpression, name: str) -> bool:
        """Whether ``expr`` is the builtin ``name`` (``sum``, ``filter``, ...), not rebound."""
        return isinstance(expr, cst.Name) and expr.value == name and self.is_unbound(name)

    def assigned(self, name: str) -> Optional[cst.CSTNode]:
        """The value of the one binding of ``name`` that this scope sees, when that binding is
        a plain assignment or a definition; None when ``name`` is imported, rebound or bound
        in another way."""
        found = self._assignment(name)
        return None if found is None else found[0]

    def _assignment(self, name: str) -> Optional[Tuple[cst.CSTNode, "Names"]]:
        owner = self._owner(name)
        if owner is None or name in owner.imports:
            return None
        bindings = owner.others[name]
        if len(bindings) != 1 or bindings[0] is None:
            return None
        return bindings[0], Names(self.table, owner)

    def all_bindings(self, name: str) -> Optional[Tuple[Tuple[cst.CSTNode, ...], "Names"]]:
        """Every binding of ``name`` in the scope whose binding this scope sees, in source
        order (values, definitions, ``Param`` or ``AugAssign`` nodes), with resolution from
        that scope; None when an import or a binding that records no value is among them."""
        owner = self._owner(name)
        if owner is None or name in owner.imports or name in owner.nonlocals:
            return None
        bindings = owner.others[name]
        if any(binding is None for binding in bindings):
            return None
        return tuple(bindings), Names(self.table, owner)  # type: ignore[arg-type]

    def follow(self, expr: cst.BaseExpression) -> cst.BaseExpression:
        """``expr`` with names bound once by ``name = value`` replaced by their value."""
        return self._follow(expr)[0]

    def _follow(self, expr: cst.BaseExpression) -> Tuple[cst.BaseExpression, "Names"]:
        names: Names = self
        for _ in range(_FOLLOW_LIMIT):
            if not isinstance(expr, cst.Name):
                break
            found = names._assignment(expr.value)
            if found is None or not isinstance(found[0], cst.BaseExpression):
                break
            expr, names = found  # type: ignore[assignment]
        return expr, names

    def qualified(self, expr: cst.BaseExpression, _depth: int = 0) -> Optional[str]:
        """The qualified name ``expr`` refers to (``'torch.optim.Adam'``), or None.

        Unbound names resolve to ``builtins.<name>``; names bound once by ``alias = value``
        resolve through the value.
        """
        if _depth > _FOLLOW_LIMIT:
            return None
        if isinstance(expr, cst.Attribute):
            base = self.qualified(expr.value, _depth)
            return None if base is None else f"{base}.{expr.attr.value}"
        if not isinstance(expr, cst.Name):
            return None
        owner = self._owner(expr.value)
        if owner is None:
            return f"builtins.{expr.value}"
        imports = owner.imports.get(expr.value)
        if imports is not None:
            return next(iter(imports)) if len(imports) == 1 and expr.value not in owner.others else None
        found = self._assignment(expr.value)
        if found is None or not isinstance(found[0], cst.BaseExpression):
            return None
        return found[1].qualified(found[0], _depth + 1)

    def import_of(self, name: str) -> Optional[Tuple[cst.CSTNode, cst.ImportAlias]]:
        """The import statement and alias that bind ``name`` as seen from here, when one
        import (and nothing else) binds it."""
        owner = self._owner(name)
        if owner is None or name in owner.others:
            return None
        found = owner.import_nodes.get(name, [])
        return found[0] if len(found) == 1 else None

    def local_name_for(self, qualified: str) -> Optional[str]:
        """A name visible from here that an import binds to ``qualified``, if any."""
        scope: Optional[Scope] = self.scope
        while scope is not None:
            for name, targets in scope.imports.items():
                if targets == {qualified} and self._owner(name) is scope and name not in scope.others:
                    return name
            scope = scope.parent
        return None

    def star_candidates(self, expr: cst.BaseExpression) -> Tuple[str, ...]:
        """Qualified names an unbound ``expr`` may have come from through star imports."""
        if isinstance(expr, cst.Name) and self.is_unbound(expr.value):
            return tuple(f"{module}.{expr.value}" for module in self.table.star_modules)
        return ()

    # -- constant values -------------------------------------------------------------------

    def number(self, expr: cst.CSTNode, _depth: int = 0) -> Optional[Number]:
        """The numeric value of a literal, of arithmetic on literals, or of a name bound
        once to one; None when the value cannot be known without running the code."""
        if _depth > _DEPTH_LIMIT:
            return None
        if isinstance(expr, cst.Integer):
            return _int(expr.value)
        if isinstance(expr, cst.Float):
            return float(expr.value.replace("_", ""))
        if isinstance(expr, cst.UnaryOperation):
            value = self.number(expr.expression, _depth + 1)
            if value is None or not isinstance(expr.operator, (cst.Minus, cst.Plus)):
                return None
            return -value if isinstance(expr.operator, cst.Minus) else value
        if isinstance(expr, cst.BinaryOperation):
            return _arithmetic(expr.operator, self.number(expr.left, _depth + 1), self.number(expr.right, _depth + 1))
        if isinstance(expr, cst.Name) and expr.value not in _CONSTANTS:
            found = self._assignment(expr.value)
            if found is None or not isinstance(found[0], cst.BaseExpression):
                return None
            return found[1].number(found[0], _depth + _DEPTH_LIMIT // _FOLLOW_LIMIT)
        return None

    def truth(self, expr: cst.CSTNode) -> Optional[bool]:
        """The truth value of ``True``/``False``/``None``, of a number, or of a name bound
        once to one of them; None when unknown."""
        if isinstance(expr, cst.Name):
            if expr.value in _CONSTANTS and self.is_unbound(expr.value):
                return bool(_CONSTANTS[expr.value])
            value, names = self._follow(expr)
            if value is not expr:
                return names.truth(value)
        number = self.number(expr)
        return None if number is None else number != 0

    def is_zero(self, expr: cst.CSTNode) -> bool:
        """Whether ``expr`` is provably zero (or None, which means no decay either)."""
        if isinstance(expr, cst.IfExp):
            return self.is_zero(expr.body) and self.is_zero(expr.orelse)
        if isinstance(expr, cst.Name) and expr.value == "None" and self.is_unbound("None"):
            return True
        value = self.number(expr)
        return value is not None and value == 0


def _int(text: str) -> Optional[int]:
    text = text.replace("_", "")
    try:
        return int(text, 0)
    except ValueError:
        return int(text, 10) if text.isdigit() else None


def _arithmetic(operator: cst.BaseBinaryOp, left: Optional[Number], right: Optional[Number]) -> Optional[Number]:
    if left is None or right is None:
        return None
    try:
        if isinstance(operator, cst.Add):
            result = left + right
        elif isinstance(operator, cst.Subtract):
            result = left - right
        elif isinstance(operator, cst.Multiply):
            result = left * right
        elif isinstance(operator, cst.Divide):
            result = left / right
        elif isinstance(operator, cst.Power) and abs(right) <= 64:
            result = float(left) ** right  # floats: nested powers must not grow huge integers
        else:
            return None
    except (ArithmeticError, ValueError):
        return None
    if isinstance(result, complex) or (isinstance(result, float) and not math.isfinite(result)):
        return None
    return result
