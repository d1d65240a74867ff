"""Effective decay per optimizer family: the fraction of a weight that decay alone removes per step.

Each family reads the group's hyperparameters, the optimizer's own per-parameter state
(step count, second moments) and, for coupled decay in an adaptive optimizer, the median of
the per-element adaptive factor. The formulas follow the update rules in ``torch.optim``
(bias corrections included), with decay's contribution to momentum at its steady state:

============  ==========================================================================
mechanics     effective decay
============  ==========================================================================
decoupled     ``lr * wd``
sgd           ``lr * wd * (1 - dampening) / (1 - momentum)``; nesterov:
              ``lr * wd * (1 + momentum * (1 - dampening) / (1 - momentum))``;
              ``lr * wd`` without momentum; ASGD uses its current ``eta`` as lr
adam          ``lr * wd / (sqrt(v / (1 - beta2**t)) + eps)``, ``v`` the ``exp_avg_sq``
              (``max_exp_avg_sq`` with amsgrad)
adamax        ``lr * wd / u``, ``u`` the ``exp_inf`` (it holds ``eps`` already)
rmsprop       ``lr * wd / ((sqrt(v) + eps) * (1 - momentum))``; centered: ``v - g_avg**2``
adagrad       ``lr / (1 + (t - 1) * lr_decay) * wd / (sqrt(sum) + eps)``
adadelta      ``lr * wd * sqrt(acc_delta + eps) / sqrt(square_avg + eps)``
nadam         adam's with the momentum-cache weights of the step,
              ``(1 - mu_t) / (1 - prod mu) + mu_{t+1} (1 - beta1**t) / (1 - prod mu * mu_{t+1})``
radam         ``lr * wd * rect_t * sqrt(1 - beta2**t) / (sqrt(v) + eps)`` once the
              variance is tractable (``rho_t > 5``), else ``lr * wd``
============  ==========================================================================

A decoupled optimizer whose step scales the decay further (mechanics ``scaled``: LAMB's trust
ratio, NovoGrad's momentum) has no formula here: its effective decay is unknown.

Every element-wise term is decreasing in one per-element quantity ``x`` (``v``, ``u``, ...),
so the median of the term is the term at the median of ``x``: the median is taken over ``x``,
where the state lives. The formulas then run on float64 CPU tensors with one entry per
parameter (a few hundred numbers), with IEEE results: a zero denominator gives inf, a
parameter without state NaN. :func:`decay_per_step` is the same steady state from the
hyperparameters alone, for the audit's WD301 and WD302.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor

from wd_guard._norms import result_dtype
from wd_guard.optimizers import SCALED, DecayKind, OptimizerFact, group_kind

NAN = float("nan")

Cols = Dict[str, Tensor]
GroupColumn = Callable[[Mapping[str, Any]], Any]


def _key(name: str, default: Any = 0.0) -> GroupColumn:
    return lambda group: group.get(name, default)


def _beta(index: int) -> GroupColumn:
    return lambda group: group["betas"][index]


_LR_WD = {"lr": _key("lr", None), "wd": _key("weight_decay")}
_ADAM_COLS = {**_LR_WD, "beta1": _beta(0), "beta2": _beta(1), "eps": _key("eps")}


@dataclass(frozen=True)
class Family:
    """How one update rule turns ``weight_decay`` into a per-step fraction of the weight.

    ``group_cols`` are read from the param group, ``state_cols`` from the parameter's state
    (``fallback`` names a group column used when the state has no such entry), ``states``
    are the state tensors sampled for the median of ``x``, and ``combine`` maps their samples
    to ``x`` element by element.
    """

    name: str
    group_cols: Mapping[str, GroupColumn]
    rate: Callable[[Cols], Tensor]
    state_cols: Tuple[Tuple[str, str, Optional[str]], ...] = ()
    states: Tuple[str, ...] = ()
    combine: Optional[Callable[[List[Tensor], Cols], Tensor]] = None


def _decoupled(c: Cols) -> Tensor:
    return c["lr"] * c["wd"]


def _sgd(c: Cols) -> Tensor:
    mom, damp = c["momentum"], c["dampening"]
    plain = (1 - damp) / (1 - mom)
    # torch.optim.SGD refuses nesterov=True unless dampening is 0, and with dampening 0 this
    # equals ``plain`` (1 + m / (1 - m) == 1 / (1 - m)): a mutant that swaps the branches or
    # changes the dampening term of this line is equivalent, and no test can tell it apart.
    nesterov = 1 + mom * (1 - damp) / (1 - mom)
    steady = torch.where(c["nesterov"] > 0, nesterov, plain)
    return c["lr"] * c["wd"] * torch.where(mom == 0, 1.0, steady)


def _adam(c: Cols) -> Tensor:
    v_hat = c["x"] / (1 - c["beta2"] ** c["step"])
    return c["lr"] * c["wd"] / (v_hat.sqrt() + c["eps"])


def _adamax(c: Cols) -> Tensor:
    return c["lr"] * c["wd"] / c["x"]


def _rmsprop(c: Cols) -> Tensor:
    return c["lr"] * c["wd"] / ((c["x"].sqrt() + c["eps"]) * (1 - c["momentum"]))


def _adagrad(c: Cols) -> Tensor:
    clr = c["lr"] / (1 + (c["step"] - 1) * c["lr_decay"])
    return clr * c["wd"] / (c["x"].sqrt() + c["eps"])


def _adadelta(c: Cols) -> Tensor:
    return c["lr"] * c["wd"] / c["x"].sqrt()


def _nadam(c: Cols) -> Tensor:
    beta1, t, prod = c["beta1"], c["step"], c["mu_product"]
    mu = beta1 * (1 - 0.5 * 0.96 ** (t * c["momentum_decay"]))
    mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * c["momentum_decay"]))
    weight = (1 - mu) / (1 - prod) + mu_next * (1 - beta1**t) / (1 - prod * mu_next)
    return _adam(c) * weight


def _radam(c: Cols) -> Tensor:
    beta2, t = c["beta2"], c["step"]
    bias2 = 1 - beta2**t
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2**t / bias2
    rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)).sqrt()
    adaptive = c["lr"] * c["wd"] * rect * bias2.sqrt() / (c["x"].sqrt() + c["eps"])
    return torch.where(rho_t > 5, adaptive, c["lr"] * c["wd"])


def _centered(samples: List[Tensor], c: Cols) -> Tensor:
    square_avg, grad_avg = samples
    # A variance: rounding can leave it just below zero, where torch's own update takes the
    # square root of a negative number. Clamped, it keeps ``x`` at least zero.
    return (square_avg - grad_avg * grad_avg).clamp_min_(0.0)


def _adadelta_ratio(samples: List[Tensor], c: Cols) -> Tensor:
    square_avg, acc_delta = samples
    eps = _per_row(c["eps"], square_avg)
    return (square_avg + eps) / (acc_delta + eps)


def _per_row(col: Tensor, like: Tensor) -> Any:
    """A host column as a number when all rows agree (no transfer), else as a column on ``like``'s device."""
    if bool((col == col[0]).all()):
        return float(col[0])
    return col.to(device=like.device, dtype=like.dtype).unsqueeze(1)


