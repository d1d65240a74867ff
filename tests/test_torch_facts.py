"""The optimizer table checked against the installed torch: defaults, flags and argument order."""

from __future__ import annotations

import functools
import inspect

import pytest

torch = pytest.importorskip("torch")

from wd_guard import optimizers  # noqa: E402
from wd_guard.optimizers import DecayKind  # noqa: E402

TORCH_FACTS = [f for f in optimizers.OPTIMIZERS if f.name.startswith("torch.optim.") and hasattr(torch.optim, f.short_name)]


def _ctor_parameters(cls):
    return list(inspect.signature(cls.__init__).parameters.values())[2:]


@pytest.mark.parametrize("fact", TORCH_FACTS, ids=lambda f: f.short_name)
def test_positional_order_matches_torch(fact):
    cls = getattr(torch.optim, fact.short_name)
    positional = [p.name for p in _ctor_parameters(cls) if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert tuple(positional[: len(fact.positional)]) == fact.positional


@pytest.mark.parametrize("fact", TORCH_FACTS, ids=lambda f: f.short_name)
def test_defaults_match_torch(fact):
    cls = getattr(torch.optim, fact.short_name)
    defaults = {p.name: p.default for p in _ctor_parameters(cls)}
    assert defaults.get("weight_decay", 0.0) == fact.default_weight_decay
    assert defaults["lr"] == fact.default_lr
    if fact.decoupled_flag:
        assert fact.decoupled_flag in defaults


@pytest.mark.parametrize("fact", TORCH_FACTS, ids=lambda f: f.short_name)
def test_real_class_resolves_to_its_fact(fact):
    cls = getattr(torch.optim, fact.short_name)
    assert optimizers.fact_for_class(cls) is fact


def test_every_torch_optimizer_is_known():
    classes = [
        getattr(torch.optim, name)
        for name in dir(torch.optim)
        if isinstance(getattr(torch.optim, name), type)
        and issubclass(getattr(torch.optim, name), torch.optim.Optimizer)
        and getattr(torch.optim, name) is not torch.optim.Optimizer
    ]
    assert [cls.__name__ for cls in classes if optimizers.fact_for_class(cls) is None] == []


def test_flag_is_read_from_real_param_groups():
    model = torch.nn.Linear(2, 2)
    adamw = torch.optim.AdamW(model.parameters())
    fact = optimizers.fact_for_class(type(adamw))
    assert optimizers.group_kind(fact, adamw.param_groups[0], adamw) is DecayKind.DECOUPLED
    adam = torch.optim.Adam(model.parameters(), weight_decay=0.1, decoupled_weight_decay=True)
    fact = optimizers.fact_for_class(type(adam))
    assert optimizers.group_kind(fact, adam.param_groups[0], adam) is DecayKind.DECOUPLED
    adam.param_groups[0]["decoupled_weight_decay"] = False
    assert optimizers.group_kind(fact, adam.param_groups[0], adam) is DecayKind.COUPLED_ADAPTIVE


def test_subclass_that_rewrites_step_is_unknown():
    class Mine(torch.optim.Adam):
        def step(self, closure=None):
            return super().step(closure)

    class Same(torch.optim.Adam):
        pass

    assert optimizers.fact_for_class(Mine) is None
    assert optimizers.fact_for_class(Same).name == "torch.optim.Adam"
    # torch wraps step on a subclass the first time one is built: that is not an override.
    model = torch.nn.Linear(2, 2)
    Mine(model.parameters())
    Same(model.parameters())
    assert optimizers.fact_for_class(Mine) is None
    assert optimizers.fact_for_class(Same).name == "torch.optim.Adam"


def test_a_step_wrapped_with_functools_wraps_is_a_rewrite():
    # A wrapper that keeps the parent's name and docs (functools.wraps sets ``__wrapped__``)
    # may still change the update before or after it calls the parent: only torch's own
    # profiling wrapper (marked ``hooked``) is looked through. Once an Adam exists, Adam's
    # step is that wrapper, and functools.wraps copies its ``hooked`` mark too.
    torch.optim.Adam(torch.nn.Linear(2, 2).parameters())
    assert torch.optim.Adam.step.hooked

    def clipped(step):
        @functools.wraps(step)
        def wrapper(self, closure=None):
            for group in self.param_groups:
                torch.nn.utils.clip_grad_norm_(group["params"], 1.0)
            return step(self, closure)

        return wrapper

    class Clipped(torch.optim.Adam):
        step = clipped(torch.optim.Adam.step)

    assert Clipped.step.__wrapped__ is torch.optim.Adam.step and Clipped.step.hooked
    assert optimizers.fact_for_class(Clipped) is None
    Clipped(torch.nn.Linear(2, 2).parameters())
    assert getattr(Clipped.step, "hooked", False)
    assert optimizers.fact_for_class(Clipped) is None


@pytest.mark.parametrize("fact", TORCH_FACTS, ids=lambda f: f.short_name)
def test_an_instantiated_subclass_of_every_torch_optimizer_keeps_its_fact(fact):
    base = getattr(torch.optim, fact.short_name)
    subclass = type(f"My{base.__name__}", (base,), {})
    params = [torch.nn.Parameter(torch.zeros(2, 2))]
    subclass(params, **({"lr": 0.1} if base is torch.optim.SGD else {}))
    assert optimizers.fact_for_class(subclass) is fact


def test_which_optimizers_a_flag_can_decouple():
    assert optimizers.lookup("torch.optim.Adam").can_decouple()
    assert optimizers.lookup("timm.optim.AdaBelief").can_decouple()
    assert not optimizers.lookup("torch.optim.AdamW").can_decouple()
    assert not optimizers.lookup("torch.optim.RMSprop").can_decouple()


def test_known_names_hold_every_name_and_alias():
    names = set(optimizers.known_names())
    assert {"torch.optim.Adam", "torch.optim.adam.Adam", "timm.optim.AdaBelief", "timm.optim.adabelief.AdaBelief"} <= names
    assert all(optimizers.lookup(name) is not None for name in names)
    assert "torch.optim.Optimizer" not in names
