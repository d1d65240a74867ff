"""Third-party optimizers (transformers, timm, apex, DeepSpeed, lion-pytorch, schedulefree):
how each applies ``weight_decay``, read from the package's own source, cited beside each entry.
"""

from __future__ import annotations

from typing import Tuple

from wd_guard._facts import DecayKind, OptimizerFact

OPTIMIZERS: Tuple[OptimizerFact, ...] = (
    OptimizerFact(
        name="transformers.optimization.Adafactor",
        decay=DecayKind.DECOUPLED,
        adaptive=True,
        mechanics="decoupled",
        aliases=("transformers.Adafactor",),
    ),
    OptimizerFact(
        name="timm.optim.adamw.AdamW",
        decay=DecayKind.DECOUPLED,
        default_weight_decay=0.01,
        default_lr=1e-3,
        adaptive=True,
        mechanics="decoupled",
        aliases=("timm.optim.AdamW",),
    ),
    OptimizerFact(name="timm.optim.adamp.AdamP", decay=DecayKind.DECOUPLED, adaptive=True, mechanics="decoupled", aliases=("timm.optim.AdamP",)),
    OptimizerFact(name="timm.optim.lion.Lion", decay=DecayKind.DECOUPLED, default_lr=1e-4, mechanics="decoupled", aliases=("timm.optim.Lion",)),
    OptimizerFact(
        name="timm.optim.adabelief.AdaBelief",
        decay=DecayKind.COUPLED_ADAPTIVE,
        default_lr=1e-3,
        decoupled_flag="decoupled_decay",
        decoupled_by_default=True,
        adaptive=True,
        mechanics="decoupled",
        aliases=("timm.optim.AdaBelief",),
    ),
    # NVIDIA/apex apex/optimizers/fused_adam.py: ``adam_w_mode=True`` by default, kept on the
    # optimizer (``self.adam_w_mode``), not in the groups; False makes decay coupled L2.
    OptimizerFact(
        name="apex.optimizers.fused_adam.FusedAdam",
        decay=DecayKind.COUPLED_ADAPTIVE,
        default_lr=1e-3,
        decoupled_flag="adam_w_mode",
        decoupled_by_default=True,
        adaptive=True,
        mechanics="decoupled",
        aliases=("apex.optimizers.FusedAdam",),
    ),
    # deepspeedai/DeepSpeed deepspeed/ops/adam/fused_adam.py (adapted from apex):
    # ``FusedAdam(params, lr=1e-3, bias_correction=True, betas, eps, adam_w_mode=True,
    # weight_decay=0., ...)``, the flag kept as ``self.adam_w_mode``.
    OptimizerFact(
        name="deepspeed.ops.adam.fused_adam.FusedAdam",
        decay=DecayKind.COUPLED_ADAPTIVE,
        default_lr=1e-3,
        decoupled_flag="adam_w_mode",
        decoupled_by_default=True,
        positional=("lr", "bias_correction", "betas", "eps", "adam_w_mode", "weight_decay", "amsgrad", "set_grad_none"),
        adaptive=True,
        mechanics="decoupled",
        aliases=("deepspeed.ops.adam.FusedAdam",),
    ),
    # lucidrains/lion-pytorch lion_pytorch/lion_pytorch.py: ``p.data.mul_(1. - lr * wd)``
    # before the sign update; ``lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0``.
    OptimizerFact(
        name="lion_pytorch.lion_pytorch.Lion",
        decay=DecayKind.DECOUPLED,
        default_lr=1e-4,
        positional=("lr", "betas", "weight_decay"),
        mechanics="decoupled",
        aliases=("lion_pytorch.Lion",),
    ),
    # facebookresearch/schedule_free schedulefree/adamw_schedulefree.py and
    # radam_schedulefree.py add ``decay * y`` to the gradient after it is divided by the
    # adaptive denominator (decoupled); sgd_schedulefree.py adds it to the raw gradient of a
    # non-adaptive step (L2, the same as SGD's). ``weight_decay=0`` in all three.
    OptimizerFact(
        name="schedulefree.adamw_schedulefree.AdamWScheduleFree",
        decay=DecayKind.DECOUPLED,
        default_lr=0.0025,
        positional=("lr", "betas", "eps", "weight_decay"),
        adaptive=True,
        aliases=("schedulefree.AdamWScheduleFree",),
    ),
    OptimizerFact(
        name="schedulefree.radam_schedulefree.RAdamScheduleFree",
        decay=DecayKind.DECOUPLED,
        default_lr=0.0025,
        positional=("lr", "betas", "eps", "weight_decay"),
        adaptive=True,
        aliases=("schedulefree.RAdamScheduleFree",),
    ),
    OptimizerFact(
        name="schedulefree.sgd_schedulefree.SGDScheduleFree",
        decay=DecayKind.L2,
        default_lr=1.0,
        positional=("lr", "momentum", "weight_decay"),
        aliases=("schedulefree.SGDScheduleFree",),
    ),
)
