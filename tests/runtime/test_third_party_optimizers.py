"""Third-party optimizers at run time: known by their qualified class name, flags read from
the real groups (timm) or from the optimizer (apex), defaults as their projects document them.

Neither package is a test dependency, so each test defines a small optimizer with the same
module, class name, constructor and storage of the flag as the original: the audit finds
optimizers by qualified name, so it treats these exactly as the originals.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch

from wd_guard import audit, param_groups
from wd_guard._decay import decay_per_step
from wd_guard.optimizers import DecayKind, fact_for_class, group_kind


class AdaBelief(torch.optim.Optimizer):
    """timm's constructor: ``decoupled_decay=True`` by default, kept in every param group."""

    def __init__(self, params: Any, lr: float = 1e-3, weight_decay: float = 0.0, decoupled_decay: bool = True) -> None:
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "decoupled_decay": decoupled_decay})

    def step(self, closure: Any = None) -> None:  # never called: the audit does not step
        raise NotImplementedError


class FusedAdam(torch.optim.Optimizer):
    """apex's constructor: ``adam_w_mode=True`` by default, kept on the optimizer, not in groups."""

    def __init__(self, params: Any, lr: float = 1e-3, weight_decay: float = 0.0, adam_w_mode: bool = True) -> None:
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})
        self.adam_w_mode = 1 if adam_w_mode else 0

    def step(self, closure: Any = None) -> None:  # never called: the audit does not step
        raise NotImplementedError


AdaBelief.__module__ = "timm.optim.adabelief"
FusedAdam.__module__ = "apex.optimizers.fused_adam"


def _codes(net: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list:
    return [f.code for f in audit(net, optimizer)]


@pytest.mark.parametrize("cls", [AdaBelief, FusedAdam])
def test_known_by_qualified_name(cls):
    fact = fact_for_class(cls)
    assert fact is not None and fact.name == f"{cls.__module__}.{cls.__qualname__}"


@pytest.mark.parametrize("cls", [AdaBelief, FusedAdam])
def test_default_construction_decouples_decay(make_mlp, cls):
    net = make_mlp()
    opt = cls(param_groups(net, 0.01))
    assert group_kind(fact_for_class(cls), opt.param_groups[0], opt) is DecayKind.DECOUPLED
    assert _codes(net, opt) == []


def test_adabelief_coupled_when_the_group_says_so(make_mlp):
    net = make_mlp()
    assert _codes(net, AdaBelief(param_groups(net, 0.01), decoupled_decay=False)) == ["WD101"]
    mixed = AdaBelief(param_groups(net, 0.01))
    mixed.param_groups[0]["decoupled_decay"] = False
    assert _codes(net, mixed) == ["WD101"]


def test_fused_adam_coupled_when_the_optimizer_says_so(make_mlp):
    net = make_mlp()
    assert _codes(net, FusedAdam(param_groups(net, 0.01), adam_w_mode=False)) == ["WD101"]


def test_the_group_flag_wins_over_the_optimizer_attribute(make_mlp):
    """The flag is read from each param group first and from the optimizer second."""
    net = make_mlp()
    opt = FusedAdam(param_groups(net, 0.01), adam_w_mode=True)
    opt.param_groups[0]["adam_w_mode"] = False
    assert group_kind(fact_for_class(FusedAdam), opt.param_groups[0], opt) is DecayKind.COUPLED_ADAPTIVE
    assert group_kind(fact_for_class(FusedAdam), opt.param_groups[1], opt) is DecayKind.DECOUPLED


def test_decay_per_step_reads_the_flag_on_the_optimizer(make_mlp):
    """apex's decoupled mode lives on the optimizer: lr * wd per step, and 0.0 where a group
    does not decay; coupled through Adam's state, the rate is not known from settings alone."""
    net = make_mlp()
    fact = fact_for_class(FusedAdam)
    decoupled = FusedAdam(param_groups(net, 0.01), lr=0.5)
    assert "adam_w_mode" not in decoupled.param_groups[0]
    assert decay_per_step(fact, decoupled.param_groups[0], decoupled) == pytest.approx(0.5 * 0.01)
    assert decoupled.param_groups[1]["weight_decay"] == 0.0
    assert decay_per_step(fact, decoupled.param_groups[1], decoupled) == 0.0
    coupled = FusedAdam(param_groups(net, 0.01), lr=0.5, adam_w_mode=False)
    assert decay_per_step(fact, coupled.param_groups[0], coupled) is None


def test_a_group_without_weight_decay_does_not_decay():
    # A group that sets no weight_decay at all (an optimizer without the option) decays
    # nothing, even where the rate would otherwise depend on the optimizer's state.
    adam = fact_for_class(torch.optim.Adam)
    assert decay_per_step(adam, {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}) == 0.0
    assert decay_per_step(adam, {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1}) is None


@pytest.mark.parametrize("cls", [AdaBelief, FusedAdam])
def test_options_without_the_flag_take_the_constructor_default(cls):
    # A group or a call that does not set the flag gets the constructor's default:
    # decoupled for timm's AdaBelief and apex's FusedAdam, coupled for torch's Adam.
    fact = fact_for_class(cls)
    assert inspect.signature(cls.__init__).parameters[fact.decoupled_flag].default is True
    assert fact.kind_for({}) is DecayKind.DECOUPLED
    assert fact.kind_for({fact.decoupled_flag: False}) is DecayKind.COUPLED_ADAPTIVE
    assert fact_for_class(torch.optim.Adam).kind_for({}) is DecayKind.COUPLED_ADAPTIVE
