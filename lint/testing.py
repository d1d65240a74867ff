"""Every rule's VALID and INVALID examples, as test cases the test suite runs.

A rule documents itself with snippets; this module makes them binding. Each VALID snippet must
produce no finding of the rule, each INVALID one exactly one (at the line it names), the
pre-filter must let every INVALID snippet through, and an INVALID snippet's expected fix must
be exactly what the rule's fix produces (no expected fix: the rule must offer none).
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass
from typing import Iterable, List, Optional, Type

from wd_guard.lint.diagnostic import Diagnostic
from wd_guard.lint.analysis.parse import identifiers
from wd_guard.lint.analysis.engine import lint_source, might_matter
from wd_guard.lint.fixes.apply import fix_text
from wd_guard.lint.rules import ALL_RULES
from wd_guard.lint.rules.base import Invalid, LintRule
from wd_guard.lint.intake.vocabulary import identifiers_match


@dataclass(frozen=True)
class Case:
    """One example of one rule."""

    rule: Type[LintRule]
    index: int
    source: str
    invalid: Optional[Invalid] = None

    @property
    def id(self) -> str:
        kind = "invalid" if self.invalid is not None else "valid"
        return f"{self.rule.CODE}-{kind}-{self.index}"


def cases(rules: Iterable[Type[LintRule]] = ALL_RULES) -> List[Case]:
    """Every example of every rule."""
    found: List[Case] = []
    for rule in rules:
        found.extend(Case(rule, i, source) for i, source in enumerate(rule.VALID))
        found.extend(Case(rule, i, example.code, example) for i, example in enumerate(rule.INVALID))
    return found


def findings(case: Case) -> List[Diagnostic]:
    """The rule's findings on the case's snippet; a rule that fails raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return lint_source(case.source, f"<{case.id}>", select={case.rule.CODE})


def check_case(case: Case) -> None:
    """Assert that the rule does what the example says."""
    found = findings(case)
    if case.invalid is None:
        assert found == [], f"{case.id}: expected no finding in\n{case.source}\ngot {found}"
        return
    assert len(found) == 1, f"{case.id}: expected one {case.rule.CODE} in\n{case.source}\ngot {found}"
    if case.invalid.line is not None:
        assert found[0].line == case.invalid.line, f"{case.id}: reported at line {found[0].line}, expected {case.invalid.line}"
    assert found[0].code == case.rule.CODE and found[0].message
    check_fix(case, found[0])


def check_fix(case: Case, diagnostic: Diagnostic) -> None:
    """Assert that the finding's fix is the one the example expects (or that there is none),
    that the fixed code no longer has the finding, and that fixing it again changes nothing."""
    expected = case.invalid.fixed if case.invalid is not None else None
    if expected is None:
        assert diagnostic.fix is None, f"{case.id}: unexpected fix {diagnostic.fix}"
        return
    assert diagnostic.fix is not None, f"{case.id}: expected a fix"
    assert diagnostic.fix.unsafe, f"{case.id}: fixes that change how decay applies are unsafe"
    fixed = diagnostic.fix.apply(case.source)
    assert fixed == expected, f"{case.id}: the fix gives\n{fixed}\nexpected\n{expected}"
    again = fix_text(fixed, select={case.rule.CODE}, unsafe=True)
    assert again.text == fixed and again.remaining == [], f"{case.id}: the fixed code still has {again.remaining}"


def check_prefilter(case: Case) -> None:
    """Assert that neither the byte pre-filter nor the identifier check on CPython's tree
    skips an INVALID example."""
    data = case.source.encode("utf-8")
    code = {case.rule.CODE}
    assert might_matter(data, select=code), f"{case.id}: the pre-filter skips\n{case.source}"
    found = identifiers(ast.parse(data))
    assert identifiers_match(found, code), f"{case.id}: the identifier check skips\n{case.source}"
    if case.rule.entry().static_default:
        assert might_matter(data) and identifiers_match(found), f"{case.id}: the default filters skip\n{case.source}"
