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

Every element-wise term is decreasing in one per-element quantity ``x`` (``v``, ``u``, ...),
so the median of the term is the term at the median of ``x``: the median is taken over ``x``.
Every ``x`` is at least zero (a second moment, a sum of squares, an infinity norm, a ratio of
them); ``_medians.lower_medians`` selects on that.

The state samples and ``combine`` stay torch tensors where the state lives; the formulas run
on the host, on float64 numpy columns with one entry per parameter, with IEEE results and no
warnings (as in torch: a zero denominator gives inf, a row without state NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy
import torch
from torch import Tensor

from wd_guard._norms import host_view
from wd_guard.optimizers import DecayKind, OptimizerFact, group_kind

NAN = float("nan")

Cols = Dict[str, numpy.ndarray]
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
    rate: Callable[[Cols], numpy.ndarray]
    state_cols: Tuple[Tuple[str, str, Optional[str]], ...] = ()
    states: Tuple[str, ...] = ()
    combine: Optional[Callable[[List[Tensor], Mapping[str, Any]], Tensor]] = None


def _decoupled(c: Cols) -> numpy.ndarray:
    return c["lr"] * c["wd"]


def _sgd(c: Cols) -> numpy.ndarray:
    mom, damp = c["momentum"], c["dampening"]
    plain = (1 - damp) / (1 - mom)
    # torch.optim.SGD refuses nesterov=True unless dampening is 0, and with dampening 0 this
    # equals ``plain`` (1 + m / (1 - m) == 1 / (1 - m)): a mutant that swaps the branches or
    # changes the dampening term of this line is equivalent, and no test can tell it apart.
    nesterov = 1 + mom * (1 - damp) / (1 - mom)
    steady = numpy.where(c["nesterov"] > 0, nesterov, plain)
    return c["lr"] * c["wd"] * numpy.where(mom == 0, 1.0, steady)


def _adam(c: Cols) -> numpy.ndarray:
    v_hat = c["x"] / (1 - c["beta2"] ** c["step"])
    return c["lr"] * c["wd"] / (numpy.sqrt(v_hat) + c["eps"])


def _adamax(c: Cols) -> numpy.ndarray:
    return c["lr"] * c["wd"] / c["x"]


def _rmsprop(c: Cols) -> numpy.ndarray:
    return c["lr"] * c["wd"] / ((numpy.sqrt(c["x"]) + c["eps"]) * (1 - c["momentum"]))


def _adagrad(c: Cols) -> numpy.ndarray:
    clr = c["lr"] / (1 + (c["step"] - 1) * c["lr_decay"])
    return clr * c["wd"] / (numpy.sqrt(c["x"]) + c["eps"])


def _adadelta(c: Cols) -> numpy.ndarray:
    return c["lr"] * c["wd"] / numpy.sqrt(c["x"])


def _nadam(c: Cols) -> numpy.ndarray:
    beta1, t, prod = c["beta1"], c["step"], c["mu_product"]
    mu = beta1 * (1 - 0.5 * 0.96 ** (t * c["momentum_decay"]))
    mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * c["momentum_decay"]))
    weight = (1 - mu) / (1 - prod) + mu_next * (1 - beta1**t) / (1 - prod * mu_next)
    return _adam(c) * weight


def _radam(c: Cols) -> numpy.ndarray:
    beta2, t = c["beta2"], c["step"]
    bias2 = 1 - beta2**t
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2**t / bias2
    rect = numpy.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
    adaptive = c["lr"] * c["wd"] * rect * numpy.sqrt(bias2) / (numpy.sqrt(c["x"]) + c["eps"])
    return numpy.where(rho_t > 5, adaptive, c["lr"] * c["wd"])


def _centered(samples: List[Tensor], c: Mapping[str, Any]) -> Tensor:
    square_avg, grad_avg = samples
    # A variance: rounding can leave it just below zero, where torch's own update takes the
    # square root of a negative number. Clamped, it keeps ``x`` at least zero (see above).
    return (square_avg - grad_avg * grad_avg).clamp_min_(0.0)


def _adadelta_ratio(samples: List[Tensor], c: Mapping[str, Any]) -> Tensor:
    square_avg, acc_delta = samples
    eps = torch.as_tensor(c["eps"], dtype=square_avg.dtype, device=square_avg.device).unsqueeze(1)
    return (square_avg + eps) / (acc_delta + eps)


