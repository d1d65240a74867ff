"""Turn a rule's fix plan (changes to nodes) into text edits (changes to character ranges).

Positions of every node involved come from one code generation pass (see ``positions``);
lines and columns become offsets into the file's text with a table of line starts.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

import libcst as cst

from wd_guard.lint.diagnostic import Edit, Fix
from wd_guard.lint.analysis.positions import Span, code_at
from wd_guard.lint.fixes.layout import comments_in
from wd_guard.lint.rules.base import Change, DeleteLines, FixPlan, InsertLines, Replace

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class LineIndex:
    """Offsets of line starts in a text, with libcst's idea of a line break."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [match.end() for match in _LINE_BREAK.finditer(text)]

    def offset(self, line: int, column: int) -> int:
        """The offset of a 1-based line and 0-based column."""
        return self.starts[line - 1] + column

    def line_start(self, line: int) -> int:
        """The offset where 1-based ``line`` starts; the text's length past the last line."""
        return self.starts[line - 1] if line - 1 < len(self.starts) else len(self.text)


def plan_nodes(plan: FixPlan) -> List[cst.CSTNode]:
    """The nodes whose positions the plan needs."""
    return [change.node if not isinstance(change, InsertLines) else change.anchor for change in plan.changes]


Indents = Dict[cst.CSTNode, Tuple[str, ...]]


def realise(plan: FixPlan, spans: Dict[cst.CSTNode, Span], indents: Indents, index: LineIndex, module: cst.Module) -> Optional[Fix]:
    """The plan as a Fix of text edits; None when a node cannot be located or edits overlap."""
    edits: List[Edit] = []
    for change in plan.changes:
        edit = _edit(change, spans, indents, index, module)
        if edit is not None:
            edits.append(edit)
    edits.sort(key=lambda e: (e.start, e.end))
    if not edits or any(a.end > b.start for a, b in zip(edits, edits[1:])):
        return None
    return Fix(plan.title, tuple(edits))


def _edit(change: Change, spans: Dict[cst.CSTNode, Span], indents: Indents, index: LineIndex, module: cst.Module) -> Optional[Edit]:
    node = change.anchor if isinstance(change, InsertLines) else change.node
    span = spans.get(node)
    if span is None:
        return None
    (line, column), (end_line, end_column) = span
    if isinstance(change, Replace):
        content = change.content
        if not isinstance(content, str):  # a node (a str answers ABCMeta's check slowly)
            content = code_at(module, content, indents.get(change.node, ()))
        return Edit(index.offset(line, column), index.offset(end_line, end_column), content)
    if isinstance(change, InsertLines):
        return _insert(change, line if change.before else end_line + 1, index, module.default_newline)
    return _delete(change, module.code_for_node(change.node), line, end_line, index)


def _insert(change: InsertLines, line: int, index: LineIndex, newline: str) -> Edit:
    offset = index.line_start(line)
    content = change.text
    if offset == len(index.text) and index.text and not index.text.endswith(("\n", "\r")):
        content = newline + content.rstrip("\r\n")  # the file ends without a line break
    return Edit(offset, offset, content)


def _delete(change: DeleteLines, code: str, line: int, end_line: int, index: LineIndex) -> Optional[Edit]:
    start, end = index.line_start(line), index.line_start(end_line + 1)
    if index.text[start:end].strip() != code.strip():
        return None  # the lines hold something else too: leave them
    if comments_in(change.node):
        return None  # a fix never deletes a comment: the line stays
    return Edit(start, end, "")
