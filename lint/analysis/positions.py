"""Where nodes are in the source, computed only for the nodes that are reported.

libcst's ``PositionProvider`` records a range for every node of a file, which costs more
than parsing it. Reports are rare, so the engine asks for the few nodes it reports on: one
code generation pass counts lines and columns and records only those. The ranges are the
ones ``PositionProvider`` gives (syntactic, whitespace excluded; 1-based lines, 0-based
columns, exclusive end).
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, List, Optional, Set, Tuple

import libcst as cst
from libcst._nodes.internal import CodegenState

from wd_guard.lint.analysis.walk import iter_nodes

Position = Tuple[int, int]
Span = Tuple[Position, Position]

_NEWLINE = re.compile(r"\r\n?|\n")


class _Recorder:
    """Context manager that records a wanted node's syntactic range."""

    __slots__ = ("state", "node", "start_node", "end_node", "start")

    def __init__(self, state: "_SpanState", node: cst.CSTNode, start_node: Optional[cst.CSTNode], end_node: Optional[cst.CSTNode]) -> None:
        self.state, self.node, self.start_node, self.end_node = state, node, start_node, end_node
        # Ranges hoisted from children need those children's ranges too.
        for child in (start_node, end_node):
            if child is not None:
                state.wanted.add(child)

    def __enter__(self) -> None:
        self.start = (self.state.line, self.state.column)

    def __exit__(self, *exc: object) -> None:
        spans = self.state.spans
        start = spans[self.start_node][0] if self.start_node is not None else self.start
        end = spans[self.end_node][1] if self.end_node is not None else (self.state.line, self.state.column)
        spans[self.node] = (start, end)


class _Ignore:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_IGNORE = _Ignore()


class _SpanState(CodegenState):
    """Code generation that only counts characters and records the wanted nodes."""

    def __init__(self, module: cst.Module, wanted: Set[cst.CSTNode]) -> None:
        super().__init__(default_indent=module.default_indent, default_newline=module.default_newline)
        self.wanted = wanted
        self.spans: Dict[cst.CSTNode, Span] = {}
        self.indents: Dict[cst.CSTNode, Tuple[str, ...]] = {}  # block indentation at the node
        self.starts: Dict[cst.CSTNode, Position] = {}
        self.line = 1
        self.column = 0

    def add_indent_tokens(self) -> None:
        for token in self.indent_tokens:
            self.add_token(token)

    def add_token(self, value: str) -> None:
        if "\n" in value or "\r" in value:
            pieces = _NEWLINE.split(value)
            self.line += len(pieces) - 1
            self.column = len(pieces[-1])
        else:
            self.column += len(value)

    def before_codegen(self, node: cst.CSTNode) -> None:
        if node in self.wanted:
            self.starts[node] = (self.line, self.column)
            self.indents[node] = tuple(self.indent_tokens)

    def after_codegen(self, node: cst.CSTNode) -> None:
        if node in self.wanted:
            start = self.starts.pop(node, None)
            if start is not None:
                self.spans.setdefault(node, (start, (self.line, self.column)))

    def record_syntactic_position(self, node: cst.CSTNode, *, start_node: Optional[cst.CSTNode] = None, end_node: Optional[cst.CSTNode] = None):  # type: ignore[override]
        if node in self.wanted:
            return _Recorder(self, node, start_node, end_node)
        return _IGNORE


def node_spans(module: cst.Module, nodes: Iterable[cst.CSTNode]) -> Dict[cst.CSTNode, Span]:
    """The range of each of ``nodes`` (which must belong to ``module``'s tree)."""
    return node_layout(module, nodes)[0]


Layout = Tuple[Dict[cst.CSTNode, Span], Dict[cst.CSTNode, Tuple[str, ...]]]


def node_layout(module: cst.Module, nodes: Iterable[cst.CSTNode], statement_lines: Optional[List[int]] = None) -> Layout:
    """The range of each of ``nodes`` and the block indentation it sits in.

    With ``statement_lines`` (where each top-level statement starts), only the statements
    that hold the nodes are generated, each from its own first line; a check that each ends
    where the next begins guards the shortcut, and the whole file is generated otherwise.
    """
    wanted = set(nodes)
    if statement_lines is not None and len(statement_lines) == len(module.body):
        state = _SpanState(module, set(wanted))
        if _statements_only(module, state, statement_lines) and wanted <= state.spans.keys():
            return state.spans, state.indents
    state = _SpanState(module, wanted)
    module._codegen(state)
    return state.spans, state.indents


def _statements_only(module: cst.Module, state: "_SpanState", lines: List[int]) -> bool:
    body = module.body
    for index, statement in enumerate(body):
        if not any(node in state.wanted for node in iter_nodes(statement)):
            continue
        state.line, state.column = lines[index] - _leading(statement), 0
        statement._codegen(state)
        if index + 1 < len(body) and (state.line, state.column) != (lines[index + 1] - _leading(body[index + 1]), 0):
            return False  # the statement lines do not match libcst's statements
    return True


def _leading(statement: cst.CSTNode) -> int:
    """Blank and comment lines libcst keeps with a statement, before its first line."""
    return len(getattr(statement, "leading_lines", ()))


def code_at(module: cst.Module, node: cst.CSTNode, indent: Tuple[str, ...]) -> str:
    """The code of ``node`` as it reads inside a block indented by ``indent``: the lines a
    multi-line node continues on keep their indentation."""
    state = CodegenState(default_indent=module.default_indent, default_newline=module.default_newline)
    state.indent_tokens.extend(indent)
    node._codegen(state)
    return "".join(state.tokens)