_STEP = (("step", "step", None),)
_RMS_COLS = {**_LR_WD, "eps": _key("eps"), "momentum": _key("momentum")}

FAMILIES: Dict[str, Family] = {
    family.name: family
    for family in (
        Family("decoupled", _LR_WD, _decoupled),
        Family(
            "sgd",
            {"wd": _key("weight_decay"), "momentum": _key("momentum"), "dampening": _key("dampening"), "nesterov": _key("nesterov", False)},
            _sgd,
            state_cols=(("lr", "eta", "lr"),),
        ),
        Family("adam", _ADAM_COLS, _adam, _STEP, ("exp_avg_sq",)),
        Family("adam-amsgrad", _ADAM_COLS, _adam, _STEP, ("max_exp_avg_sq",)),
        Family("adamax", _LR_WD, _adamax, (), ("exp_inf",)),
        Family("rmsprop", _RMS_COLS, _rmsprop, (), ("square_avg",)),
        Family("rmsprop-centered", _RMS_COLS, _rmsprop, (), ("square_avg", "grad_avg"), _centered),
        Family("adagrad", {**_LR_WD, "eps": _key("eps"), "lr_decay": _key("lr_decay")}, _adagrad, _STEP, ("sum",)),
        Family("adadelta", {**_LR_WD, "eps": _key("eps")}, _adadelta, (), ("square_avg", "acc_delta"), _adadelta_ratio),
        Family(
            "nadam",
            {**_ADAM_COLS, "momentum_decay": _key("momentum_decay")},
            _nadam,
            (("step", "step", None), ("mu_product", "mu_product", None)),
            ("exp_avg_sq",),
        ),
        Family("radam", _ADAM_COLS, _radam, _STEP, ("exp_avg_sq",)),
    )
}

