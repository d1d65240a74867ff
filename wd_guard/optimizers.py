"""What wd-guard knows about optimizers: plain data, read by the runtime audit, the stats and the linter.

An optimizer is known by its qualified class name. For each one the table says how its
``weight_decay`` acts (coupled L2 through an adaptive step, decoupled shrinkage, or plain L2
as in SGD), which flag switches coupled decay to decoupled, the defaults that matter, and
the order of its positional arguments (so the linter can read ``Adam(params, 1e-3, (0.9,
0.999), 1e-8, 1e-2)``). An optimizer that is not in the table is *unknown*: wd-guard says so
and never guesses how it decays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple


class DecayKind(str, Enum):
    """How an optimizer group's ``weight_decay`` acts on the weights."""

    COUPLED_ADAPTIVE = "coupled-adaptive"  # L2 gradient divided by sqrt(v): WD101
    DECOUPLED = "decoupled"  # theta *= 1 - lr * wd, outside the update (AdamW)
    L2 = "l2"  # L2 gradient with a non-adaptive step: equal to decay (SGD)
    NONE = "none"  # the optimizer has no weight decay
    UNKNOWN = "unknown"  # not in the table: never guessed


@dataclass(frozen=True)
class OptimizerFact:
    """How one optimizer class treats weight decay.

    ``decoupled_flag`` names the option that switches coupled decay to decoupled; it is read
    from each param group first and from the optimizer's attributes second (apex keeps it
    there). ``positional`` lists the constructor's positional arguments after ``params``.
    ``mechanics`` names the update rule the stats use to compute effective decay.
    """

    name: str
    decay: DecayKind
    default_weight_decay: float = 0.0
    default_lr: Optional[float] = None
    decoupled_flag: Optional[str] = None
    decoupled_by_default: bool = False
    positional: Tuple[str, ...] = ()
    adaptive: bool = False
    mechanics: Optional[str] = None
    aliases: Tuple[str, ...] = ()

    @property
    def short_name(self) -> str:
        """The class name without its module."""
        return self.name.rsplit(".", 1)[-1]

    def kind_for(self, options: Mapping[str, Any]) -> DecayKind:
        """How decay acts for a group (or a call's keyword arguments) with these ``options``."""
        if self.decoupled_flag is None:
            return self.decay
        decoupled = options.get(self.decoupled_flag, self.decoupled_by_default)
        return DecayKind.DECOUPLED if decoupled else DecayKind.COUPLED_ADAPTIVE

    def can_decouple(self) -> bool:
        """Whether a flag turns this optimizer's coupled decay into decoupled decay."""
        return self.decoupled_flag is not None


def _coupled(name: str, lr: float, positional: Tuple[str, ...], mechanics: str, **extra: Any) -> OptimizerFact:
    return OptimizerFact(
        name=name,
        decay=DecayKind.COUPLED_ADAPTIVE,
        default_lr=lr,
        positional=positional,
        adaptive=True,
        mechanics=mechanics,
        **extra,
    )


_ADAM_POSITIONAL = ("lr", "betas", "eps", "weight_decay", "amsgrad")
_TORCH_DECOUPLE = {"decoupled_flag": "decoupled_weight_decay"}

