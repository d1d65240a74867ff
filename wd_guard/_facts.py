"""The shapes of wd-guard's optimizer facts: how a class applies decay, and how a factory
builds one. The tables themselves are in :mod:`wd_guard.optimizers` (torch and the index of
every name) and the modules it gathers third-party facts from.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping, Optional, Tuple


class DecayKind(str, Enum):
    """How an optimizer group's ``weight_decay`` acts on the weights."""

    COUPLED_ADAPTIVE = "coupled-adaptive"  # L2 gradient divided by sqrt(v): WD101
    DECOUPLED = "decoupled"  # theta *= 1 - lr * wd, outside the update (AdamW)
    L2 = "l2"  # L2 gradient with a non-adaptive step: equal to decay (SGD)
    NONE = "none"  # the optimizer has no weight decay
    UNKNOWN = "unknown"  # not in the table: never guessed


#: ``mechanics`` of an optimizer whose decay stays out of the adaptive denominator but whose
#: step scales it further (a per-tensor trust ratio, a momentum buffer the decay goes
#: through): its decay per step is not ``lr * wd``, and wd-guard does not compute it.
SCALED = "scaled"


@dataclass(frozen=True)
class OptimizerFact:
    """How one optimizer class treats weight decay.

    ``decoupled_flag`` names the option that switches coupled decay to decoupled; it is read
    from each param group first and from the optimizer's attributes second (apex keeps it
    there), under ``flag_attribute`` when the optimizer stores it under another name
    (torch-optimizer's AdaBelief keeps ``weight_decouple`` as ``_weight_decouple``).
    ``positional`` lists the constructor's positional arguments after ``params``.
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
    flag_attribute: Optional[str] = None

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


def coupled(name: str, lr: Optional[float], positional: Tuple[str, ...], mechanics: Optional[str] = None, **extra: Any) -> OptimizerFact:
    """An adaptive optimizer whose ``weight_decay`` is L2 added to the gradient."""
    return OptimizerFact(
        name=name,
        decay=DecayKind.COUPLED_ADAPTIVE,
        default_lr=lr,
        positional=positional,
        adaptive=True,
        mechanics=mechanics,
        **extra,
    )


@dataclass(frozen=True)
class FactoryOption:
    """What one ``opt=`` name of a factory builds: the class and the options it adds."""

    cls: str
    options: Mapping[str, Any]


@dataclass(frozen=True)
class FactoryFact:
    """An optimizer factory: where its options sit and what it does with the parameters.

    ``split_flag`` names the option that puts biases and norms (every 1-d parameter) in a
    group without decay when a module is passed; ``split_default`` is its default. ``model``
    is the argument that holds the module or the parameters. A factory that reads its options
    off an object (timm's legacy ``create_optimizer(args, model)`` reads ``args.opt``,
    ``args.weight_decay``, ...) names that argument in ``namespace``, the attributes it reads
    as options of the same name in ``namespace_options``, and the attributes that, when set,
    may pass any option in ``namespace_kwargs``; its ``custom_groups`` are attributes too.
    """

    name: str
    positional: Tuple[str, ...]
    opt_names: Mapping[str, FactoryOption]
    default_opt: Optional[str]
    default_weight_decay: float
    split_flag: str
    split_default: bool
    custom_groups: Tuple[str, ...] = ()  # options that replace the factory's own grouping
    aliases: Tuple[str, ...] = ()
    model: str = "model_or_params"
    namespace: Optional[str] = None
    namespace_options: Tuple[str, ...] = ()
    namespace_kwargs: Tuple[str, ...] = ()
