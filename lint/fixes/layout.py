"""Keep fixed lines within the project's line length, as its formatter would.

A fix can make a line longer (``model.parameters()`` becomes
``wd_guard.param_groups(model, weight_decay=0.05)``). When the settings name a line length
(``line-length`` in ``[tool.wd-lint]``, else ``[tool.ruff]``'s or ``[tool.black]``'s), every
line a fix made longer than that whose outermost call fits on the line is split the way
black and ruff's formatter split it: one argument per line, indented one level deeper than the
line, with a trailing comma and the closing bracket on its own line. Lines the fix did not
touch are left alone, even when they are long.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Set

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

MAX_PASSES = 8  # a split argument may itself hold a call that is still too long


def keep_within(before: str, after: str, limit: int) -> str:
    """``after`` (``before`` with fixes made) with the calls on its new over-long lines split."""
    for _ in range(MAX_PASSES):
        long_lines = _new_long_lines(before, after, limit)
        if not long_lines:
            return after
        split = _split_calls(after, long_lines)
        if split is None or split == after:
            return after
        after = split
    return after


def _new_long_lines(before: str, after: str, limit: int) -> Set[int]:
    """1-based numbers of the lines of ``after`` over ``limit`` that ``before`` does not have."""
    old = set(before.splitlines())
    return {number for number, line in enumerate(after.splitlines(), 1) if len(line) > limit and line not in old}


def comments_in(node: cst.CSTNode) -> List[str]:
    """The text of every comment in ``node``, whitespace included (where libcst keeps them)."""
    found, stack = [], [node]
    while stack:
        item = stack.pop()
        if isinstance(item, cst.Comment):
            found.append(item.value)
        stack.extend(item.children)
    return found


class _Outermost(cst.CSTVisitor):
    """The first (outermost) call that starts and ends on each chosen line."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, lines: Set[int]) -> None:
        super().__init__()
        self.lines = lines
        self.found: Dict[int, cst.Call] = {}

    def visit_Call(self, node: cst.Call) -> None:
        position = self.get_metadata(PositionProvider, node)
        line = position.start.line
        generator = any(isinstance(arg.value, cst.GeneratorExp) for arg in node.args)  # no trailing comma there
        if line == position.end.line and line in self.lines and line not in self.found and node.args and not generator:
            self.found[line] = node


def _split_calls(text: str, lines: Set[int]) -> Optional[str]:
    try:
        wrapper = MetadataWrapper(cst.parse_module(text))
    except cst.ParserSyntaxError:
        return None
    visitor = _Outermost(lines)
    wrapper.visit(visitor)
    if not visitor.found:
        return None
    source_lines = text.splitlines()
    module = wrapper.module
    replacements = {}
    for number, call in visitor.found.items():
        line = source_lines[number - 1]
        indent = line[: len(line) - len(line.lstrip())]
        replacements[call] = _one_argument_per_line(call, indent, module.default_indent)
    return module.visit(_Replace(replacements)).code


def _one_argument_per_line(call: cst.Call, indent: str, step: str) -> cst.Call:
    def newline(spaces: str) -> cst.ParenthesizedWhitespace:
        return cst.ParenthesizedWhitespace(indent=False, last_line=cst.SimpleWhitespace(spaces))

    args: List[cst.Arg] = []
    for index, arg in enumerate(call.args):
        last = index == len(call.args) - 1
        after = newline(indent) if last else newline(indent + step)
        args.append(arg.with_changes(comma=cst.Comma(whitespace_after=after), whitespace_after_arg=cst.SimpleWhitespace("")))
    return call.with_changes(whitespace_before_args=newline(indent + step), args=args)


class _Replace(cst.CSTTransformer):
    def __init__(self, replacements: Dict[cst.CSTNode, cst.CSTNode]) -> None:
        super().__init__()
        self.replacements = replacements

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        return self.replacements.get(original, updated)  # type: ignore[return-value]
