"""A fast pre-order walk over a libcst tree.

libcst's visitors rebuild every node they pass through (``_visit_and_replace_children``),
which costs more than the parse for a read-only pass. This walk reads the dataclass fields
directly and skips the ones that hold only whitespace, comments and punctuation.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, FrozenSet, Iterator, List, Tuple

import libcst as cst

_SKIPPED_FIELDS = frozenset(
    {
        "lpar", "rpar", "comma", "colon", "dot", "equal", "semicolon", "operator", "lbrace", "rbrace",
        "lbracket", "rbracket", "first_colon", "second_colon", "asynchronous", "leading_lines",
        "trailing_whitespace", "header", "footer", "lines_after_decorators", "empty_lines", "newline",
        "trailing_comma", "separator", "posonly_ind", "relative", "indent", "comment", "star",
        # Identifiers: a binding's name is read from the binding node itself.
        "name", "attr", "keyword",
    }
)
# Nodes without children worth a visit.
_LEAVES = (cst.Name, cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)
_FIELDS: Dict[type, Tuple[str, ...]] = {}


def _node_types() -> FrozenSet[type]:
    found, stack = set(), [cst.CSTNode]
    while stack:
        node_type = stack.pop()
        found.add(node_type)
        stack.extend(node_type.__subclasses__())
    return frozenset(found)


# Every libcst node class: the parser builds nothing else. ``isinstance(value, cst.CSTNode)``
# goes through ABCMeta, whose first "no" for a type (``str``, ``None``, a sentinel) scans all
# these classes; the first file each process linted paid about 10 ms for those scans.
NODE_TYPES = _node_types()


def child_fields(node_type: type) -> Tuple[str, ...]:
    """Names of the fields of ``node_type`` that may hold code, last field first."""
    fields = _FIELDS.get(node_type)
    if fields is None:
        names = [] if issubclass(node_type, _LEAVES) else [f.name for f in dataclasses.fields(node_type)]
        fields = tuple(n for n in reversed(names) if n not in _SKIPPED_FIELDS and not n.startswith("whitespace"))
        _FIELDS[node_type] = fields
    return fields


def iter_nodes(root: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """``root`` and every node below it that can hold code, in (roughly) source order."""
    stack: List[cst.CSTNode] = [root]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        node = pop()
        yield node
        node_type = type(node)
        fields = _FIELDS.get(node_type)
        # Children are pushed last-first so that they are met first-first.
        for name in fields if fields is not None else child_fields(node_type):
            value = getattr(node, name)
            if type(value) in NODE_TYPES:
                push(value)
            elif type(value) is tuple or type(value) is list:
                extend(reversed(value))
