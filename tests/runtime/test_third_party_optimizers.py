"""Third-party optimizers at run time: known by their qualified class name, flags read from
the real groups (timm, torch-optimizer's QHAdam) or from the optimizer (apex, and
torch-optimizer's AdaBelief under another name), defaults as their projects' sources have them.

No such package is a test dependency, so each test defines a small optimizer with the same
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


class FusedAdagrad(torch.optim.Optimizer):
    """apex's constructor: ``adagrad_w_mode=False`` by default, kept on the optimizer."""

    def __init__(self, params: Any, lr: float = 1e-2, weight_decay: float = 0.0, adagrad_w_mode: bool = False) -> None:
        super().__init__(params, {"lr": lr, "eps": 1e-10, "weight_decay": weight_decay})
        self.adagrad_w_mode = 1 if adagrad_w_mode else 0

    def step(self, closure: Any = None) -> None:  # never called: the audit does not step
        raise NotImplementedError


class TorchOptimizerAdaBelief(torch.optim.Optimizer):
    """torch_optimizer/adabelief.py: ``weight_decouple=False`` by default, kept on the optimizer
    as ``self._weight_decouple``, not in the groups."""

    def __init__(self, params: Any, lr: float = 1e-3, weight_decay: float = 0.0, weight_decouple: bool = False) -> None:
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})
        self._weight_decouple = weight_decouple

    def step(self, closure: Any = None) -> None:  # never called: the audit does not step
        raise NotImplementedError


class QHAdam(torch.optim.Optimizer):
    """torch_optimizer/qhadam.py: ``decouple_weight_decay=False`` by default, in every group."""

    def __init__(self, params: Any, lr: float = 1e-3, weight_decay: float = 0.0, decouple_weight_decay: bool = False) -> None:
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "decouple_weight_decay": decouple_weight_decay})

    def step(self, closure: Any = None) -> None:  # never called: the audit does not step
        raise NotImplementedError


class _Bnb1State(torch.optim.Optimizer):
    """bitsandbytes' Optimizer1State keeps ``lr, betas, eps, weight_decay`` in every group."""

    def __init__(self, params: Any, lr: float = 1e-2, weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "betas": (0.99, 0.0), "eps": 1e-8, "weight_decay": weight_decay})

    def step(self, closure: Any = None) -> None:  # never called: the audit does not step
        raise NotImplementedError


class RMSprop8bit(_Bnb1State):
    """bitsandbytes/optim/rmsprop.py: the "rmsprop" kernel adds the decay to the gradient."""


class Lion8bit(_Bnb1State):
    """bitsandbytes/optim/lion.py: the "lion" kernel shrinks the weight by ``1 - lr * wd``."""


class Lamb(_Bnb1State):
    """torch_optimizer/lamb.py: decay added to the Adam step, then scaled by the trust ratio."""


class SGDW(_Bnb1State):
    """torch_optimizer/sgdw.py subtracts the constant ``lr * wd``: left unknown."""


AdaBelief.__module__ = "timm.optim.adabelief"
FusedAdam.__module__ = "apex.optimizers.fused_adam"
FusedAdagrad.__module__ = "apex.optimizers.fused_adagrad"
TorchOptimizerAdaBelief.__module__ = "torch_optimizer.adabelief"
TorchOptimizerAdaBelief.__qualname__ = TorchOptimizerAdaBelief.__name__ = "AdaBelief"
QHAdam.__module__ = "torch_optimizer.qhadam"
RMSprop8bit.__module__ = "bitsandbytes.optim.rmsprop"
Lion8bit.__module__ = "bitsandbytes.optim.lion"
Lamb.__module__ = "torch_optimizer.lamb"
SGDW.__module__ = "torch_optimizer.sgdw"


def _codes(net: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list:
    return [f.code for f in audit(net, optimizer)]


@pytest.mark.parametrize("cls", [AdaBelief, FusedAdam, FusedAdagrad, TorchOptimizerAdaBelief, QHAdam, RMSprop8bit, Lion8bit, Lamb])
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


@pytest.mark.parametrize("cls", [TorchOptimizerAdaBelief, QHAdam, FusedAdagrad])
def test_flags_that_default_to_coupled_decay(make_mlp, cls):
    net = make_mlp()
    opt = cls(param_groups(net, 0.01))
    assert group_kind(fact_for_class(cls), opt.param_groups[0], opt) is DecayKind.COUPLED_ADAPTIVE
    assert _codes(net, opt) == ["WD101"]


def test_torch_optimizer_adabelief_flag_is_read_off_the_optimizer(make_mlp):
    net = make_mlp()
    assert _codes(net, TorchOptimizerAdaBelief(param_groups(net, 0.01), weight_decouple=True)) == []


def test_qhadam_flag_is_read_from_each_group(make_mlp):
    net = make_mlp()
    assert _codes(net, QHAdam(param_groups(net, 0.01), decouple_weight_decay=True)) == []
    mixed = QHAdam(param_groups(net, 0.01), decouple_weight_decay=True)
    mixed.param_groups[0]["decouple_weight_decay"] = False
    assert _codes(net, mixed) == ["WD101"]


def test_bitsandbytes_rmsprop_couples_and_lion_decouples(make_mlp):
    net = make_mlp()
    assert _codes(net, RMSprop8bit(param_groups(net, 1e-4))) == ["WD101"]
    assert _codes(net, Lion8bit(param_groups(net, 0.1), lr=1e-4)) == []


def test_decay_per_step_is_lr_times_wd_unless_the_step_scales_it(make_mlp):
    """Lion's decoupled shrinkage is ``lr * wd``; Lamb's trust ratio scales it: unknown."""
    net = make_mlp()
    lion = Lion8bit(net.parameters(), lr=1e-3, weight_decay=0.1)
    lamb = Lamb(net.parameters(), lr=1e-3, weight_decay=0.1)
    assert decay_per_step(fact_for_class(Lion8bit), lion.param_groups[0], lion) == pytest.approx(1e-4)
    assert group_kind(fact_for_class(Lamb), lamb.param_groups[0], lamb) is DecayKind.DECOUPLED
    assert decay_per_step(fact_for_class(Lamb), lamb.param_groups[0], lamb) is None


def test_sgdw_stays_unknown(make_mlp):
    net = make_mlp()
    assert fact_for_class(SGDW) is None
    with pytest.warns(UserWarning, match="not in wd-guard's optimizer table"):
        assert _codes(net, SGDW(param_groups(net, 0.01))) == []


def test_fused_adagrad_decouples_when_the_optimizer_says_so(make_mlp):
    net = make_mlp()
    assert _codes(net, FusedAdagrad(param_groups(net, 0.01), adagrad_w_mode=True)) == []


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
