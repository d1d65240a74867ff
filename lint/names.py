"""Light name resolution for one file, without importing it.

The table records every binding of every name in the file, whatever its scope: imports
(``import torch.optim as optim``, ``from torch.optim import Adam as A``, star imports) and
everything else that binds a name (assignments, definitions, parameters, loop targets).
A name resolves to a qualified name only when the file binds it in one unambiguous way, so a
user's own ``class Adam`` or a name rebound in several places stays unresolved: the rules
treat what cannot be followed as unknown and stay silent.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Set, Tuple, Union

import libcst as cst

Number = Union[int, float]

_FOLLOW_LIMIT = 8  # alias chains longer than this are not followed (and cycles end)
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


class NameTable:
    """Every binding of every name in one file, and what can be concluded from them."""

    def __init__(self) -> None:
        self._imports: Dict[str, Set[str]] = {}
        self._others: Dict[str, List[Optional[cst.CSTNode]]] = {}
        self.star_modules: List[str] = []

    # -- building (called by the engine's walk) -------------------------------------------

    def add_import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = dotted(alias.name)
            if full is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self._imports.setdefault(alias.asname.name.value, set()).add(full)
            else:
                head = full.split(".", 1)[0]
                self._imports.setdefault(head, set()).add(head)

    def add_import_from(self, node: cst.ImportFrom) -> None:
        base = dotted(node.module) if node.module is not None else ""
        module = "." * len(node.relative) + (base or "")
        if isinstance(node.names, cst.ImportStar):
            self.star_modules.append(module)
            return
        for alias in node.names:
            name = dotted(alias.name)
            if name is None:
                continue
            local = alias.asname.name.value if alias.asname is not None and isinstance(alias.asname.name, cst.Name) else name
            self._imports.setdefault(local, set()).add(f"{module}.{name}")

    def bind(self, name: str, value: Optional[cst.CSTNode] = None) -> None:
        """Record a non-import binding; ``value`` is the assigned expression or definition."""
        self._others.setdefault(name, []).append(value)

    def bind_target(self, target: cst.CSTNode, value: Optional[cst.CSTNode] = None) -> None:
        """Record the names an assignment, loop or ``with`` target binds."""
        if isinstance(target, cst.Name):
            self.bind(target.value, value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self.bind_target(element.value)
        elif isinstance(target, cst.StarredElement):
            self.bind_target(target.value)

    # -- queries ---------------------------------------------------------------------------

    def is_unbound(self, name: str) -> bool:
        """Whether the file never binds ``name`` (so it is a builtin, or a star import's)."""
        return name not in self._imports and name not in self._others

    def is_builtin(self, expr: cst.BaseExpression, name: str) -> bool:
        """Whether ``expr`` is the builtin ``name`` (``sum``, ``filter``, ...), never rebound here."""
        return isinstance(expr, cst.Name) and expr.value == name and self.is_unbound(name)

    def bindings(self, name: str) -> Tuple[Optional[cst.CSTNode], ...]:
        """The non-import bindings of ``name``: assigned values and definitions (None for a
        binding without a single value, such as a loop target or a parameter)."""
        return tuple(self._others.get(name, ()))

    def is_imported(self, name: str) -> bool:
        """Whether an import statement binds ``name``."""
        return name in self._imports

    def assigned(self, name: str) -> Optional[cst.CSTNode]:
        """The value of the one binding of ``name`` when that binding is a plain assignment
        or a definition; None when ``name`` is imported, rebound or bound otherwise."""
        bindings = self._others.get(name)
        if name in self._imports or bindings is None or len(bindings) != 1:
            return None
        return bindings[0]

    def follow(self, expr: cst.BaseExpression) -> cst.BaseExpression:
        """``expr`` with names bound once by ``name = value`` replaced by their value."""
        for _ in range(_FOLLOW_LIMIT):
            if not isinstance(expr, cst.Name):
                return expr
            value = self.assigned(expr.value)
            if not isinstance(value, cst.BaseExpression):
                return expr
            expr = value
        return expr

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
        name = expr.value
        imports = self._imports.get(name)
        if imports is not None:
            return next(iter(imports)) if len(imports) == 1 and name not in self._others else None
        if name in self._others:
            value = self.assigned(name)
            return self.qualified(value, _depth + 1) if isinstance(value, cst.BaseExpression) else None
        return f"builtins.{name}"

    def star_candidates(self, expr: cst.BaseExpression) -> Tuple[str, ...]:
        """Qualified names an unbound ``expr`` may have come from through star imports."""
        if isinstance(expr, cst.Name) and self.is_unbound(expr.value):
            return tuple(f"{module}.{expr.value}" for module in self.star_modules)
        return ()

    # -- constant values -------------------------------------------------------------------

    def number(self, expr: cst.CSTNode, _depth: int = 0) -> Optional[Number]:
        """The numeric value of a literal, a sum or product of literals, or a name bound
        once to one; None when the value cannot be known without running the code."""
        if _depth > _FOLLOW_LIMIT:
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
            value = self.assigned(expr.value)
            return self.number(value, _depth + 1) if isinstance(value, cst.BaseExpression) else None
        return None

    def truth(self, expr: cst.CSTNode, _depth: int = 0) -> Optional[bool]:
        """The truth value of ``True``/``False``/``None``, a number, or a name bound once to
        one of them; None when unknown."""
        if isinstance(expr, cst.Name) and expr.value in _CONSTANTS and self.is_unbound(expr.value):
            return bool(_CONSTANTS[expr.value])
        if isinstance(expr, cst.Name) and _depth <= _FOLLOW_LIMIT:
            value = self.assigned(expr.value)
            if isinstance(value, cst.BaseExpression):
                return self.truth(value, _depth + 1)
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
            result = left**right
        else:
            return None
    except (ArithmeticError, ValueError):
        return None
    if isinstance(result, complex) or (isinstance(result, float) and not math.isfinite(result)):
        return None
    return result
