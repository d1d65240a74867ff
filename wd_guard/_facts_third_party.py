"""Third-party optimizers (transformers, timm, apex, DeepSpeed, lion-pytorch, schedulefree):
how each applies ``weight_decay``, read from the package's own source, cited beside each entry.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Tuple

from wd_guard._facts import SCALED, DecayKind, OptimizerFact

# NVIDIA/apex apex/optimizers/fused_adam.py: ``adam_w_mode=True`` by default, kept on the
# optimizer (``self.adam_w_mode``), not in the groups; False makes decay coupled L2.
_APEX_FUSED_ADAM = OptimizerFact(
    name="apex.optimizers.fused_adam.FusedAdam",
    decay=DecayKind.COUPLED_ADAPTIVE,
    default_lr=1e-3,
    decoupled_flag="adam_w_mode",
    decoupled_by_default=True,
    positional=("lr", "bias_correction", "betas", "eps", "adam_w_mode", "weight_decay", "amsgrad", "set_grad_none"),
    adaptive=True,
    mechanics="decoupled",
    aliases=("apex.optimizers.FusedAdam",),
)

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
    _APEX_FUSED_ADAM,
    # apex/optimizers/fused_adagrad.py: ``adagrad_w_mode=False`` by default, kept on the
    # optimizer; csrc/multi_tensor_adagrad.cu adds ``weight_decay * p`` to the gradient in
    # mode 0 (L2) and to the update after the denominator in mode 1 (decoupled).
    OptimizerFact(
        name="apex.optimizers.fused_adagrad.FusedAdagrad",
        decay=DecayKind.COUPLED_ADAPTIVE,
        default_lr=1e-2,
        decoupled_flag="adagrad_w_mode",
        positional=("lr", "eps", "weight_decay", "set_grad_none", "adagrad_w_mode"),
        adaptive=True,
        aliases=("apex.optimizers.FusedAdagrad",),
    ),
    # apex/optimizers/fused_lamb.py and fused_mixed_precision_lamb.py: ``weight_decay=0.01``,
    # ``adam_w_mode=True`` kept on the optimizer; csrc/multi_tensor_lamb.cu (and _mp.cu) adds
    # the decay to the gradient in mode 0 (coupled) and to the update after the denominator
    # in mode 1, which the trust ratio then scales.
    *(
        OptimizerFact(
            name=f"apex.optimizers.{module}.{cls}",
            decay=DecayKind.COUPLED_ADAPTIVE,
            default_weight_decay=0.01,
            default_lr=1e-3,
            decoupled_flag="adam_w_mode",
            decoupled_by_default=True,
            positional=positional,
            adaptive=True,
            mechanics=SCALED,
            aliases=(f"apex.optimizers.{cls}",),
        )
        for module, cls, positional in (
            ("fused_lamb", "FusedLAMB", ("lr", "bias_correction", "betas", "eps", "weight_decay", "amsgrad", "adam_w_mode")),
            ("fused_mixed_precision_lamb", "FusedMixedPrecisionLamb", ("lr", "step", "bias_correction", "betas", "eps", "weight_decay", "amsgrad", "adam_w_mode")),
        )
    ),
    # apex/optimizers/fused_novograd.py: ``reg_inside_moment=False``; csrc/multi_tensor_novograd.cu
    # adds the decay after the per-layer denominator either way, to the update (the default)
    # or into the momentum (``reg_inside_moment=True``), so the rate is not always lr * wd.
    OptimizerFact(
        name="apex.optimizers.fused_novograd.FusedNovoGrad",
        decay=DecayKind.DECOUPLED,
        default_lr=1e-3,
        positional=("lr", "bias_correction", "betas", "eps", "weight_decay", "amsgrad", "reg_inside_moment"),
        adaptive=True,
        mechanics=SCALED,
        aliases=("apex.optimizers.FusedNovoGrad",),
    ),
    # apex/optimizers/fused_sgd.py: ``lr`` required, ``momentum=0, dampening=0,
    # weight_decay=0, nesterov``; the decay joins the gradient before or after the momentum
    # (``wd_after_momentum``) of a non-adaptive step: L2 either way.
    OptimizerFact(
        name="apex.optimizers.fused_sgd.FusedSGD",
        decay=DecayKind.L2,
        positional=("lr", "momentum", "dampening", "weight_decay", "nesterov", "wd_after_momentum"),
        aliases=("apex.optimizers.FusedSGD",),
    ),
    # deepspeedai/DeepSpeed deepspeed/ops/adam/fused_adam.py (adapted from apex):
    # ``FusedAdam(params, lr=1e-3, bias_correction=True, betas, eps, adam_w_mode=True,
    # weight_decay=0., ...)``, the flag kept as ``self.adam_w_mode``: apex's facts, another name.
    replace(_APEX_FUSED_ADAM, name="deepspeed.ops.adam.fused_adam.FusedAdam", aliases=("deepspeed.ops.adam.FusedAdam",)),
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
