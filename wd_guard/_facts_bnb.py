"""bitsandbytes optimizers: how each applies ``weight_decay``, read from the package's source.

bitsandbytes-foundation/bitsandbytes: every class in ``bitsandbytes/optim/`` hands its
``weight_decay`` to one update kernel, named by a string (``"adam"``, ``"rmsprop"``, ...).
The CUDA kernels (``csrc/kernels.cu``) and the reference kernels
(``bitsandbytes/backends/default/ops.py``, which maps ``"lars"`` to the momentum kernel and
``"lamb"`` to the adam kernel) apply it in one of two ways:

- ``momentum``, ``rmsprop``, ``adagrad``: ``g += weight_decay * p`` before the update, coupled
  L2 (through the adaptive denominator for RMSprop and Adagrad);
- ``adam``, ``ademamix``, ``lion``: ``p *= 1 - lr * weight_decay`` outside the update,
  decoupled (LAMB's trust ratio scales the adam step only, not this shrinkage).

Each class is known under its module (``bitsandbytes.optim.rmsprop.RMSprop8bit``) and under
``bitsandbytes.optim``, which re-exports them all. The param groups hold ``betas`` rather than
torch's ``momentum`` or ``alpha``, and the state is named ``state1``/``state2``, so the stats
compute no effective decay for the coupled ones.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, Tuple

from wd_guard._facts import DecayKind, OptimizerFact

_ADAM_POSITIONAL = ("lr", "betas", "eps", "weight_decay", "amsgrad")
_BITS = ("", "8bit", "32bit")


def _family(
    module: str,
    classes: Tuple[str, ...],
    decay: DecayKind,
    lr: Optional[float],
    positional: Tuple[str, ...],
    **extra: Any,
) -> Iterator[OptimizerFact]:
    for cls in classes:
        yield OptimizerFact(
            name=f"bitsandbytes.optim.{module}.{cls}",
            decay=decay,
            default_lr=lr,
            positional=positional,
            aliases=(f"bitsandbytes.optim.{cls}",),
            **extra,
        )


def _with_paged(name: str) -> Tuple[str, ...]:
    return (*(f"{name}{bits}" for bits in _BITS), *(f"Paged{name}{bits}" for bits in _BITS))


_DECOUPLED_ADAPTIVE = {"adaptive": True, "mechanics": "decoupled"}

OPTIMIZERS: Tuple[OptimizerFact, ...] = (
    # bitsandbytes/optim/adamw.py: ``lr=1e-3, betas, eps, weight_decay=1e-2, amsgrad``;
    # adam.py: the same with ``weight_decay=0``. Both run the "adam" kernel (decoupled).
    *_family("adamw", _with_paged("AdamW"), DecayKind.DECOUPLED, 1e-3, _ADAM_POSITIONAL, default_weight_decay=0.01, **_DECOUPLED_ADAPTIVE),
    *_family("adam", _with_paged("Adam"), DecayKind.DECOUPLED, 1e-3, _ADAM_POSITIONAL, **_DECOUPLED_ADAPTIVE),
    # bitsandbytes/optim/ademamix.py: ``lr=1e-3, betas=(0.9, 0.999, 0.9999), alpha, t_alpha,
    # t_beta3, eps, weight_decay=1e-2``; the "ademamix" kernel (decoupled).
    *_family(
        "ademamix",
        _with_paged("AdEMAMix"),
        DecayKind.DECOUPLED,
        1e-3,
        ("lr", "betas", "alpha", "t_alpha", "t_beta3", "eps", "weight_decay"),
        default_weight_decay=0.01,
        **_DECOUPLED_ADAPTIVE,
    ),
    # bitsandbytes/optim/lamb.py: ``lr=1e-3, bias_correction, betas, eps, weight_decay=0,
    # amsgrad, adam_w_mode=True`` (the flag is accepted and not used: the "lamb" name runs
    # the adam kernel, decoupled, whatever it says).
    *_family(
        "lamb",
        tuple(f"LAMB{bits}" for bits in _BITS),
        DecayKind.DECOUPLED,
        1e-3,
        ("lr", "bias_correction", "betas", "eps", "weight_decay", "amsgrad", "adam_w_mode"),
        **_DECOUPLED_ADAPTIVE,
    ),
    # bitsandbytes/optim/lion.py: ``lr=1e-4, betas=(0.9, 0.99), weight_decay=0``; the "lion"
    # kernel shrinks the weight before the sign update (decoupled).
    *_family("lion", _with_paged("Lion"), DecayKind.DECOUPLED, 1e-4, ("lr", "betas", "weight_decay"), mechanics="decoupled"),
    # bitsandbytes/optim/rmsprop.py: ``lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0,
    # momentum=0, centered``; the "rmsprop" kernel adds the decay to the gradient (coupled).
    *_family(
        "rmsprop",
        tuple(f"RMSprop{bits}" for bits in _BITS),
        DecayKind.COUPLED_ADAPTIVE,
        1e-2,
        ("lr", "alpha", "eps", "weight_decay", "momentum", "centered"),
        adaptive=True,
    ),
    # bitsandbytes/optim/adagrad.py: ``lr=1e-2, lr_decay=0, weight_decay=0,
    # initial_accumulator_value=0, eps=1e-10``; the "adagrad" kernel (coupled).
    *_family(
        "adagrad",
        tuple(f"Adagrad{bits}" for bits in _BITS),
        DecayKind.COUPLED_ADAPTIVE,
        1e-2,
        ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"),
        adaptive=True,
    ),
    # bitsandbytes/optim/sgd.py: ``lr`` required, ``momentum=0, dampening=0, weight_decay=0,
    # nesterov``; the "momentum" kernel adds the decay to the gradient of a plain step (L2).
    *_family(
        "sgd",
        tuple(f"SGD{bits}" for bits in _BITS),
        DecayKind.L2,
        None,
        ("lr", "momentum", "dampening", "weight_decay", "nesterov"),
    ),
    # bitsandbytes/optim/lars.py: LARS runs the "momentum" kernel with a trust ratio (L2 in
    # a non-adaptive step); PytorchLARS does the same in Python (``d_p.add(p, alpha=wd)``).
    *_family(
        "lars",
        tuple(f"LARS{bits}" for bits in _BITS),
        DecayKind.L2,
        None,
        ("lr", "momentum", "dampening", "weight_decay", "nesterov"),
    ),
    *_family("lars", ("PytorchLARS",), DecayKind.L2, 1e-2, ("lr", "momentum", "dampening", "weight_decay", "nesterov")),
)
