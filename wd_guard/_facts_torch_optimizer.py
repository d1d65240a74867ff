"""torch-optimizer (``import torch_optimizer``): how each class applies ``weight_decay``, read
from jettify/pytorch-optimizer, ``torch_optimizer/<module>.py`` as cited beside each entry.

Every class is known under its module (``torch_optimizer.yogi.Yogi``) and under the package,
which re-exports them all (``torch_optimizer.Yogi``). Left unknown, on purpose:

- ``SGDW`` (sgdw.py): ``p.data.add_(weight_decay, alpha=-lr)`` subtracts the constant
  ``lr * weight_decay`` from every weight, which is neither L2 nor decoupled decay;
- ``Lookahead`` (lookahead.py): a wrapper whose decay is its inner optimizer's;
- ``Ranger``, ``RangerQH``, ``RangerVA``: re-exported from the separate ``pytorch_ranger``
  package, whose source is not read here.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from wd_guard._facts import SCALED, DecayKind, OptimizerFact, coupled


def _name(module: str, cls: str) -> Tuple[str, Tuple[str, ...]]:
    return f"torch_optimizer.{module}.{cls}", (f"torch_optimizer.{cls}",)


def _coupled(module: str, cls: str, lr: Optional[float], positional: Tuple[str, ...], **extra: Any) -> OptimizerFact:
    name, aliases = _name(module, cls)
    return coupled(name, lr, positional, aliases=aliases, **extra)


def _fact(module: str, cls: str, decay: DecayKind, lr: Optional[float], positional: Tuple[str, ...], **extra: Any) -> OptimizerFact:
    name, aliases = _name(module, cls)
    return OptimizerFact(name=name, decay=decay, default_lr=lr, positional=positional, aliases=aliases, **extra)


_ADAPTIVE_DECOUPLED = {"adaptive": True, "mechanics": "decoupled"}

OPTIMIZERS: Tuple[OptimizerFact, ...] = (
    # Coupled: ``grad += weight_decay * p`` before the adaptive denominator divides it.
    # adabound.py (``grad = grad.add(p.data, alpha=weight_decay)``), diffgrad.py, yogi.py,
    # swats.py (both phases), apollo.py (divided by the quasi-Newton diagonal), madgrad.py
    # (before the cube-root dual averaging), shampoo.py (before the matrix preconditioners).
    _coupled("adabound", "AdaBound", 1e-3, ("lr", "betas", "final_lr", "gamma", "eps", "weight_decay", "amsbound")),
    _coupled("diffgrad", "DiffGrad", 1e-3, ("lr", "betas", "eps", "weight_decay")),
    _coupled("yogi", "Yogi", 1e-2, ("lr", "betas", "eps", "initial_accumulator", "weight_decay")),
    _coupled("swats", "SWATS", 1e-3, ("lr", "betas", "eps", "weight_decay", "amsgrad", "nesterov")),
    _coupled("apollo", "Apollo", 1e-2, ("lr", "beta", "eps", "warmup", "init_lr", "weight_decay")),
    _coupled("madgrad", "MADGRAD", 1e-2, ("lr", "momentum", "weight_decay", "eps")),
    _coupled("shampoo", "Shampoo", 1e-1, ("lr", "momentum", "weight_decay", "epsilon", "update_freq")),
    # adabelief.py: ``weight_decouple=False`` by default (coupled: ``grad.add_(p.data,
    # alpha=weight_decay)``); True shrinks ``p`` by ``1 - lr * wd`` (or ``1 - wd`` with
    # ``fixed_decay``). The flag is kept on the optimizer as ``self._weight_decouple``.
    _coupled(
        "adabelief",
        "AdaBelief",
        1e-3,
        ("lr", "betas", "eps", "weight_decay", "amsgrad", "weight_decouple", "fixed_decay", "rectify"),
        decoupled_flag="weight_decouple",
        flag_attribute="_weight_decouple",
    ),
    # qhadam.py: ``decouple_weight_decay=False`` by default, kept in every group; True
    # shrinks ``p`` by ``1 - lr * weight_decay``.
    _coupled(
        "qhadam",
        "QHAdam",
        1e-3,
        ("lr", "betas", "nus", "weight_decay", "decouple_weight_decay", "eps"),
        decoupled_flag="decouple_weight_decay",
    ),
    # Decoupled: the weight shrinks by ``lr * weight_decay`` outside the adaptive step.
    # radam.py and adamod.py (``p.add_(p, alpha=-weight_decay * lr)``), adamp.py (``p.mul_(1 - lr * weight_decay * wd_ratio)``,
    # wd_ratio below 1 only on scale-invariant weights), lion.py (before the sign update),
    # adahessian.py (``weight_decay * p`` added to the update after the Hessian denominator).
    _fact("radam", "RAdam", DecayKind.DECOUPLED, 1e-3, ("lr", "betas", "eps", "weight_decay"), **_ADAPTIVE_DECOUPLED),
    _fact("adamod", "AdaMod", DecayKind.DECOUPLED, 1e-3, ("lr", "betas", "beta3", "eps", "weight_decay"), **_ADAPTIVE_DECOUPLED),
    # adafactor.py shrinks by ``lr * weight_decay`` with the step size it computes itself
    # (``relative_step=True`` by default), not the group's ``lr`` (None by default).
    _fact(
        "adafactor",
        "Adafactor",
        DecayKind.DECOUPLED,
        None,
        ("lr", "eps2", "clip_threshold", "decay_rate", "beta1", "weight_decay"),
        adaptive=True,
        mechanics=SCALED,
    ),
    _fact("adamp", "AdamP", DecayKind.DECOUPLED, 1e-3, ("lr", "betas", "eps", "weight_decay", "delta", "wd_ratio", "nesterov"), **_ADAPTIVE_DECOUPLED),
    _fact("lion", "Lion", DecayKind.DECOUPLED, 1e-4, ("lr", "betas", "weight_decay"), mechanics="decoupled"),
    _fact("adahessian", "Adahessian", DecayKind.DECOUPLED, 0.15, ("lr", "betas", "eps", "weight_decay", "hessian_power", "seed"), **_ADAPTIVE_DECOUPLED),
    # Decoupled from the adaptive denominator, then scaled: lamb.py adds ``weight_decay * p``
    # to the Adam step and multiplies the sum by the trust ratio; novograd.py adds it after the
    # per-layer normalisation, into the momentum buffer; sgdp.py shrinks ``p`` by
    # ``1 - lr * weight_decay * wd_ratio / (1 - momentum)``.
    _fact("lamb", "Lamb", DecayKind.DECOUPLED, 1e-3, ("lr", "betas", "eps", "weight_decay", "clamp_value", "adam", "debias"), adaptive=True, mechanics=SCALED),
    _fact("novograd", "NovoGrad", DecayKind.DECOUPLED, 1e-3, ("lr", "betas", "eps", "weight_decay", "grad_averaging", "amsgrad"), adaptive=True, mechanics=SCALED),
    _fact("sgdp", "SGDP", DecayKind.DECOUPLED, 1e-3, ("lr", "momentum", "dampening", "eps", "weight_decay", "delta", "wd_ratio", "nesterov"), mechanics=SCALED),
    # L2 in a non-adaptive step: ``d_p += weight_decay * p``. accsgd.py, aggmo.py, pid.py,
    # lars.py (before the layer-wise trust ratio), qhm.py (``weight_decay_type="grad"``, the
    # default; ``"direct"`` shrinks ``p`` by ``1 - lr * weight_decay`` instead, also a
    # non-adaptive decay).
    _fact("accsgd", "AccSGD", DecayKind.L2, 1e-3, ("lr", "kappa", "xi", "small_const", "weight_decay")),
    _fact("aggmo", "AggMo", DecayKind.L2, 1e-3, ("lr", "betas", "weight_decay")),
    _fact("pid", "PID", DecayKind.L2, 1e-3, ("lr", "momentum", "dampening", "weight_decay", "integral", "derivative")),
    _fact("lars", "LARS", DecayKind.L2, 1e-2, ("lr", "momentum", "dampening", "weight_decay", "nesterov", "trust_coefficient", "eps")),
    _fact("qhm", "QHM", DecayKind.L2, 1e-3, ("lr", "momentum", "nu", "weight_decay", "weight_decay_type")),
    # a2grad.py: no ``weight_decay`` option at all; ``lr`` is accepted and not required.
    *(_fact("a2grad", cls, DecayKind.NONE, None, ("lr", "beta", "lips")) for cls in ("A2GradUni", "A2GradInc", "A2GradExp")),
)