_STEP = (("step", "step", None),)

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
        Family("rmsprop", {**_LR_WD, "eps": _key("eps"), "momentum": _key("momentum")}, _rmsprop, (), ("square_avg",)),
        Family(
            "rmsprop-centered",
            {**_LR_WD, "eps": _key("eps"), "momentum": _key("momentum")},
            _rmsprop,
            (),
            ("square_avg", "grad_avg"),
            _centered,
        ),
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
        return "decoupled"
    if fact.mechanics not in COUPLED:
        return None
    return _variant(fact.mechanics, group)


def _variant(mechanics: str, group: Mapping[str, Any]) -> str:
    if mechanics == "adam" and group.get("amsgrad"):
        return "adam-amsgrad"
    if mechanics == "rmsprop" and group.get("centered"):
        return "rmsprop-centered"
    return mechanics


def stack_scalars(values: Sequence[Any], device: torch.device, dtype: torch.dtype) -> Tensor:
    """Numbers, None (read as NaN) and 0-d tensors as one vector on ``device``."""
    tensors = sum(isinstance(v, Tensor) for v in values)
    if not tensors:
        return torch.tensor([NAN if v is None else float(v) for v in values], dtype=dtype, device=device)
    if tensors == len(values):
        try:  # step counts: one stack where they live, one copy to ``device`` (no host round trip)
            return torch.stack(values).reshape(-1).to(device=device, dtype=dtype)
        except RuntimeError:  # on several devices, or of several shapes
            pass
    return torch.stack([torch.as_tensor(NAN if v is None else v, dtype=dtype, device=device).reshape(()) for v in values])


def group_columns(family: Family, groups: Sequence[Mapping[str, Any]], device: torch.device, dtype: torch.dtype) -> Tuple[Cols, Dict[str, Tensor]]:
    """The family's group hyperparameters, one entry per group.

    Plain numbers, the usual case, come back as float64 numpy columns (None reads as NaN); a
    column that some group holds as a tensor (a tensor ``lr``) stays on ``device``, to be read
    with the other device values in one transfer.
    """
    host: Cols = {}
    on_device: Dict[str, Tensor] = {}
    for name, read in family.group_cols.items():
        values = [read(g) for g in groups]
        if any(isinstance(v, Tensor) for v in values):
            on_device[name] = stack_scalars(values, device, dtype)
        else:
            host[name] = numpy.array([NAN if v is None else float(v) for v in values])
    return host, on_device


def state_values(family: Family, rows: Sequence[Tuple[Mapping[str, Any], Optional[Mapping[str, Any]]]]) -> Dict[str, List[Any]]:
    """The family's per-parameter state scalars (step counts, ...), None where there is no state yet."""
    return {name: [_state_value(state, key, group, fallback) for group, state in rows] for name, key, fallback in family.state_cols}


class HostScalars:
    """One state scalar of many parameters (their step counts), read as a float64 numpy column.

    Optimizers keep step counts in 0-d CPU tensors. Each is read through a numpy view made
    once, and the column is one ``numpy.array`` call; ``torch.stack`` costs a dispatch per
    tensor, about four times as long right after the norm pass. The views are made again
    when a value changes identity (first steps, a restored checkpoint). Values on a device
    give None: they are read with the other device values, in the one transfer.
    """

    def __init__(self) -> None:
        self._values: List[Any] = []
        self._views: Optional[List[Any]] = None

    def read(self, values: Sequence[Any]) -> Optional[numpy.ndarray]:
        """``values`` (0-d CPU tensors, numbers, None for NaN) as a column, or None."""
        if len(values) != len(self._values) or any(a is not b for a, b in zip(values, self._values)):
            self._values, self._views = list(values), _host_views(values)
        return None if self._views is None else numpy.array(self._views, dtype=numpy.float64)


def _host_views(values: Sequence[Any]) -> Optional[List[Any]]:
    views = []
    for value in values:
        if isinstance(value, Tensor):
            view = host_view(value) if value.numel() == 1 else None
            if view is None:
                return None
            views.append(view.reshape(()))
        else:
            views.append(NAN if value is None else float(value))
    return views


def _state_value(state: Optional[Mapping[str, Any]], key: str, group: Mapping[str, Any], fallback: Optional[str]) -> Any:
    if state and key in state:
        return state[key]
    return group.get(fallback) if fallback else None
