"""Every rule's own examples, and the rule set against the catalogue."""

from __future__ import annotations

import pytest

from wd_guard.catalogue import get_rule, iter_rules
from wd_guard.lint import testing
from wd_guard.lint.intake import vocabulary
from wd_guard.lint.analysis.engine import lint_source
from wd_guard.lint.rules import ALL_RULES, rule_for, rules_for

CASES = testing.cases()
INVALID = [case for case in CASES if case.invalid is not None]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_example(case):
    testing.check_case(case)


@pytest.mark.parametrize("case", INVALID, ids=lambda case: case.id)
def test_prefilter_keeps_every_invalid_example(case):
    testing.check_prefilter(case)


def test_every_static_code_has_a_rule():
    static = {rule.code for rule in iter_rules("static")}
    assert {rule.CODE for rule in ALL_RULES} == static


def test_each_rule_declares_the_vocabulary_the_prefilter_reads():
    assert set(vocabulary.BY_CODE) == {rule.CODE for rule in ALL_RULES}
    assert all(rule.VOCABULARY is vocabulary.BY_CODE[rule.CODE] for rule in ALL_RULES)


def test_rule_codes_are_unique_and_resolvable():
    codes = [rule.CODE for rule in ALL_RULES]
    assert len(codes) == len(set(codes))
    assert all(rule_for(code.lower()) is rule for code, rule in zip(codes, ALL_RULES))


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda rule: rule.CODE)
def test_rule_documents_itself(rule):
    assert len(rule.VALID) >= 3 and len(rule.INVALID) >= 2
    assert len({example.code for example in rule.INVALID}) == len(rule.INVALID)
    assert rule.__doc__ and rule.VOCABULARY
    assert all(group for group in rule.VOCABULARY)


def test_default_rules_follow_the_catalogue():
    default = {rule.CODE for rule in rules_for()}
    assert default == {rule.code for rule in iter_rules("static") if rule.static_default}
    assert "WD204" not in default


def test_opt_in_rule_runs_only_when_selected():
    source = rule_for("WD204").INVALID[0].code
    assert "WD204" not in {d.code for d in lint_source(source)}
    assert [d.code for d in lint_source(source, select={"WD204"})] == ["WD204"]


def test_select_limits_the_codes():
    source = "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1.0, weight_decay=0.5)\n"
    assert sorted(d.code for d in lint_source(source)) == ["WD101", "WD210", "WD302"]
    assert [d.code for d in lint_source(source, select={"WD302"})] == ["WD302"]
    assert lint_source(source, select=set()) == []


def test_messages_come_from_the_catalogue():
    source = "import torch\nopt = torch.optim.AdamW(net.parameters(), lr=10.0)\n"
    by_code = {d.code: d.message for d in lint_source(source)}
    assert by_code["WD302"] == get_rule("WD302").format(product="0.1")
    assert by_code["WD210"] == get_rule("WD210").format(
        call="net.parameters()", optimizer="AdamW", weight_decay="0.01 by default"
    )
