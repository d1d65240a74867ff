"""Optimizers configured in YAML: LightningCLI / jsonargparse and Hydra.

Three shapes name an optimizer class in a YAML file:

- jsonargparse (LightningCLI): a mapping with ``class_path: torch.optim.Adam`` and its
  arguments under ``init_args``, at any depth (``model.init_args.optimizer``, say). A short
  ``class_path: Adam`` means the class of that name in ``torch.optim``, as jsonargparse
  resolves it for an optimizer argument.
- LightningCLI's own ``optimizer:`` key, at the top of the file (or under a subcommand such as
  ``fit:``): the optimizer LightningCLI configures itself, which receives
  ``model.parameters()``: every parameter, so any decay there is blanket decay (WD210). The
  value may also be the class name alone (``optimizer: AdamW``).
- Hydra: a mapping with ``_target_: torch.optim.Adam`` and the arguments beside it. The
  parameters are passed in code, so only how the decay acts (WD101, WD302) is judged.

How each class treats decay comes from :mod:`wd_guard.optimizers`, the messages from the
catalogue. A value the file does not state as a plain number (a quoted string, an
environment variable, an interpolation that is not a plain ``${a.b}`` reference to a number
in the same file) is unknown, and an unknown value gives no finding. YAML without such a
mapping gives nothing; YAML that does not parse raises :class:`ConfigSyntaxError` with the
position of the error.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Collection, Dict, Iterator, List, Optional

import yaml

from wd_guard.catalogue import get_rule
from wd_guard.optimizers import DecayKind, OptimizerFact, lookup

from wd_guard.lint.diagnostic import Diagnostic

CLASS_PATH = "class_path"
INIT_ARGS = "init_args"
TARGET = "_target_"
OPTIMIZER = "optimizer"
SUBCOMMANDS = ("fit", "validate", "test", "predict")
CODES = ("WD101", "WD210", "WD302")
THRESHOLD = 0.1  # lr * weight_decay from which WD302 reports (as for Python sources)
LIGHTNING_CALL = "LightningCLI's `optimizer:`"

_INTERPOLATION = re.compile(r"^\$\{([A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*)\}$")
_TRUE = frozenset({"true", "yes", "on"})
_FALSE = frozenset({"false", "no", "off"})
_UNKNOWN = object()


class ConfigSyntaxError(ValueError):
    """The file is not valid YAML; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: Optional[int], column: Optional[int]) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Entry:
    """One optimizer named in the file: its class, where, and its arguments' nodes."""

    fact: OptimizerFact
    name: str  # the class as the file writes it
    node: Any  # the scalar node that names the class
    arguments: Dict[str, Any]  # argument name -> value node
    blanket: Any = None  # the ``optimizer`` key node when LightningCLI hands it every parameter


def lint_config(text: str, path: str = "<string>", *, select: Optional[Collection[str]] = None) -> List[Diagnostic]:
    """Every finding of the selected codes (default: WD101, WD210, WD302) in a YAML text."""
    codes = set(CODES if select is None else (code.upper() for code in select))
    found: List[Diagnostic] = []
    for root in compose_all(text):
        resolver = _Resolver(root)
        for entry in entries(root):
            found.extend(_check(entry, resolver, codes, path))
    unique = {(d.code, d.line, d.column): d for d in found}
    return sorted(unique.values(), key=Diagnostic.sort_key)


def compose_all(text: str) -> List[Any]:
    """The node tree of every document in ``text``; raises ConfigSyntaxError."""
    loader_class = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        loader = loader_class(text)
        try:
            roots = []
            while loader.check_node():
                roots.append(loader.get_node())
            return [root for root in roots if root is not None]
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise ConfigSyntaxError(f"invalid YAML: {message}", line, column) from None
    except yaml.YAMLError as exc:
        raise ConfigSyntaxError(f"invalid YAML: {exc}", None, None) from None


def entries(root: Any) -> Iterator[Entry]:
    """The optimizers named in one document."""
    blanket_keys = {id(node) for node in _lightning_optimizer_values(root)}
    stack = [(root, None)]
    while stack:
        node, key = stack.pop()
        if _is_mapping(node):
            entry = _entry(node, key if id(node) in blanket_keys else None)
            if entry is not None:
                yield entry
            stack.extend((value, key_node) for key_node, value in reversed(node.value))
        elif _is_sequence(node):
            stack.extend((item, None) for item in reversed(node.value))
        elif _is_scalar(node) and key is not None and id(node) in blanket_keys:
            fact = _fact(node.value, short=True)
            if fact is not None:
                yield Entry(fact, node.value, node, {}, blanket=key)


def _lightning_optimizer_values(root: Any) -> Iterator[Any]:
    """The values of LightningCLI's ``optimizer`` key (top level, or under a subcommand)."""
    if not _is_mapping(root):
        return
    for key, value in root.value:
        name = key.value if _is_scalar(key) else None
        if name == OPTIMIZER:
            yield value
        elif name in SUBCOMMANDS and _is_mapping(value):
            yield from (v for k, v in value.value if _is_scalar(k) and k.value == OPTIMIZER)


