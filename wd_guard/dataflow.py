"""Which weights feed straight into BatchNorm, found by one forward pass (the data behind WD204).

A weight is scale-invariant when the tensor its Linear or Conv layer produces is the very
tensor a BatchNorm layer consumes: the normalisation undoes any rescaling of the weight, so
decay only shrinks its norm and raises the layer's effective learning rate. Module
structure alone cannot tell (``forward`` may route tensors anywhere), so this module runs the
model once on an example input with hooks and compares tensor identity.

The pass leaves the model and the run as it found them: it runs only when the model has a
BatchNorm layer, under ``torch.no_grad()`` in eval mode (so BatchNorm running statistics are
not updated) and under ``torch.random.fork_rng`` (so a forward that draws random numbers does
not move the run's random streams: a seeded run gives the same weights with and without it),
restores every module's training flag and every parameter's ``.grad``, removes its hooks, and
runs ``torch.compile``d modules eagerly. Lazy modules (``nn.LazyLinear``) are initialised by
the pass, as the first training step would do; the callback waits until they are.
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from typing import Any, Callable, ContextManager, Dict, List, Set, Tuple

import torch
from torch import nn

__all__ = ["call_model", "has_batchnorm", "has_uninitialized_lazy", "scale_invariant_weights"]

_PRODUCERS: Tuple[type, ...] = (nn.Linear, nn.modules.conv._ConvNd)
_CONSUMERS: Tuple[type, ...] = (nn.modules.batchnorm._BatchNorm,)


def scale_invariant_weights(model: nn.Module, example_input: Any) -> Set[int]:
    """``id()`` of every Linear / Conv weight whose output goes straight into a BatchNorm.

    ``example_input`` is passed to the model as ``model(**x)`` for a dict, ``model(*x)`` for a
    tuple or list, and ``model(x)`` otherwise. A model without BatchNorm is not run at all.
    """
    if not has_batchnorm(model):
        return set()
    produced: Dict[int, Tuple["weakref.ref[torch.Tensor]", nn.Module]] = {}
    feeders: Set[int] = set()

    def on_output(module: nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            produced[id(output)] = (weakref.ref(output), module)

    def on_input(module: nn.Module, inputs: Any) -> None:
        tensor = inputs[0] if inputs else None
        entry = produced.get(id(tensor))
        # The weak reference tells a live producer output from a recycled id().
        if entry is not None and entry[0]() is tensor:
            weight = entry[1]._parameters.get("weight")
            if weight is not None:
                feeders.add(id(weight))

    with _restored(model), _hooks(model, on_output, on_input), torch.no_grad(), _eager(), _forked_rng(model):
        model.eval()
        call_model(model, example_input)
    return feeders


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` holds a BatchNorm layer, the only consumer WD204 looks for."""
    return any(isinstance(module, _CONSUMERS) for module in model.modules())


def has_uninitialized_lazy(model: nn.Module) -> bool:
    """Whether a lazy module of ``model`` (``nn.LazyLinear``) still waits for its first input."""
    return any(
        isinstance(module, nn.modules.lazy.LazyModuleMixin) and module.has_uninitialized_params()
        for module in model.modules()
    )


def call_model(model: Callable[..., Any], example_input: Any) -> Any:
    """Call ``model`` with ``example_input`` unpacked as documented in ``scale_invariant_weights``."""
    if isinstance(example_input, dict):
        return model(**example_input)
    if isinstance(example_input, (tuple, list)):
        return model(*example_input)
    return model(example_input)


@contextlib.contextmanager
def _hooks(model: nn.Module, on_output: Callable[..., None], on_input: Callable[..., None]) -> Any:
    handles: List[Any] = []
    try:
        for module in model.modules():
            if isinstance(module, _PRODUCERS):
                handles.append(module.register_forward_hook(on_output))
            if isinstance(module, _CONSUMERS):
                handles.append(module.register_forward_pre_hook(on_input))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def _restored(model: nn.Module) -> Any:
    modes = [(module, module.training) for module in model.modules()]
    grads = [(param, param.grad) for param in model.parameters()]
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training
        for param, grad in grads:
            param.grad = grad


def _forked_rng(model: nn.Module) -> ContextManager[Any]:
    """Save and restore the CPU random state and that of the accelerator the model lives on."""
    types = {p.device.type for p in model.parameters()} - {"cpu", "meta"}
    if len(types) != 1:  # CPU only, or several accelerator types (fork_rng takes one)
        return torch.random.fork_rng(devices=[])
    (device_type,) = types
    indices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == device_type})
    if "device_type" in inspect.signature(torch.random.fork_rng).parameters:
        return torch.random.fork_rng(devices=indices, device_type=device_type)
    return torch.random.fork_rng(devices=indices if device_type == "cuda" else [])  # torch < 2.3


def _eager() -> ContextManager[Any]:
    """Run compiled modules eagerly: hooks then see every layer and nothing is recompiled."""
    set_stance = getattr(torch.compiler, "set_stance", None)
    if set_stance is None:  # torch < 2.6
        return contextlib.nullcontext()
    return set_stance("force_eager")
