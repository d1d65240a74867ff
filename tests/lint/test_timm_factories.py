"""timm's factories read on real source text: ``create_optimizer_v2`` and the legacy
``create_optimizer(args, model, filter_bias_and_bn=True)``, which takes ``opt``, ``lr``,
``weight_decay`` and ``momentum`` off ``args`` (timm/optim/_optim_factory.py,
``optimizer_kwargs``), and the ``opt=`` names of the bitsandbytes classes."""

from __future__ import annotations

import pytest

from wd_guard.optimizers import FACTORIES, TIMM_OPT_NAMES, lookup

from wd_guard.lint.analysis.engine import lint_source

PARSER = (
    "import argparse\n"
    "from timm.optim import create_optimizer\n"
    "parser = argparse.ArgumentParser()\n"
    "parser.add_argument('--opt', default={opt!r}, type=str)\n"
    "parser.add_argument('--lr', type=float, default=5e-4)\n"
    "parser.add_argument('--momentum', type=float, default=0.9)\n"
    "parser.add_argument('--weight-decay', type=float, default={wd})\n"
)


def _lint(source: str) -> list:
    return [(d.line, d.code) for d in lint_source(source)]


def _legacy(opt: str, wd: float, extra: str = "", call: str = "create_optimizer(args, model)") -> list:
    source = PARSER.format(opt=opt, wd=wd) + extra + f"args = parser.parse_args()\noptimizer = {call}\n"
    return _lint(source)


def test_every_timm_name_builds_a_class_in_the_table():
    assert all(lookup(option.cls) is not None for option in TIMM_OPT_NAMES.values())
    assert {fact.name for fact in FACTORIES} == {"timm.optim.create_optimizer_v2", "timm.optim.create_optimizer"}


@pytest.mark.parametrize("opt,expected", [("adam", ["WD101"]), ("rmsprop", ["WD101"]), ("lookahead_adam", ["WD101"]), ("adamw", []), ("sgd", []), ("bnbadamw8bit", [])])
def test_legacy_factory_reads_the_optimizer_name_off_args(opt, expected):
    assert [code for _, code in _legacy(opt, 0.05)] == expected


def test_legacy_factory_message_shows_where_the_decay_comes_from():
    source = PARSER.format(opt="adam", wd=0.05) + "args = parser.parse_args()\noptimizer = create_optimizer(args, model)\n"
    (diagnostic,) = lint_source(source)
    assert diagnostic.line == 9
    assert "args.weight_decay = 0.05 (the default of --weight-decay, line 7)" in diagnostic.message


def test_legacy_factory_splits_unless_told_not_to():
    assert _legacy("sgd", 1e-4) == []
    assert _legacy("sgd", 1e-4, call="create_optimizer(args, model, False)") == [(9, "WD210")]
    assert _legacy("adamw", 0.05, call="create_optimizer(args, model, filter_bias_and_bn=False)") == [(9, "WD210")]
    assert _legacy("adamw", 0.05, call="create_optimizer(args, model.parameters())") == [(9, "WD210")]


def test_legacy_factory_with_a_zero_decay_is_clean():
    assert _legacy("adam", 0.0, call="create_optimizer(args, model, filter_bias_and_bn=False)") == []


def test_a_name_the_file_does_not_fix_stays_unknown():
    assert _legacy("adam", 0.05, extra="parser.set_defaults(opt='sgd')\n") == []
    assert _lint("from timm.optim import create_optimizer\ndef build(args, model):\n    return create_optimizer(args, model)\n") == []
    assert _lint("from timm.optim import create_optimizer\noptimizer = create_optimizer(get_args(), model)\n") == []


def test_layer_decay_set_on_args_makes_the_grouping_unknown():
    extra = "parser.add_argument('--layer-decay', type=float, default=0.75)\n"
    call = "create_optimizer(args, model, filter_bias_and_bn=False)"
    assert _legacy("adamw", 0.05, extra=extra, call=call) == []
    assert [code for _, code in _legacy("adam", 0.05, extra=extra)] == ["WD101"]
    unset = "parser.add_argument('--layer-decay', type=float, default=None)\n"
    assert _legacy("adamw", 0.05, extra=unset, call=call) == [(10, "WD210")]


def test_opt_args_set_on_args_may_replace_any_option():
    """timm merges ``args.opt_args`` over the options it read: even ``opt`` and
    ``weight_decay`` are then unknown, for a class with no flag (RMSprop) as well."""
    assert _legacy("rmsprop", 0.05, extra="parser.add_argument('--opt-args', type=dict, default={})\n") == []
    call = "create_optimizer(args, model, filter_bias_and_bn=False)"
    assert _legacy("sgd", 1e-4, extra="parser.add_argument('--opt-args', type=dict, default={})\n", call=call) == []
    assert [code for _, code in _legacy("rmsprop", 0.05, extra="parser.add_argument('--opt-args', default=None)\n")] == ["WD101"]


def test_legacy_factory_reads_a_dataclass_config():
    source = (
        "from dataclasses import dataclass\n"
        "import timm.optim\n\n"
        "@dataclass\n"
        "class TrainConfig:\n"
        "    opt: str = 'nadam'\n"
        "    lr: float = 1e-3\n"
        "    weight_decay: float = 1e-4\n"
        "    momentum: float = 0.9\n\n"
        "def build(cfg: TrainConfig, model):\n"
        "    return timm.optim.create_optimizer(cfg, model)\n"
    )
    assert _lint(source) == [(12, "WD101")]


def test_v2_resolves_the_name_and_the_decay_through_argparse():
    source = (
        "import argparse\nfrom timm.optim import create_optimizer_v2\nparser = argparse.ArgumentParser()\n"
        "parser.add_argument('--opt', default='adam')\nparser.add_argument('--wd', type=float, default=0.05)\n"
        "args = parser.parse_args()\nopt = create_optimizer_v2(model, opt=args.opt, weight_decay=args.wd)\n"
    )
    assert _lint(source) == [(7, "WD101")]


@pytest.mark.parametrize(
    "opt,expected",
    [("bnbsgd", ["WD210"]), ("bnbsgd8bit", ["WD210"]), ("bnbadam8bit", ["WD210"]), ("bnblion", ["WD210"]), ("bnbademamix8bit", ["WD210"])],
)
def test_bitsandbytes_names_build_their_classes(opt, expected):
    source = f"from timm.optim import create_optimizer_v2\nopt = create_optimizer_v2(model, {opt!r}, weight_decay=0.05, filter_bias_and_bn=False)\n"
    assert [code for _, code in _lint(source)] == expected
