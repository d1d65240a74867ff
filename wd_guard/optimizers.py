"""What wd-guard knows about optimizers: plain data, read by the runtime audit, the stats and the linter.

An optimizer is known by its qualified class name. For each one the table says how its
``weight_decay`` acts (coupled L2 through an adaptive step, decoupled shrinkage, or plain L2
as in SGD), which flag switches coupled decay to decoupled, the defaults that matter, and
the order of its positional arguments (so the linter can read ``Adam(params, 1e-3, (0.9,
0.999), 1e-8, 1e-2)``). An optimizer that is not in the table is *unknown*: wd-guard says so
and never guesses how it decays.

The torch entries are written here and checked against the installed torch; third-party
entries come from ``_facts_third_party`` (transformers, timm, apex, DeepSpeed, lion-pytorch,
schedulefree), ``_facts_bnb`` (bitsandbytes) and ``_facts_torch_optimizer`` (torch-optimizer),
each read from the package's own source, which they cite. The shapes of the facts are in
``_facts``.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from wd_guard import _facts_bnb, _facts_third_party, _facts_torch_optimizer
from wd_guard._facts import SCALED, DecayKind, FactoryFact, FactoryOption, OptimizerFact, coupled as _coupled

__all__ = [
    "SCALED",
    "DecayKind",
    "FactoryFact",
    "FactoryOption",
    "OptimizerFact",
    "OPTIMIZERS",
    "TIMM_OPT_NAMES",
    "FACTORIES",
    "factory",
    "lookup",
    "known_names",
    "fact_for_class",
    "group_kind",
]

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
    # Third-party optimizers, each read from its package's source (cited in these modules).
    *_facts_third_party.OPTIMIZERS,
    *_facts_bnb.OPTIMIZERS,
    *_facts_torch_optimizer.OPTIMIZERS,
)


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
    "fusedsgd": FactoryOption("apex.optimizers.FusedSGD", {"nesterov": True}),
    "fusedadam": FactoryOption("apex.optimizers.FusedAdam", {"adam_w_mode": False}),
    "fusedadamw": FactoryOption("apex.optimizers.FusedAdam", {"adam_w_mode": True}),
    "fusedlamb": FactoryOption("apex.optimizers.FusedLAMB", {}),
    "fusednovograd": FactoryOption("apex.optimizers.FusedNovoGrad", {"betas": (0.95, 0.98)}),
    # ``_register_bnb_optimizers``: the ``8bit`` names of Adam and AdamW build the plain
    # classes there, as written here.
    "bnbsgd": FactoryOption("bitsandbytes.optim.SGD", {"nesterov": True}),
    "bnbsgd8bit": FactoryOption("bitsandbytes.optim.SGD8bit", {"nesterov": True}),
    "bnbadam": FactoryOption("bitsandbytes.optim.Adam", {}),
    "bnbadam8bit": FactoryOption("bitsandbytes.optim.Adam", {}),
    "bnbadamw": FactoryOption("bitsandbytes.optim.AdamW", {}),
    "bnbadamw8bit": FactoryOption("bitsandbytes.optim.AdamW", {}),
    "bnblion": FactoryOption("bitsandbytes.optim.Lion", {}),
    "bnblion8bit": FactoryOption("bitsandbytes.optim.Lion8bit", {}),
    "bnbademamix": FactoryOption("bitsandbytes.optim.AdEMAMix", {}),
    "bnbademamix8bit": FactoryOption("bitsandbytes.optim.AdEMAMix8bit", {}),
}


# timm/optim/_optim_factory.py: ``create_optimizer_v2(model_or_params, opt='sgd', lr=None,
# weight_decay=0., momentum=0.9, foreach=None, filter_bias_and_bn=True, ...)``;
# ``layer_decay`` and ``param_group_fn`` build their own groups. The legacy
# ``create_optimizer(args, model, filter_bias_and_bn=True)`` calls it with
# ``optimizer_kwargs(cfg=args)``: ``args.opt``, ``args.lr``, ``args.weight_decay`` and
# ``args.momentum``, plus ``args.layer_decay`` and ``args.opt_args`` (merged into the
# keywords) when those are not None.
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
    FactoryFact(
        name="timm.optim.create_optimizer",
        positional=("args", "model", "filter_bias_and_bn"),
        opt_names=TIMM_OPT_NAMES,
        default_opt=None,
        default_weight_decay=0.0,
        split_flag="filter_bias_and_bn",
        split_default=True,
        custom_groups=("layer_decay",),
        aliases=("timm.optim._optim_factory.create_optimizer", "timm.optim.optim_factory.create_optimizer"),
        model="model",
        namespace="args",
        namespace_options=("opt", "lr", "weight_decay", "momentum"),
        namespace_kwargs=("opt_args",),
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
    """How decay acts in one param group of a real optimizer (flags read from the group
    first, then from the optimizer)."""
    if fact is None:
        return DecayKind.UNKNOWN
    flag = fact.decoupled_flag
    attribute = fact.flag_attribute or flag
    if flag is not None and flag not in group and hasattr(optimizer, attribute):  # type: ignore[arg-type]
        group = {**group, flag: getattr(optimizer, attribute)}  # type: ignore[arg-type]
    return fact.kind_for(group)