def _entry(node: Any, blanket: Any) -> Optional[Entry]:
    items = _items(node)
    if CLASS_PATH in items:
        named = items[CLASS_PATH]
        fact = _fact(named.value, short=True) if _is_scalar(named) else None
        init = items.get(INIT_ARGS)
        arguments = _items(init) if init is not None and _is_mapping(init) else {}
        if fact is None or (init is not None and not _is_mapping(init) and not _is_null(init)):
            return None
        return Entry(fact, named.value, named, arguments, blanket)
    if TARGET in items:
        named = items[TARGET]
        fact = _fact(named.value, short=False) if _is_scalar(named) else None
        if fact is None:
            return None
        arguments = {key: value for key, value in items.items() if not (key.startswith("_") and key.endswith("_"))}
        return Entry(fact, named.value, named, arguments)
    return None


def _fact(name: Any, short: bool) -> Optional[OptimizerFact]:
    if not isinstance(name, str) or not name:
        return None
    fact = lookup(name)
    if fact is None and short and "." not in name:
        fact = lookup(f"torch.optim.{name}")
    return fact


def _check(entry: Entry, resolver: "_Resolver", codes: Collection[str], path: str) -> Iterator[Diagnostic]:
    fact = entry.fact
    if fact.decay in (DecayKind.NONE, DecayKind.UNKNOWN):
        return
    decay = resolver.number(entry.arguments.get("weight_decay"), fact.default_weight_decay)
    kind = _kind(entry, resolver)
    decays = isinstance(decay, float) and decay != 0.0
    if "WD101" in codes and decays and kind is DecayKind.COUPLED_ADAPTIVE:
        yield _diagnostic("WD101", entry.node, path, optimizer=fact.short_name)
    if "WD210" in codes and decays and entry.blanket is not None:
        text = _decay_text(entry, decay)
        yield _diagnostic("WD210", entry.blanket, path, call=LIGHTNING_CALL, optimizer=fact.short_name, weight_decay=text)
    lr = resolver.number(entry.arguments.get("lr"), fact.default_lr)
    if "WD302" in codes and isinstance(lr, float) and isinstance(decay, float) and lr * decay >= THRESHOLD:
        yield _diagnostic("WD302", entry.node, path, product=f"{lr * decay:.3g}")


def _kind(entry: Entry, resolver: "_Resolver") -> Optional[DecayKind]:
    """How decay acts; None when the flag that decouples it is not a plain boolean."""
    flag = entry.fact.decoupled_flag
    if flag is None:
        return entry.fact.decay
    value = resolver.boolean(entry.arguments.get(flag), entry.fact.decoupled_by_default)
    return None if value is None else entry.fact.kind_for({flag: value})


def _decay_text(entry: Entry, decay: float) -> str:
    node = entry.arguments.get("weight_decay")
    return f"{decay:g} by default" if node is None else f"{decay:g}"


def _diagnostic(code: str, node: Any, path: str, **values: object) -> Diagnostic:
    start, end = node.start_mark, node.end_mark
    message = get_rule(code).format(**values)
    return Diagnostic(code, message, start.line + 1, start.column + 1, end.line + 1, end.column + 1, path)


class _Resolver:
    """Reads plain numbers and booleans, following ``${a.b}`` references in one document."""

    MAX_HOPS = 8

    def __init__(self, root: Any) -> None:
        self.root = root

    def number(self, node: Any, default: Optional[float]) -> object:
        """A float, or ``_UNKNOWN``; ``default`` when the argument is absent."""
        if node is None:
            return _UNKNOWN if default is None else float(default)
        node = self._follow(node)
        if node is None or not _is_plain(node):
            return _UNKNOWN
        try:
            value = float(node.value.replace("_", ""))
        except ValueError:
            return _UNKNOWN
        return value if math.isfinite(value) else _UNKNOWN

    def boolean(self, node: Any, default: bool) -> Optional[bool]:
        if node is None:
            return default
        node = self._follow(node)
        word = node.value.lower() if node is not None and _is_plain(node) else ""
        return True if word in _TRUE else False if word in _FALSE else None

    def _follow(self, node: Any) -> Optional[Any]:
        for _ in range(self.MAX_HOPS):
            if not _is_plain(node):
                return node
            match = _INTERPOLATION.match(node.value.strip())
            if match is None:
                return node
            node = self._lookup(match.group(1).split("."))
            if node is None:
                return None
        return None

    def _lookup(self, keys: List[str]) -> Optional[Any]:
        node = self.root
        for key in keys:
            if not _is_mapping(node):
                return None
            node = _items(node).get(key)
            if node is None:
                return None
        return node


def _items(node: Any) -> Dict[str, Any]:
    """A mapping node's values by their (scalar) keys; a repeated key keeps its last value."""
    return {key.value: value for key, value in node.value if _is_scalar(key)}


def _is_mapping(node: Any) -> bool:
    return isinstance(node, yaml.MappingNode)


def _is_sequence(node: Any) -> bool:
    return isinstance(node, yaml.SequenceNode)


def _is_scalar(node: Any) -> bool:
    return isinstance(node, yaml.ScalarNode)


def _is_plain(node: Any) -> bool:
    """A scalar written without quotes or block style (libyaml says ``''``, PyYAML ``None``)."""
    return _is_scalar(node) and not node.style


def _is_null(node: Any) -> bool:
    return _is_plain(node) and node.value in ("", "~", "null", "Null", "NULL")
