"""Third-party optimizers as their projects write them: the linter reads the table's facts.

The facts are stated here as each project's source has them, apart from the optimizer table,
so that a wrong entry in the table fails a test: how ``step()`` applies ``weight_decay``
(coupled L2 through the adaptive denominator, decoupled shrinkage, L2 in a plain step, none),
the default ``weight_decay``, and the flag that switches coupled decay to decoupled with its
default (timm's ``AdaBelief`` has ``decoupled_decay=True``, apex's ``FusedAdam``
``adam_w_mode=True``, torch-optimizer's ``AdaBelief`` ``weight_decouple=False``).
"""

from __future__ import annotations

import pytest

from wd_guard.lint.analysis.engine import lint_source

THIRD_PARTY = {
    "AdaBelief": ("from timm.optim import AdaBelief", "decoupled_decay"),
    "FusedAdam": ("from apex.optimizers import FusedAdam", "adam_w_mode"),
    "FusedLAMB": ("from apex.optimizers import FusedLAMB", "adam_w_mode"),  # apex/optimizers/fused_lamb.py
    "FusedMixedPrecisionLamb": ("from apex.optimizers import FusedMixedPrecisionLamb", "adam_w_mode"),
}

# Flags that decouple decay only when set: coupled L2 by default.
COUPLED_UNTIL_FLAGGED = {
    "torch_optimizer.AdaBelief": "weight_decouple",  # torch_optimizer/adabelief.py
    "torch_optimizer.QHAdam": "decouple_weight_decay",  # torch_optimizer/qhadam.py
    "apex.optimizers.FusedAdagrad": "adagrad_w_mode",  # apex/optimizers/fused_adagrad.py
}

# The default weight_decay of the classes with a flag.
FLAGGED_DEFAULT_DECAY = {
    "timm.optim.AdaBelief": 0,
    "apex.optimizers.FusedAdam": 0,
    "apex.optimizers.FusedLAMB": 0.01,
    "apex.optimizers.FusedMixedPrecisionLamb": 0.01,
    "apex.optimizers.FusedAdagrad": 0,
    "torch_optimizer.AdaBelief": 0,
    "torch_optimizer.QHAdam": 0,
}

COUPLED, DECOUPLED, L2, NONE = "coupled", "decoupled", "l2", "none"

# (module.Class as imported, how decay acts, default weight_decay), from each package's source.
WITHOUT_FLAG = [
    ("torch_optimizer.AdaBound", COUPLED, 0),
    ("torch_optimizer.DiffGrad", COUPLED, 0),
    ("torch_optimizer.Yogi", COUPLED, 0),
    ("torch_optimizer.SWATS", COUPLED, 0),
    ("torch_optimizer.Apollo", COUPLED, 0),
    ("torch_optimizer.MADGRAD", COUPLED, 0),
    ("torch_optimizer.Shampoo", COUPLED, 0),
    ("torch_optimizer.RAdam", DECOUPLED, 0),
    ("torch_optimizer.AdaMod", DECOUPLED, 0),
    ("torch_optimizer.Adafactor", DECOUPLED, 0),
    ("torch_optimizer.AdamP", DECOUPLED, 0),
    ("torch_optimizer.Lion", DECOUPLED, 0),
    ("torch_optimizer.Adahessian", DECOUPLED, 0),
    ("torch_optimizer.Lamb", DECOUPLED, 0),
    ("torch_optimizer.NovoGrad", DECOUPLED, 0),
    ("torch_optimizer.SGDP", DECOUPLED, 0),
    ("torch_optimizer.AccSGD", L2, 0),
    ("torch_optimizer.AggMo", L2, 0),
    ("torch_optimizer.PID", L2, 0),
    ("torch_optimizer.LARS", L2, 0),
    ("torch_optimizer.QHM", L2, 0),
    ("torch_optimizer.A2GradUni", NONE, 0),
    ("torch_optimizer.A2GradInc", NONE, 0),
    ("torch_optimizer.A2GradExp", NONE, 0),
    ("bitsandbytes.optim.RMSprop", COUPLED, 0),
    ("bitsandbytes.optim.RMSprop8bit", COUPLED, 0),
    ("bitsandbytes.optim.RMSprop32bit", COUPLED, 0),
    ("bitsandbytes.optim.Adagrad", COUPLED, 0),
    ("bitsandbytes.optim.Adagrad8bit", COUPLED, 0),
    ("bitsandbytes.optim.Adagrad32bit", COUPLED, 0),
    ("bitsandbytes.optim.Adam8bit", DECOUPLED, 0),
    ("bitsandbytes.optim.PagedAdam32bit", DECOUPLED, 0),
    ("bitsandbytes.optim.AdamW", DECOUPLED, 0.01),
    ("bitsandbytes.optim.PagedAdamW8bit", DECOUPLED, 0.01),
    ("bitsandbytes.optim.AdEMAMix", DECOUPLED, 0.01),
    ("bitsandbytes.optim.AdEMAMix8bit", DECOUPLED, 0.01),
    ("bitsandbytes.optim.PagedAdEMAMix32bit", DECOUPLED, 0.01),
    ("bitsandbytes.optim.LAMB", DECOUPLED, 0),
    ("bitsandbytes.optim.LAMB8bit", DECOUPLED, 0),
    ("bitsandbytes.optim.Lion", DECOUPLED, 0),
    ("bitsandbytes.optim.PagedLion8bit", DECOUPLED, 0),
    ("bitsandbytes.optim.SGD", L2, 0),
    ("bitsandbytes.optim.SGD8bit", L2, 0),
    ("bitsandbytes.optim.LARS", L2, 0),
    ("bitsandbytes.optim.PytorchLARS", L2, 0),
    ("apex.optimizers.FusedNovoGrad", DECOUPLED, 0),
    ("apex.optimizers.FusedSGD", L2, 0),
]

