"""The catalogue and the optimizer table: one source of truth, complete and consistent."""

from __future__ import annotations

import collections
import re

import pytest

from wd_guard import catalogue, optimizers
from wd_guard.catalogue import RULES, SECTIONS, get_rule

DESIGN_CODES = {
    "WD101", "WD201", "WD202", "WD203", "WD204", "WD205", "WD206", "WD210", "WD301", "WD302", "WD401", "WD402",
}


def test_no_code_declared_twice():
    counts = collections.Counter(rule.code for rule in RULES)
    assert [code for code, n in counts.items() if n > 1] == []
    names = collections.Counter(rule.name for rule in RULES)
    assert [name for name, n in names.items() if n > 1] == []


def test_catalogue_covers_the_design_table():
    assert {rule.code for rule in RULES} == DESIGN_CODES


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_entry_is_complete(rule):
    assert re.fullmatch(r"WD[1-4]\d\d", rule.code)
    assert rule.severity in catalogue.SEVERITIES
    assert list(rule.sections()) == list(SECTIONS), "sections missing or out of order"
    assert all(text.strip() for text in rule.sections().values())
    assert rule.message and "\n" not in rule.message and not rule.message.endswith(".")
    assert rule.fix and rule.fix[0].isupper()


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_message_formats_with_its_placeholders(rule):
    values = {name: f"<<{name}>>" for name in rule.placeholders}
    text = rule.format(**values)
    assert all(value in text for value in values.values())
    assert "{" not in text


def test_explain_shows_every_section_and_the_fix():
    text = get_rule("wd101").explain()
    for section in SECTIONS:
        assert f"## {section}" in text
    assert get_rule("WD101").fix in text


def test_unknown_code_names_known_codes():
    with pytest.raises(KeyError, match="WD101"):
        get_rule("WD999")


def test_code_ranges_follow_the_policy():
    families = {"1": "optimizer", "2": "parameters", "3": "magnitude", "4": "loss"}
    assert {rule.code[2] for rule in RULES} <= set(families)
    static_off = [rule.code for rule in RULES if rule.static and not rule.static_default]
    assert static_off == ["WD204"]


def test_optimizer_names_are_unique_and_resolvable():
    seen = collections.Counter(
        name for fact in optimizers.OPTIMIZERS for name in (fact.name, *fact.aliases)
    )
    assert [name for name, n in seen.items() if n > 1] == []
    assert optimizers.lookup("torch.optim.Adam").short_name == "Adam"
    assert optimizers.lookup("my.Adam") is None


@pytest.mark.parametrize(
    "name, options, kind",
    [
        ("torch.optim.Adam", {}, optimizers.DecayKind.COUPLED_ADAPTIVE),
        ("torch.optim.Adam", {"decoupled_weight_decay": True}, optimizers.DecayKind.DECOUPLED),
        ("torch.optim.NAdam", {"decoupled_weight_decay": False}, optimizers.DecayKind.COUPLED_ADAPTIVE),
        ("torch.optim.RAdam", {"decoupled_weight_decay": True}, optimizers.DecayKind.DECOUPLED),
        ("torch.optim.AdamW", {}, optimizers.DecayKind.DECOUPLED),
        ("torch.optim.SGD", {}, optimizers.DecayKind.L2),
        ("torch.optim.Rprop", {}, optimizers.DecayKind.NONE),
        ("apex.optimizers.FusedAdam", {"adam_w_mode": False}, optimizers.DecayKind.COUPLED_ADAPTIVE),
    ],
)
def test_decay_kind_follows_the_flag(name, options, kind):
    assert optimizers.lookup(name).kind_for(options) is kind


def test_adamw_default_decay_is_the_one_people_forget():
    assert optimizers.lookup("torch.optim.AdamW").default_weight_decay == 0.01


@pytest.mark.parametrize(
    "name",
    [
        "bitsandbytes.optim.rmsprop.RMSprop",
        "bitsandbytes.optim.adagrad.Adagrad",
        "torch_optimizer.adabound.AdaBound",
        "torch_optimizer.yogi.Yogi",
        "torch_optimizer.adabelief.AdaBelief",
        "apex.optimizers.fused_adam.FusedAdam",
        "deepspeed.ops.adam.fused_adam.FusedAdam",
    ],
)
def test_wd101_page_names_only_optimizers_the_table_couples(name):
    """The third-party optimizers WD101's page names as coupling their decay do so in the table
    (AdaBelief and FusedAdam when their flag is off)."""
    from wd_guard.optimizers import OPTIMIZERS, DecayKind

    fact = next(f for f in OPTIMIZERS if f.name == name)
    assert fact.decay is DecayKind.COUPLED_ADAPTIVE
    assert fact.name.rsplit(".", 1)[1] in get_rule("WD101").explanation
    if fact.decoupled_flag is not None:
        assert f"{fact.decoupled_flag}=" in get_rule("WD101").explanation