#: Coupled mechanics (L2 added to the gradient) whose effective decay wd-guard computes.
COUPLED = frozenset({"sgd", "adam", "adamax", "rmsprop", "adagrad", "adadelta", "nadam", "radam"})

ZERO = "zero"  # the group does not decay: effective decay is exactly 0.0


def family_for(fact: Optional[OptimizerFact], group: Mapping[str, Any], optimizer: object) -> Optional[str]:
    """The family for one param group: a key of ``FAMILIES``, ``ZERO``, or None when unknown."""
    kind = group_kind(fact, group, optimizer)
    if kind is DecayKind.NONE:
        return ZERO
    if kind is DecayKind.UNKNOWN or fact is None:
        return None
    if not group.get("weight_decay", 0.0):
        return ZERO
    if kind is DecayKind.DECOUPLED:
        return None if fact.mechanics == SCALED else "decoupled"
    if fact.mechanics not in COUPLED:
        return None
    if fact.mechanics == "adam" and group.get("amsgrad"):
        return "adam-amsgrad"
    if fact.mechanics == "rmsprop" and group.get("centered"):
        return "rmsprop-centered"
    return fact.mechanics


def decay_per_step(fact: Optional[OptimizerFact], group: Mapping[str, Any], optimizer: object = None, *, lr: Any = None) -> Optional[float]:
    """The steady-state fraction of a weight that decay removes per step, from hyperparameters alone.

    The formula of ``effective_decay`` with the group's values (``lr`` when given, else the
    group's ``lr``): ``lr * wd`` for decoupled decay, momentum included for SGD. 0.0 for a
    group that does not decay; None where the rate depends on the optimizer's state (coupled
    decay in an adaptive optimizer) or the optimizer is unknown.
    """
    name = family_for(fact, group, optimizer)
    if name == ZERO:
        return 0.0
    family = FAMILIES.get(name) if name else None
    if family is None or family.states:
        return None
    values = {**group, "lr": group.get("lr") if lr is None else lr}
    cols = {col: read(values) for col, read in family.group_cols.items()}
    cols.update({col: values.get(fallback) for col, _, fallback in family.state_cols if fallback})
    return float(family.rate({col: stack_scalars([value]).cpu() for col, value in cols.items()})[0])


def stack_scalars(values: Sequence[Any]) -> Tensor:
    """Numbers, None (read as NaN) and 0-d tensors as one vector where the tensors live (numbers: CPU float64)."""
    tensors = [v for v in values if isinstance(v, Tensor)]
    if not tensors:
        return torch.tensor([NAN if v is None else float(v) for v in values], dtype=torch.float64)
    device = tensors[0].device
    dtype = result_dtype(device)
    if len(tensors) == len(values) and all(t.device == device and t.dim() == 0 for t in tensors):
        return torch.stack(values).reshape(-1).to(dtype)  # step counts: one stack where they live
    return torch.stack([torch.as_tensor(NAN if v is None else v, dtype=dtype, device=device).reshape(()) for v in values])


def group_columns(family: Family, groups: Sequence[Mapping[str, Any]]) -> Cols:
    """The family's group hyperparameters, one entry per group (a tensor ``lr`` stays where it lives)."""
    return {name: stack_scalars([read(g) for g in groups]) for name, read in family.group_cols.items()}


def state_columns(family: Family, rows: Sequence[Tuple[Mapping[str, Any], Optional[Mapping[str, Any]]]]) -> Cols:
    """The family's per-parameter state scalars (step counts, ...), NaN where there is no state yet."""
    return {name: stack_scalars([_state_value(state, key, group, fallback) for group, state in rows]) for name, key, fallback in family.state_cols}


def _state_value(state: Optional[Mapping[str, Any]], key: str, group: Mapping[str, Any], fallback: Optional[str]) -> Any:
    if state and key in state:
        return state[key]
    return group.get(fallback) if fallback else None
