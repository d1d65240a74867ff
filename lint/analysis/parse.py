"""The analysis behind :func:`~wd_guard.lint.analysis.engine.lint_source`: parse once, walk once, run
every rule, then locate the reports (and build their fixes) in one code generation pass.

The walk reads node fields directly instead of going through libcst's visitors (which rebuild
every node they visit), collects the node types the active rules asked for and fills the
file's name table on the way. Positions are computed only for files that have something to
report, and only for the nodes involved.
"""

from __future__ import annotations

import ast
import warnings
from typing import Collection, Iterable, List, Mapping, Optional, Set, Tuple, Type, Union

import libcst as cst

from wd_guard.lint.analysis.collect import build_context
from wd_guard.lint.diagnostic import Diagnostic, Fix
from wd_guard.lint.fixes.edits import LineIndex, plan_nodes, realise
from wd_guard.lint.analysis.positions import Span, node_layout
from wd_guard.lint.rules import rules_for
from wd_guard.lint.rules.base import AtLine, FileContext, FixPlan, LintRule, Report
from wd_guard.lint.intake.vocabulary import POWER, QUOTED, identifiers_match

__all__ = ["build_context", "identifiers", "lint", "locate", "needs_libcst", "parse", "parse_and_check", "python_tree"]


def lint(source: Union[str, bytes], path: str = "<string>", *, select: Optional[Collection[str]] = None) -> List[Diagnostic]:
    """What :func:`~wd_guard.lint.analysis.engine.lint_source` does. CPython's tree of the file comes
    first (it is cheap next to libcst's): a file whose identifiers lack every selected rule's
    vocabulary (the words were only in strings, comments or longer names) ends there."""
    tree = python_tree(source)
    if not needs_libcst(tree, select):
        return []
    ctx, reports = parse_and_check(source, path, select=select, tree=tree)
    return [diagnostic for diagnostic, _ in locate(ctx, reports)]


def parse_and_check(
    source: Union[str, bytes],
    path: str = "<string>",
    *,
    select: Optional[Collection[str]] = None,
    tree: Optional[ast.Module] = None,
) -> Tuple[FileContext, List[Tuple[str, Report]]]:
    """Parse ``source`` once with libcst and run the selected rules on it: the file's context
    and each rule's reports, as ``(code, report)`` pairs. ``tree`` is CPython's tree of the
    same source, when the caller has it."""
    rules = rules_for(select)
    if tree is None:
        tree = python_tree(source)
    module = _libcst_module(source)
    ctx = build_context(module, path, rules)
    ctx.statement_lines = statement_lines(tree) if tree is not None else None
    ctx.text = source if isinstance(source, str) else source.decode(module.encoding)
    reports: List[Tuple[str, Report]] = []
    for rule in rules:
        reports.extend((rule.CODE, report) for report in _run_rule(rule, ctx))
    return ctx, reports


def parse(source: Union[str, bytes]) -> cst.Module:
    """The libcst module for ``source``; every failure is a ``libcst.ParserSyntaxError``."""
    python_tree(source)
    return _libcst_module(source)


def python_tree(source: Union[str, bytes]) -> Optional[ast.Module]:
    """CPython's tree of ``source``, or None when CPython cannot read it (libcst decides).

    It doubles as a guard: libcst's native parser can exhaust the C stack on nesting that
    CPython refuses ("too many nested parentheses", recursion limits), and such a file must
    be reported, not crash the process.
    """
    try:
        return ast.parse(source)
    except (RecursionError, MemoryError) as exc:
        raise _syntax_error(f"too deeply nested to analyse ({type(exc).__name__})", exc) from None
    except SyntaxError as exc:
        if "too many nested" in str(exc) or "too complex" in str(exc):
            raise _syntax_error(str(exc), exc) from None
        return None  # libcst reports it, or reads syntax this Python does not
    except ValueError:
        return None  # null bytes: libcst gives the located error


def needs_libcst(tree: Optional[ast.Module], select: Optional[Collection[str]] = None) -> bool:
    """Whether a file with CPython's tree ``tree`` (None: CPython could not read it) must be
    parsed by libcst: some selected rule's words are names in its code."""
    return tree is None or identifiers_match(identifiers(tree), select)


