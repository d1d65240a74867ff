"""The analysis behind :func:`~wd_guard.lint.engine.lint_source`: parse once, walk once, run
every rule, then locate the reports (and build their fixes) in one code generation pass.

The walk reads node fields directly instead of going through libcst's visitors (which rebuild
every node they visit), collects the node types the active rules asked for and fills the
file's name table on the way. Positions are computed only for files that have something to
report, and only for the nodes involved.
"""

from __future__ import annotations

import ast
import warnings
from typing import Collection, Iterable, List, Optional, Tuple, Type, Union

import libcst as cst

from .collect import build_context
from .diagnostic import Diagnostic, Fix
from .edits import LineIndex, plan_nodes, realise
from .positions import Span, node_layout
from .rules import rules_for
from .rules.base import FileContext, FixPlan, LintRule, Report

__all__ = ["build_context", "locate", "parse", "parse_and_check"]


def parse_and_check(
    source: Union[str, bytes], path: str = "<string>", *, select: Optional[Collection[str]] = None
) -> Tuple[FileContext, List[Tuple[str, Report]]]:
    """Parse ``source`` once and run the selected rules on it: the file's context and each
    rule's reports, as ``(code, report)`` pairs."""
    rules = rules_for(select)
    module = parse(source)
    ctx = build_context(module, path, rules)
    reports: List[Tuple[str, Report]] = []
    for rule in rules:
        reports.extend((rule.CODE, report) for report in _run_rule(rule, ctx))
    return ctx, reports


def parse(source: Union[str, bytes]) -> cst.Module:
    """The libcst module for ``source``; every failure is a ``libcst.ParserSyntaxError``.

    CPython's own parser runs first, as a guard: libcst's native parser can exhaust the C
    stack on nesting that CPython refuses ("too many nested parentheses", recursion limits),
    and such a file must be reported, not crash the process.
    """
    try:
        ast.parse(source)
    except (RecursionError, MemoryError) as exc:
        raise _syntax_error(f"too deeply nested to analyse ({type(exc).__name__})", exc) from None
    except SyntaxError as exc:
        if "too many nested" in str(exc) or "too complex" in str(exc):
            raise _syntax_error(str(exc), exc) from None
    except ValueError:
        pass  # null bytes: libcst gives the located error
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
    spans, indents = node_layout(ctx.module, nodes)
    index = LineIndex(ctx.module.code) if any(plans) else None
    located = []
    for (code, report), plan in zip(pairs, plans):
        fix = realise(plan, spans, indents, index, ctx.module) if plan is not None and index is not None else None
        located.append((_diagnostic(code, report, spans[report.node], ctx.path, fix), report))
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


def _diagnostic(code: str, report: Report, span: Span, path: str, fix: Optional[Fix]) -> Diagnostic:
    from wd_guard.catalogue import get_rule

    (line, column), (end_line, end_column) = span
    message = get_rule(code).format(**report.values)
    return Diagnostic(code, message, line, column + 1, end_line, end_column + 1, path, fix)