OPTIMIZERS: Tuple[OptimizerFact, ...] = (
    # torch.optim: adaptive optimizers whose weight_decay is coupled L2 unless a flag decouples it.
    _coupled("torch.optim.Adam", 1e-3, _ADAM_POSITIONAL, "adam", aliases=("torch.optim.adam.Adam",), **_TORCH_DECOUPLE),
    _coupled(
        "torch.optim.NAdam",
        2e-3,
        ("lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay"),
        "nadam",
        aliases=("torch.optim.nadam.NAdam",),
        **_TORCH_DECOUPLE,
    ),
    _coupled(
        "torch.optim.RAdam",
        1e-3,
        ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay"),
        "radam",
        aliases=("torch.optim.radam.RAdam",),
        **_TORCH_DECOUPLE,
    ),
    _coupled("torch.optim.Adamax", 2e-3, ("lr", "betas", "eps", "weight_decay", "foreach"), "adamax", aliases=("torch.optim.adamax.Adamax",)),
    _coupled(
        "torch.optim.RMSprop",
        1e-2,
        ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "capturable", "foreach", "maximize", "differentiable"),
        "rmsprop",
        aliases=("torch.optim.rmsprop.RMSprop",),
    ),
    _coupled(
        "torch.optim.Adagrad",
        1e-2,
        ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "foreach"),
        "adagrad",
        aliases=("torch.optim.adagrad.Adagrad",),
    ),
    _coupled("torch.optim.Adadelta", 1.0, ("lr", "rho", "eps", "weight_decay", "foreach"), "adadelta", aliases=("torch.optim.adadelta.Adadelta",)),
    # torch.optim: decoupled decay.
    OptimizerFact(
        name="torch.optim.AdamW",
        decay=DecayKind.DECOUPLED,
        default_weight_decay=0.01,
        default_lr=1e-3,
        positional=_ADAM_POSITIONAL,
        adaptive=True,
        mechanics="decoupled",
        aliases=("torch.optim.adamw.AdamW",),
    ),
    OptimizerFact(
        name="torch.optim.Adafactor",
        decay=DecayKind.DECOUPLED,
        default_lr=1e-2,
        positional=("lr", "beta2_decay", "eps", "d", "weight_decay"),
        adaptive=True,
        mechanics="decoupled",
        aliases=("torch.optim._adafactor.Adafactor",),
    ),
    OptimizerFact(
        name="torch.optim.Muon",
        decay=DecayKind.DECOUPLED,
        default_weight_decay=0.1,
        default_lr=1e-3,
        positional=("lr", "weight_decay", "momentum", "nesterov", "ns_coefficients", "eps", "ns_steps", "adjust_lr_fn"),
        mechanics="decoupled",
        aliases=("torch.optim._muon.Muon",),
    ),
    # torch.optim: plain L2 with a non-adaptive step, which equals weight decay.
    OptimizerFact(
        name="torch.optim.SGD",
        decay=DecayKind.L2,
        default_lr=1e-3,
        positional=("lr", "momentum", "dampening", "weight_decay", "nesterov"),
        mechanics="sgd",
        aliases=("torch.optim.sgd.SGD",),
    ),
    OptimizerFact(
        name="torch.optim.ASGD",
        decay=DecayKind.L2,
        default_lr=1e-2,
        positional=("lr", "lambd", "alpha", "t0", "weight_decay", "foreach", "maximize", "differentiable", "capturable"),
        mechanics="sgd",
        aliases=("torch.optim.asgd.ASGD",),
    ),
    # torch.optim: no weight decay at all.
    OptimizerFact(name="torch.optim.Rprop", decay=DecayKind.NONE, default_lr=1e-2, positional=("lr", "etas", "step_sizes"), aliases=("torch.optim.rprop.Rprop",)),
    OptimizerFact(name="torch.optim.LBFGS", decay=DecayKind.NONE, default_lr=1.0, positional=("lr",), aliases=("torch.optim.lbfgs.LBFGS",)),
    OptimizerFact(
        name="torch.optim.SparseAdam",
        decay=DecayKind.NONE,
        default_lr=1e-3,
        positional=("lr", "betas", "eps", "maximize"),
        adaptive=True,
        aliases=("torch.optim.sparse_adam.SparseAdam",),
    ),
    # Third-party optimizers whose decay is documented and read from their source.
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
    # bitsandbytes-foundation/bitsandbytes bitsandbytes/optim/adamw.py (weight_decay=1e-2) and
    # adam.py (weight_decay=0): both run the "adam" kernels of csrc/kernels.cu, which shrink
    # the weight by ``1 - lr * weight_decay`` after the adaptive step (decoupled decay).
    *(
        OptimizerFact(
            name=f"bitsandbytes.optim.adamw.{cls}",
            decay=DecayKind.DECOUPLED,
            default_weight_decay=0.01,
            default_lr=1e-3,
            adaptive=True,
            mechanics="decoupled",
            aliases=(f"bitsandbytes.optim.{cls}",),
        )
        for cls in ("AdamW", "AdamW8bit", "AdamW32bit", "PagedAdamW", "PagedAdamW8bit", "PagedAdamW32bit")
    ),
    *(
        OptimizerFact(
            name=f"bitsandbytes.optim.adam.{cls}",
            decay=DecayKind.DECOUPLED,
            default_lr=1e-3,
            positional=("lr", "betas", "eps", "weight_decay"),
            adaptive=True,
            mechanics="decoupled",
            aliases=(f"bitsandbytes.optim.{cls}",),
        )
        for cls in ("Adam", "Adam8bit", "Adam32bit", "PagedAdam", "PagedAdam8bit", "PagedAdam32bit")
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


@dataclass(frozen=True)
class FactoryOption:
    """What one ``opt=`` name of a factory builds: the class and the options it adds."""

    cls: str
    options: Mapping[str, Any]


# huggingface/pytorch-image-models timm/optim/_optim_factory.py: the ``opt=`` names of
# ``create_optimizer_v2`` whose class is in the table above, with the defaults the registry
# adds (``OptimInfo(..., defaults=...)``). The factory lower-cases the name and keeps what
# follows the last ``_`` (``lookahead_adam`` is ``adam``).
TIMM_OPT_NAMES: Mapping[str, FactoryOption] = {
    "sgd": FactoryOption("torch.optim.SGD", {"nesterov": True}),
    "momentum": FactoryOption("torch.optim.SGD", {"nesterov": False}),
    "adam": FactoryOption("torch.optim.Adam", {}),
    "adamw": FactoryOption("torch.optim.AdamW", {}),
    "nadam": FactoryOption("torch.optim.NAdam", {}),
    "radam": FactoryOption("torch.optim.RAdam", {}),
    "radamw": FactoryOption("torch.optim.RAdam", {"decoupled_weight_decay": True}),
    "adamax": FactoryOption("torch.optim.Adamax", {}),
    "adadelta": FactoryOption("torch.optim.Adadelta", {}),
    "adagrad": FactoryOption("torch.optim.Adagrad", {"eps": 1e-8}),
    "rmsprop": FactoryOption("torch.optim.RMSprop", {"alpha": 0.9}),
    "adamp": FactoryOption("timm.optim.adamp.AdamP", {"wd_ratio": 0.01, "nesterov": True}),
    "lion": FactoryOption("timm.optim.lion.Lion", {}),
    "adabelief": FactoryOption("timm.optim.adabelief.AdaBelief", {"rectify": False}),
    "radabelief": FactoryOption("timm.optim.adabelief.AdaBelief", {"rectify": True}),
    "fusedadam": FactoryOption("apex.optimizers.FusedAdam", {"adam_w_mode": False}),
    "fusedadamw": FactoryOption("apex.optimizers.FusedAdam", {"adam_w_mode": True}),
    "bnbadam": FactoryOption("bitsandbytes.optim.Adam", {}),
    "bnbadamw": FactoryOption("bitsandbytes.optim.AdamW", {}),
}


@dataclass(frozen=True)
class FactoryFact:
    """An optimizer factory: where its options sit and what it does with the parameters.

    ``split_flag`` names the option that puts biases and norms (every 1-d parameter) in a
    group without decay when a module is passed; ``split_default`` is its default.
    """

    name: str
    positional: Tuple[str, ...]
    opt_names: Mapping[str, FactoryOption]
    default_opt: str
    default_weight_decay: float
    split_flag: str
    split_default: bool
    custom_groups: Tuple[str, ...] = ()  # options that replace the factory's own grouping
    aliases: Tuple[str, ...] = ()


# timm/optim/_optim_factory.py: ``create_optimizer_v2(model_or_params, opt='sgd', lr=None,
# weight_decay=0., momentum=0.9, foreach=None, filter_bias_and_bn=True, ...)``;
# ``layer_decay`` and ``param_group_fn`` build their own groups.
FACTORIES: Tuple[FactoryFact, ...] = (
    FactoryFact(
        name="timm.optim.create_optimizer_v2",
        positional=("model_or_params", "opt", "lr", "weight_decay", "momentum", "foreach", "filter_bias_and_bn"),
        opt_names=TIMM_OPT_NAMES,
        default_opt="sgd",
        default_weight_decay=0.0,
        split_flag="filter_bias_and_bn",
        split_default=True,
        custom_groups=("layer_decay", "param_group_fn"),
        aliases=(
            "timm.optim._optim_factory.create_optimizer_v2",
            "timm.optim.optim_factory.create_optimizer_v2",
            "timm.create_optimizer_v2",
        ),
    ),
)

_FACTORIES: Dict[str, FactoryFact] = {name: fact for fact in FACTORIES for name in (fact.name, *fact.aliases)}


def factory(qualified_name: str) -> Optional[FactoryFact]:
    """The factory a qualified function name refers to, or None."""
    return _FACTORIES.get(qualified_name)


_BY_NAME: Dict[str, OptimizerFact] = {
    name: fact for fact in OPTIMIZERS for name in (fact.name, *fact.aliases)
}


def lookup(qualified_name: str) -> Optional[OptimizerFact]:
    """The fact for a qualified class name (``'torch.optim.Adam'``), or None when unknown."""
    return _BY_NAME.get(qualified_name)


def known_names() -> Iterable[str]:
    """Every qualified name (aliases included) the table knows."""
    return _BY_NAME.keys()


def fact_for_class(cls: type) -> Optional[OptimizerFact]:
    """The fact for an optimizer class, or None when wd-guard does not know its mechanics.

    The class's MRO is walked to the nearest class in the table. A subclass counts as that
    optimizer when it keeps its ``step`` (``class MyAdam(torch.optim.Adam): pass``, or one that
    only changes ``__init__``); a class that defines its own ``step`` may apply decay in any
    way, so it is unknown. The profiling wrapper that torch puts on a subclass's ``step`` the
    first time one is instantiated is not an override.
    """
    for klass in cls.__mro__:
        fact = lookup(f"{klass.__module__}.{klass.__qualname__}")
        if fact is not None:
            return fact if _update_rule(cls) is _update_rule(klass) else None
    return None


def _update_rule(cls: type) -> Any:
    """The class's ``step`` without torch's profiling wrapper (marked ``hooked`` by torch)."""
    step = getattr(cls, "step", None)
    while _is_profiling_wrapper(step):
        step = step.__wrapped__
    return step


def _is_profiling_wrapper(step: Any) -> bool:
    """Whether ``step`` is the wrapper torch's ``Optimizer`` puts on a class's ``step``.

    The ``hooked`` mark alone is not enough: ``functools.wraps`` copies it, with the rest of
    the wrapped function's attributes, onto a user's own wrapper of an already hooked
    ``step``, which may change the update. torch's wrapper is also defined in torch's
    ``optim/optimizer.py``; ``functools.wraps`` does not copy a function's code.
    """
    if not (getattr(step, "hooked", False) and hasattr(step, "__wrapped__")):
        return False
    code = getattr(step, "__code__", None)
    return code is not None and os.path.normpath(code.co_filename).split(os.sep)[-3:] == ["torch", "optim", "optimizer.py"]


def group_kind(fact: Optional[OptimizerFact], group: Mapping[str, Any], optimizer: object = None) -> DecayKind:
    """How decay acts in one param group of a real optimizer (flags read from the group)."""
    if fact is None:
        return DecayKind.UNKNOWN
    flag = fact.decoupled_flag
    if flag is not None and flag not in group and hasattr(optimizer, flag):
        group = {**group, flag: getattr(optimizer, flag)}
    return fact.kind_for(group)
