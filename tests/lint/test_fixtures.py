"""Whole training scripts and Lightning modules, with the expected codes on the offending lines.

A line ending in ``# expect: WD101`` (or ``# expect: WD101, WD210``) must be reported with
exactly those codes; every other line is a negative case and must not be reported at all.
"""

from __future__ import annotations

import collections
import io
import re
import tokenize
from pathlib import Path
from typing import Counter, Tuple

import pytest

from wd_guard.catalogue import get_rule
from wd_guard.lint.analysis import parse as analysis
from wd_guard.lint.analysis.engine import lint_source, might_matter
from wd_guard.lint.rules import ALL_RULES

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.py"))
ALL_CODES = {rule.CODE for rule in ALL_RULES}
_EXPECT = re.compile(r"#\s*expect:\s*(.+)$")


def expected(source: bytes) -> Counter[Tuple[int, str]]:
    """``(line, code)`` pairs announced by ``# expect:`` comments (real comments only)."""
    found: Counter[Tuple[int, str]] = collections.Counter()
    for token in tokenize.tokenize(io.BytesIO(source).readline):
        match = _EXPECT.search(token.string) if token.type == tokenize.COMMENT else None
        if match:
            found.update((token.start[0], code.strip()) for code in match.group(1).split(","))
    return found


def reported(source: bytes, path: Path, select=ALL_CODES) -> Counter[Tuple[int, str]]:
    return collections.Counter((d.line, d.code) for d in lint_source(source, str(path), select=select))


def test_there_are_many_fixtures_covering_every_code():
    assert len(FIXTURES) >= 20
    codes = {code for path in FIXTURES for _, code in expected(path.read_bytes())}
    assert codes == ALL_CODES


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_reports_exactly_what_it_announces(path):
    source = path.read_bytes()
    assert reported(source, path) == expected(source)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_default_selection_leaves_out_opt_in_rules(path):
    source = path.read_bytes()
    default = collections.Counter({key: n for key, n in expected(source).items() if get_rule(key[1]).static_default})
    assert reported(source, path, select=None) == default


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fast_path_equals_a_full_parse(path):
    source = path.read_bytes()
    fast = lint_source(source, str(path), select=ALL_CODES) if might_matter(source, select=ALL_CODES) else []
    full = [d for d, _ in analysis.locate(*analysis.parse_and_check(source, str(path), select=ALL_CODES))]
    assert fast == full


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_prefilter_never_drops_a_finding(path):
    source = path.read_bytes()
    if not might_matter(source, select=ALL_CODES):
        assert expected(source) == collections.Counter()
        assert reported(source, path) == collections.Counter()