def identifiers(tree: ast.Module) -> Set[str]:
    """Every name, attribute, keyword argument, function and imported name of a tree, every string that
    is exactly an optimizer's class name, and ``**`` if it uses the operator."""
    found: Set[str] = set()
    add = found.add
    for node in ast.walk(tree):
        kind = type(node)
        if kind is ast.Name:
            add(node.id)  # type: ignore[attr-defined]
        elif kind is ast.Attribute:
            add(node.attr)  # type: ignore[attr-defined]
        elif kind is ast.alias:
            add(node.name.rpartition(".")[2])  # type: ignore[attr-defined]
        elif kind is ast.Pow:
            add(POWER)
        elif kind is ast.FunctionDef:
            add(node.name)  # type: ignore[attr-defined]
        elif kind is ast.keyword:
            if node.arg is not None:  # type: ignore[attr-defined]
                add(node.arg)  # type: ignore[attr-defined]
        elif kind is ast.Constant and type(node.value) is str and node.value in QUOTED:  # type: ignore[attr-defined]
            add(node.value)  # type: ignore[attr-defined]  # ``dict(type="AdamW")`` in a config
    return found


def statement_lines(tree: ast.Module) -> List[int]:
    """First line of each top-level statement (its first decorator's, if any); statements
    joined by ``;`` share a line, as they share libcst's statement line."""
    starts = (min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))]) for node in tree.body)
    return sorted(set(starts))


def _libcst_module(source: Union[str, bytes]) -> cst.Module:
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError:
        raise
    except (SyntaxError, UnicodeError, LookupError) as exc:  # undecodable bytes, unknown coding
        raise _syntax_error(str(exc), exc) from None


def _syntax_error(message: str, exc: BaseException) -> cst.ParserSyntaxError:
    line = getattr(exc, "lineno", None) or 1
    column = max((getattr(exc, "offset", None) or 1) - 1, 0)
    text = getattr(exc, "text", None) or ""
    lines = [""] * (line - 1) + [text]
    return cst.ParserSyntaxError(message, lines=lines, raw_line=line, raw_column=min(column, len(text)))


def _run_rule(rule: Type[LintRule], ctx: FileContext) -> List[Report]:
    try:
        return list(rule(ctx).check())
    except Exception as exc:  # a bug in one rule must not stop the others nor the run
        warnings.warn(f"wd-lint: rule {rule.CODE} failed on {ctx.path}: {exc!r}", RuntimeWarning, stacklevel=3)
        return []


def locate(ctx: FileContext, reports: Iterable[Tuple[str, Report]]) -> List[Tuple[Diagnostic, Report]]:
    """Diagnostics for the reports, with positions, catalogue messages and fixes, sorted."""
    pairs = list(reports)
    if not pairs:
        return []
    plans = [_plan(code, report, ctx) for code, report in pairs]
    nodes = [report.node for _, report in pairs] + [node for plan in plans if plan for node in plan_nodes(plan)]
    nodes += [value.node for _, report in pairs for value in report.values.values() if isinstance(value, AtLine)]
    spans, indents = node_layout(ctx.module, nodes, ctx.statement_lines)
    index = LineIndex(ctx.text) if any(plans) else None
    located = []
    for (code, report), plan in zip(pairs, plans):
        fix = realise(plan, spans, indents, index, ctx.module) if plan is not None and index is not None else None
        values = {key: value.render(spans[value.node][0][0]) if isinstance(value, AtLine) else value for key, value in report.values.items()}
        located.append((_diagnostic(code, values, spans[report.node], ctx.path, fix), report))
    unique = {(d.code, d.line, d.column, d.end_line, d.end_column): (d, r) for d, r in located}
    return sorted(unique.values(), key=lambda pair: pair[0].sort_key())


def _plan(code: str, report: Report, ctx: FileContext) -> Optional[FixPlan]:
    if report.fix is None:
        return None
    try:
        return report.fix()
    except Exception as exc:  # a fix that cannot be built is not offered; the finding stays
        warnings.warn(f"wd-lint: the fix for {code} failed on {ctx.path}: {exc!r}", RuntimeWarning, stacklevel=3)
        return None


def _diagnostic(code: str, values: Mapping[str, object], span: Span, path: str, fix: Optional[Fix]) -> Diagnostic:
    from wd_guard.catalogue import get_rule

    (line, column), (end_line, end_column) = span
    message = get_rule(code).format(**values)
    return Diagnostic(code, message, line, column + 1, end_line, end_column + 1, path, fix)