# Classes of these packages that the table leaves unknown: a constant shift instead of a
# decay (SGDW), a wrapper (Lookahead), classes of another package (Ranger).
UNKNOWN = ["torch_optimizer.SGDW", "torch_optimizer.Lookahead", "torch_optimizer.Ranger"]


def _codes(cls: str, extra: str = "") -> list:
    imports, _ = THIRD_PARTY[cls]
    source = f"{imports}\nopt = {cls}(params, lr=1e-3, weight_decay=1e-2{extra})\n"
    return [d.code for d in lint_source(source)]


def _call(qualified: str, arguments: str) -> list:
    module, cls = qualified.rsplit(".", 1)
    source = f"from {module} import {cls}\nopt = {cls}({arguments})\n"
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


@pytest.mark.parametrize("cls", sorted(COUPLED_UNTIL_FLAGGED))
def test_flag_off_by_default_leaves_decay_coupled(cls):
    flag = COUPLED_UNTIL_FLAGGED[cls]
    assert _call(cls, "params, weight_decay=1e-2") == ["WD101"]
    assert _call(cls, f"params, weight_decay=1e-2, {flag}=False") == ["WD101"]
    assert _call(cls, f"params, weight_decay=1e-2, {flag}=True") == []


@pytest.mark.parametrize("cls,kind,_", WITHOUT_FLAG, ids=lambda v: v if isinstance(v, str) else "")
def test_coupled_decay_is_reported_and_no_other(cls, kind, _):
    """A decay on split groups: WD101 exactly when the class couples it."""
    assert _call(cls, "groups, lr=1e-3, weight_decay=1e-2") == (["WD101"] if kind == COUPLED else [])


@pytest.mark.parametrize("cls,kind,default", WITHOUT_FLAG, ids=lambda v: v if isinstance(v, str) else "")
def test_default_decay_reaches_every_parameter(cls, kind, default):
    """``model.parameters()`` without a decay: WD210 exactly when the default decays."""
    assert _call(cls, "model.parameters(), lr=1e-3") == (["WD210"] if default and kind != NONE else [])


@pytest.mark.parametrize("cls,kind,_", WITHOUT_FLAG, ids=lambda v: v if isinstance(v, str) else "")
def test_a_given_decay_reaches_every_parameter(cls, kind, _):
    """``model.parameters()`` with a decay: WD210 whenever the class decays at all."""
    codes = _call(cls, "model.parameters(), lr=1e-3, weight_decay=1e-2")
    assert ("WD210" in codes) == (kind != NONE)


@pytest.mark.parametrize("cls", UNKNOWN)
def test_unknown_classes_stay_unknown(cls):
    assert _call(cls, "model.parameters(), lr=1e-3, weight_decay=1e-2") == []


@pytest.mark.parametrize("cls", sorted(FLAGGED_DEFAULT_DECAY))
def test_default_decay_of_classes_with_a_flag(cls):
    assert _call(cls, "model.parameters(), lr=1e-3") == (["WD210"] if FLAGGED_DEFAULT_DECAY[cls] else [])
