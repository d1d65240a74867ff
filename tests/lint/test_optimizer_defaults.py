"""Third-party optimizers whose flag decouples decay by default: the linter reads the default.

The facts are stated here as their projects document them, apart from the optimizer table,
so that a wrong default in the table fails a test: timm's ``AdaBelief`` has
``decoupled_decay=True`` and apex's ``FusedAdam`` has ``adam_w_mode=True``.
"""

from __future__ import annotations

import pytest

from wd_guard.lint.analysis.engine import lint_source

THIRD_PARTY = {
    "AdaBelief": ("from timm.optim import AdaBelief", "decoupled_decay"),
    "FusedAdam": ("from apex.optimizers import FusedAdam", "adam_w_mode"),
}


def _codes(cls: str, extra: str = "") -> list:
    imports, _ = THIRD_PARTY[cls]
    source = f"{imports}\nopt = {cls}(params, lr=1e-3, weight_decay=1e-2{extra})\n"
    return [d.code for d in lint_source(source)]


@pytest.mark.parametrize("cls", sorted(THIRD_PARTY))
def test_default_flag_decouples_decay(cls):
    assert _codes(cls) == []


@pytest.mark.parametrize("cls", sorted(THIRD_PARTY))
def test_flag_set_true_decouples_decay(cls):
    assert _codes(cls, f", {THIRD_PARTY[cls][1]}=True") == []


@pytest.mark.parametrize("cls", sorted(THIRD_PARTY))
def test_flag_set_false_is_coupled_decay(cls):
    assert _codes(cls, f", {THIRD_PARTY[cls][1]}=False") == ["WD101"]


def test_module_path_spelling_is_the_same_optimizer():
    source = (
        "import timm.optim.adabelief\n"
        "opt = timm.optim.adabelief.AdaBelief(params, weight_decay=1e-2, decoupled_decay=False)\n"
    )
    assert [d.code for d in lint_source(source)] == ["WD101"]
