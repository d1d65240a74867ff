"""What each parameter of a model is, read from the module tree and parameter identity.

A parameter's role comes from the module that owns it (a normalisation layer, an embedding
table), from its attribute name on that module (``bias``), or from names the model declares
no-decay through ``no_weight_decay()`` / ``no_weight_decay_keywords()`` (the timm
convention, honoured on any submodule). Shapes are never used to decide a role, except to
tell the 1-D scale and shift of a custom ``*Norm`` class from other tensors it may hold, so
sharded (1-D slice or DTensor) parameters classify like the originals.

Names are the qualified names of ``model.named_parameters()`` with the segments that
wrappers insert removed (``_orig_mod`` of ``torch.compile``, ``_fsdp_wrapped_module`` of
FSDP, ``_checkpoint_wrapped_module``, and the ``module`` of DDP / DataParallel), so they
match the model as written. A parameter registered under several names (tied weights) is
one entry, named by its first name, with the others kept as aliases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import torch
from torch import nn

__all__ = ["ParamInfo", "Role", "classify", "matches_any"]


class Role(str, Enum):
    """Why a parameter should (or should not) be decayed; each parameter has exactly one."""

    NORM = "norm"  # scale or shift of a normalisation layer (WD202)
    EMBEDDING = "embedding"  # embedding table (WD203)
    BIAS = "bias"  # additive bias of any other layer (WD201)
    DECLARED = "declared"  # named by the model's no_weight_decay() (WD203)
    WEIGHT = "weight"  # everything else: decayed in the usual recipes
    UNMAPPED = "unmapped"  # cannot be traced to one module (FSDP flat parameter)


NO_DECAY_ROLES = frozenset({Role.NORM, Role.EMBEDDING, Role.BIAS, Role.DECLARED})

# Attribute names through which a wrapper holds the module it wraps; never part of a name.
_WRAPPER_SEGMENTS = frozenset({"_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module"})
_NORM_TYPES: Tuple[type, ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm*, their Lazy forms
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
_EMBEDDING_TYPES: Tuple[type, ...] = (nn.Embedding, nn.EmbeddingBag)


@dataclass
class ParamInfo:
    """One distinct parameter of a model: its name, role and owning module."""

    name: str
    param: torch.Tensor
    role: Role
    module_type: str
    aliases: List[str] = field(default_factory=list)

    @property
    def trainable(self) -> bool:
        """Whether the parameter receives gradients (``requires_grad``)."""
        return bool(self.param.requires_grad)


def classify(model: nn.Module) -> Dict[int, ParamInfo]:
    """Every distinct parameter of ``model``, keyed by ``id(parameter)``, in registration order."""
    declared_names, declared_keywords = _declared_no_decay(model)
    infos: Dict[int, ParamInfo] = {}
    for prefix, module in _walk(model):
        for local, param in module._parameters.items():
            if param is None:
                continue
            name = f"{prefix}{local}"
            info = infos.get(id(param))
            role = _role(module, local, param, name, declared_names, declared_keywords)
            if info is None:
                infos[id(param)] = ParamInfo(name, param, role, type(module).__name__)
            else:
                info.aliases.append(name)
                info.role = _stronger(info.role, role)
    return infos


def matches_any(name: str, patterns: Iterable[str]) -> bool:
    """Whether ``name`` is one of ``patterns`` or lies under one of them (a prefix or module name)."""
    return any(name == p or name.startswith(p + ".") for p in patterns)


def _walk(module: nn.Module, prefix: str = "", seen: Optional[Set[int]] = None) -> Iterator[Tuple[str, nn.Module]]:
    """Modules of the tree with the clean dotted prefix of their parameters (shared modules once)."""
    seen = set() if seen is None else seen
    if id(module) in seen:
        return
    seen.add(id(module))
    yield prefix, module
    for child_name, child in module._modules.items():
        if child is None:
            continue
        hidden = child_name in _WRAPPER_SEGMENTS or (child_name == "module" and _is_data_parallel(module))
        yield from _walk(child, prefix if hidden else f"{prefix}{child_name}.", seen)


def _is_data_parallel(module: nn.Module) -> bool:
    return isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel))


def _role(
    module: nn.Module,
    local: str,
    param: torch.Tensor,
    name: str,
    declared_names: Sequence[str],
    declared_keywords: Sequence[Tuple[str, str]],
) -> Role:
    if _is_flat_parameter(param):
        return Role.UNMAPPED
    if _is_norm(module, param):
        return Role.NORM
    if isinstance(module, _EMBEDDING_TYPES):
        return Role.EMBEDDING
    if local == "bias" or local.endswith("_bias") or local.startswith("bias_"):
        return Role.BIAS
    if matches_any(name, declared_names) or _has_keyword(name, declared_keywords):
        return Role.DECLARED
    return Role.WEIGHT


def _has_keyword(name: str, keywords: Sequence[Tuple[str, str]]) -> bool:
    """Keywords match anywhere in a name below the module that declared them."""
    return any(name.startswith(prefix) and word in name[len(prefix):] for prefix, word in keywords)


def _is_norm(module: nn.Module, param: torch.Tensor) -> bool:
    if isinstance(module, _NORM_TYPES):
        return True
    if not type(module).__name__.endswith("Norm"):
        return False
    ndim = _logical_ndim(param)
    return ndim is None or ndim <= 1


def _logical_ndim(param: torch.Tensor) -> Optional[int]:
    """The parameter's number of dimensions (a DTensor reports its global shape), None if unknown."""
    try:
        return int(param.dim())
    except (RuntimeError, ValueError):  # uninitialised lazy parameter
        return None


def _is_flat_parameter(param: torch.Tensor) -> bool:
    """FSDP (use_orig_params=False) flattens many parameters of mixed roles into one tensor.

    torch marks such tensors with ``_is_flat_param`` (what ``isinstance(t, FlatParameter)`` reads).
    """
    return bool(getattr(param, "_is_flat_param", False)) or type(param).__name__ == "FlatParameter"


# A tied parameter owned by an embedding and by a Linear head is still an embedding table.
_PRIORITY = (Role.UNMAPPED, Role.NORM, Role.EMBEDDING, Role.BIAS, Role.DECLARED, Role.WEIGHT)


def _stronger(a: Role, b: Role) -> Role:
    return a if _PRIORITY.index(a) <= _PRIORITY.index(b) else b


def _declared_no_decay(model: nn.Module) -> Tuple[List[str], List[Tuple[str, str]]]:
    """Names (made relative to ``model``) and scoped keywords declared no-decay by any module."""
    names: List[str] = []
    keywords: List[Tuple[str, str]] = []
    for prefix, module in _walk(model):
        names.extend(prefix + n for n in _call_declaration(module, "no_weight_decay"))
        keywords.extend((prefix, k) for k in _call_declaration(module, "no_weight_decay_keywords"))
    return names, keywords


def _call_declaration(module: nn.Module, method: str) -> List[str]:
    func = getattr(type(module), method, None)
    if not callable(func):
        return []
    try:
        declared = getattr(module, method)()
    except Exception as exc:
        raise RuntimeError(f"{type(module).__name__}.{method}() failed: {exc!r}") from exc
    if isinstance(declared, str):
        return [declared]
    return [str(n) for n in (declared or ()) if n]
