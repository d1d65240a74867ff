"""Values a file fixes without running it, and where each comes from.

An option such as ``weight_decay=args.wd`` is unknown to plain constant folding, yet the file
often says what it is unless someone changes it: the default of ``--wd`` in its argparse
parser, a dataclass field's default, a module constant, or the default of a function
parameter that no call in the file overrides. :class:`Values` resolves those, and tells
where the value came from so that a message can show it. What may be changed by code the
file does not show (``parser.set_defaults``, a call that passes the parameter, two sources
that disagree) stays unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Set

import libcst as cst

from wd_guard.lint.analysis.names import Names, Number, dotted, string_value

_DEPTH_LIMIT = 8
_ARGPARSE_METHODS = ("add_argument",)
_TYPES = {"float": float, "int": int}


@dataclass(frozen=True)
class Value:
    """A resolved number and where it comes from (``origin`` names it, ``node`` is where)."""

    number: Number
    origin: Optional[str] = None
    node: Optional[cst.CSTNode] = None


@dataclass(frozen=True)
class _Default:
    value: Optional[cst.BaseExpression]
    origin: str
    node: cst.CSTNode
    names: Optional[Names] = None
    number: Optional[Number] = None


class Values:
    """Resolution of numbers in one file: constants, argparse defaults, dataclass defaults and
    function parameter defaults."""

    def __init__(self, calls: Sequence[cst.Call], classes: Sequence[cst.ClassDef], names_at: Callable[[cst.CSTNode], Names]) -> None:
        self._names_at = names_at
        self._calls = calls
        self._by_attribute: Dict[str, List[_Default]] = {}
        self._overridden: Set[str] = set()
        self._argparse(calls)
        self._dataclasses(classes)

    # -- indexing ---------------------------------------------------------------------------

    def _argparse(self, calls: Sequence[cst.Call]) -> None:
        for call in calls:
            func = call.func
            if not isinstance(func, cst.Attribute):
                continue
            if func.attr.value == "set_defaults":
                self._overridden.update(arg.keyword.value for arg in call.args if arg.keyword is not None)
                if any(arg.star for arg in call.args):
                    self._overridden.add("*")
            elif func.attr.value in _ARGPARSE_METHODS:
                dest = _dest(call)
                if dest is not None:
                    self._by_attribute.setdefault(dest, []).append(self._argument_default(call, dest))

    def _argument_default(self, call: cst.Call, dest: str) -> _Default:
        keywords = {arg.keyword.value: arg.value for arg in call.args if arg.keyword is not None}
        option = next((string_value(arg.value) for arg in call.args if arg.keyword is None), None) or dest
        origin = f"the default of {option}"
        value = keywords.get("default")
        action = string_value(keywords["action"]) if "action" in keywords else None
        if value is None:
            number = {"store_true": 0, "store_false": 1}.get(action or "")
            if number is None and action in (None, "store") and "nargs" not in keywords:
                return _Default(cst.Name("None"), origin, call, self._names_at(call))
            return _Default(None, origin, call, number=number)
        text = string_value(value)
        kind = keywords.get("type")
        if text is not None and isinstance(kind, cst.Name) and kind.value in _TYPES:
            try:
                return _Default(None, origin, call, number=_TYPES[kind.value](text))
            except ValueError:
                return _Default(None, origin, call)
        return _Default(value, origin, call, self._names_at(call))

    def _dataclasses(self, classes: Sequence[cst.ClassDef]) -> None:
        for node in classes:
            if not any(_is_dataclass(decorator.decorator) for decorator in node.decorators):
                continue
            body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
            for line in body:
                statements = line.body if isinstance(line, cst.SimpleStatementLine) else ()
                for statement in statements:
                    if isinstance(statement, cst.AnnAssign) and isinstance(statement.target, cst.Name) and statement.value is not None:
                        field = statement.target.value
                        origin = f"the default of {node.name.value}.{field}"
                        self._by_attribute.setdefault(field, []).append(_Default(statement.value, origin, statement, self._names_at(node)))
                        if self._constructed_with(node.name.value, field):
                            self._overridden.add(field)

    def _constructed_with(self, name: str, field: str) -> bool:
        """Whether a call of ``name`` in the file may set ``field`` (by keyword, position or
        unpacking)."""
        return any(_may_bind(call, field, None) for call in self._calls_of(name))

    def _calls_of(self, name: str) -> List[cst.Call]:
        found = []
        for call in self._calls:
            func = call.func
            if (isinstance(func, cst.Name) and func.value == name) or (isinstance(func, cst.Attribute) and func.attr.value == name):
                found.append(call)
        return found

    # -- resolution -------------------------------------------------------------------------

    def resolve(self, expr: cst.BaseExpression, names: Names, _depth: int = 0) -> Optional[Value]:
        """The number ``expr`` certainly holds unless code outside the file changes it, with
        its origin; None when unknown."""
        if _depth > _DEPTH_LIMIT:
            return None
        if isinstance(expr, cst.Name) and expr.value not in ("True", "False", "None"):
            return self._name(expr.value, names, _depth)
        number = names.number(expr)
        if number is not None:
            return Value(number)
        if isinstance(expr, cst.Attribute) and _is_config_read(expr):
            return self._attribute(expr.attr.value, _depth)
        return None

    def text(self, expr: cst.BaseExpression, names: Names) -> Optional[str]:
        """The string ``expr`` certainly holds: a literal, a name bound once to one, or an
        attribute read (``args.opt``) whose every declaration in the file has the same string
        default that nothing overrides; None when unknown."""
        value = string_value(names.follow(expr))
        if value is not None or not (isinstance(expr, cst.Attribute) and _is_config_read(expr)):
            return value
        attribute = expr.attr.value
        defaults = self._by_attribute.get(attribute, [])
        if not defaults or attribute in self._overridden or "*" in self._overridden:
            return None
        texts = {_default_text(default) for default in defaults}
        return texts.pop() if len(texts) == 1 else None

    def unset(self, attribute: str) -> bool:
        """Whether an attribute read of ``attribute`` gives None as far as the file shows: no
        argparse option or dataclass field declares it, or each declares it without a default
        (or with ``None``), and no ``set_defaults`` may set it."""
        if attribute in self._overridden or "*" in self._overridden:
            return False
        return all(_is_none(default.value) for default in self._by_attribute.get(attribute, []))

    def _name(self, name: str, names: Names, depth: int) -> Optional[Value]:
        found = names.all_bindings(name)
        if found is None or len(found[0]) != 1:
            return None
        binding, owner = found[0][0], found[1]
        if isinstance(binding, cst.Param):
            return self._parameter(binding, owner, depth)
        if not isinstance(binding, cst.BaseExpression):
            return None
        resolved = self.resolve(binding, owner, depth + 1)
        if resolved is None or resolved.origin is not None:
            return resolved
        return Value(resolved.number, f"the value of {name}", binding)

    def _attribute(self, attribute: str, depth: int) -> Optional[Value]:
        defaults = self._by_attribute.get(attribute, [])
        if not defaults or attribute in self._overridden or "*" in self._overridden:
            return None
        values = [self._default_value(default, depth) for default in defaults]
        if any(value is None for value in values) or len({value.number for value in values}) != 1:  # type: ignore[union-attr]
            return None
        return values[0]

    def _default_value(self, default: _Default, depth: int) -> Optional[Value]:
        if default.value is None:
            return None if default.number is None else Value(default.number, default.origin, default.node)
        if isinstance(default.value, cst.Name) and default.value.value == "None" and default.names is not None and default.names.is_unbound("None"):
            return Value(0, default.origin, default.node)  # ``weight_decay=None``: no decay
        resolved = self.resolve(default.value, default.names, depth + 1) if default.names is not None else None
        return None if resolved is None else Value(resolved.number, default.origin, default.node)

    def _parameter(self, param: cst.Param, owner: Names, depth: int) -> Optional[Value]:
        """The default of a function parameter, when no call in the file may pass it."""
        function = owner.scope.node
        if param.default is None or not isinstance(function, cst.FunctionDef) or param.star:
            return None
        name = param.name.value
        position = _position(function, param)
        parent = owner.scope.parent or owner.scope
        method = parent.kind == "class"
        for call in self._calls_of(function.name.value):
            shift = 1 if method and isinstance(call.func, cst.Attribute) else 0
            if _may_bind(call, name, None if position is None else position - shift, keyword_only=position is None):
                return None
        resolved = self.resolve(param.default, Names(owner.table, parent), depth + 1)
        if resolved is None:
            return None
        return Value(resolved.number, f"the default of {name} in {function.name.value}()", param)


def _default_text(default: _Default) -> Optional[str]:
    if default.value is None:
        return None
    value = default.names.follow(default.value) if default.names is not None else default.value
    return string_value(value)


def _is_none(value: Optional[cst.BaseExpression]) -> bool:
    return isinstance(value, cst.Name) and value.value == "None"


def _dest(call: cst.Call) -> Optional[str]:
    """The attribute ``parser.add_argument(...)`` stores its value in."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "dest":
            return string_value(arg.value)
    options = [string_value(arg.value) for arg in call.args if arg.keyword is None and not arg.star]
    if not options or any(option is None for option in options):
        return None
    long = next((o for o in options if o.startswith("--")), None)  # type: ignore[union-attr]
    chosen = long or options[0]
    if chosen is None or (chosen.startswith("-") and long is None):
        return None
    return chosen.lstrip("-").replace("-", "_") or None


def _is_dataclass(expr: cst.BaseExpression) -> bool:
    if isinstance(expr, cst.Call):
        expr = expr.func
    text = dotted(expr)
    return text in ("dataclass", "dataclasses.dataclass")


def _is_config_read(expr: cst.Attribute) -> bool:
    """``args.wd``, ``self.args.wd``, ``cfg.train.wd``: an attribute read off names."""
    return dotted(expr.value) is not None


def _position(function: cst.FunctionDef, param: cst.Param) -> Optional[int]:
    positional = [*function.params.posonly_params, *function.params.params]
    return positional.index(param) if param in positional else None


def _may_bind(call: cst.Call, name: str, position: Optional[int], keyword_only: bool = False) -> bool:
    """Whether ``call`` may pass a value for the parameter ``name``: by keyword, by unpacking,
    or (unless ``keyword_only``) by a positional argument at ``position`` (None: any)."""
    positional = 0
    for arg in call.args:
        if arg.star:
            return True
        if arg.keyword is not None:
            if arg.keyword.value == name:
                return True
        else:
            positional += 1
    if keyword_only:
        return False
    return positional > 0 if position is None else positional > position
