"""What each parameter of a model is, read from the module tree and parameter identity.

A parameter's role comes, in this order, from the module that owns it (a normalisation layer,
an embedding table), from its attribute name on that module (``bias``, ``cls_token``,
``pos_embed``), from what the model declares no-decay (``no_weight_decay()`` /
``no_weight_decay_keywords()`` on any module, a parameter's ``_no_weight_decay`` attribute),
and last from its shape: a 0-d or 1-D parameter that is none of the above is a gain (LayerScale
``gamma``, CLIP's ``logit_scale``, Mamba's ``D``), which timm, nanoGPT and Megatron all leave
undecayed, and so is a vector shaped for broadcasting (``(C, 1, 1)``, torchvision ConvNeXt's
``layer_scale``) held by a module that is not one of torch's own layers.
``docs/parameter-roles.md`` says which convention each choice follows.

The shape is the logical one: a DTensor (FSDP2) reports its global shape, and the original
shape is read back for FSDP1's ``use_orig_params`` views and DeepSpeed ZeRO-3 placeholders,
so sharded parameters classify like the originals. A lazy parameter that is not initialised
yet has no shape and is never called a gain.

Names are the qualified names of ``model.named_parameters()`` with the segments that
wrappers insert removed (``_orig_mod`` of ``torch.compile``, ``_fsdp_wrapped_module`` of
FSDP, ``_checkpoint_wrapped_module``, and the ``module`` of DDP / DataParallel), so they
match the model as written. A parameter registered under several names (tied weights) is
one entry, named by its first name, with the others kept as aliases.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from enum import Enum
from fnmatch import fnmatchcase
from typing import Dict, Iterable, Iterator, List, Optional, Set, Tuple

import torch
from torch import nn

__all__ = ["Declaration", "NO_DECAY_ROLES", "ParamInfo", "Role", "classify", "matches_any"]


class Role(str, Enum):
    """Why a parameter should (or should not) be decayed; each parameter has exactly one."""

    NORM = "norm"  # scale or shift of a normalisation layer (WD202)
    EMBEDDING = "embedding"  # embedding table (WD203)
    BIAS = "bias"  # additive bias of any other layer (WD201)
    DECLARED = "declared"  # declared no-decay by the model (WD203)
    TOKEN = "token"  # class token or position table held as a bare nn.Parameter (WD203)
    GAIN = "gain"  # any other 0-d or 1-D parameter: LayerScale, logit_scale, skip gains (WD202)
    WEIGHT = "weight"  # everything else: decayed in the usual recipes
    UNMAPPED = "unmapped"  # cannot be traced to one module (FSDP flat parameter)


NO_DECAY_ROLES = frozenset({Role.NORM, Role.EMBEDDING, Role.BIAS, Role.DECLARED, Role.TOKEN, Role.GAIN})

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
# "Norm" as a word of a class name: LayerNorm2d, RMSNormGated, EvoNorm2dB0; not Normal.
_NORM_CLASS = re.compile(r"Norm(?![a-z])")
# Attribute names of tokens and position tables: cls_token, register_tokens, pos_embed,
# position_embeddings, positional_embedding, relative_position_bias_table, rel_pos_h,
# and CLIP's class_embedding.
_TOKEN_NAME = re.compile(r"(^|_)(tokens?|pos|position|positional)(_|$)|^(cls|class)_emb(ed|eds|edding|eddings)?$")


@dataclass(frozen=True)
class Declaration:
    """A no-decay declaration: a pattern, where it applies and who made it."""

    prefix: str  # clean prefix of the declaring module ("" for the model itself)
    pattern: str
    source: str  # "VisionTransformer.no_weight_decay()", "XCA.no_weight_decay() of blocks.0.attn"
    keyword: bool = False  # a no_weight_decay_keywords() entry: matches anywhere in the name

    def matches(self, name: str) -> bool:
        """Whether the parameter ``name`` (relative to the model) falls under this declaration."""
        if not name.startswith(self.prefix):
            return False
        local = name[len(self.prefix):]
        if self.keyword:
            return self.pattern in local
        return matches_any(local, (self.pattern,)) or fnmatchcase(local, self.pattern)


@dataclass
class ParamInfo:
    """One distinct parameter of a model: its name, role and owning module."""

    name: str
    param: torch.Tensor
    role: Role
    module_type: str
    aliases: List[str] = field(default_factory=list)
    declared_by: str = ""  # who declared it no-decay, for Role.DECLARED

    @property
    def trainable(self) -> bool:
        """Whether the parameter receives gradients (``requires_grad``)."""
        return bool(self.param.requires_grad)


def classify(model: nn.Module, notes: Optional[List[str]] = None) -> Dict[int, ParamInfo]:
    """Every distinct parameter of ``model``, keyed by ``id(parameter)``, in registration order.

    A ``no_weight_decay()`` / ``no_weight_decay_keywords()`` that raises is an error naming
    the class, unless ``notes`` is given: then the failure is appended to it as a sentence and
    that module's declarations are left out.
    """
    declarations = _declarations(model, notes)
    shapes = _original_shapes(model)
    infos: Dict[int, ParamInfo] = {}
    for prefix, module in _walk(model):
        for local, param in module._parameters.items():
            if param is None:
                continue
            name = f"{prefix}{local}"
            role, source = _role(module, local, param, name, declarations, shapes)
            info = infos.get(id(param))
            if info is None:
                infos[id(param)] = ParamInfo(name, param, role, type(module).__name__, declared_by=source)
            else:
                info.aliases.append(name)
                if _stronger(role, info.role):
                    info.role, info.declared_by = role, source
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
    declarations: List[Declaration],
    shapes: Dict[int, Tuple[int, ...]],
) -> Tuple[Role, str]:
    """The parameter's role, and for a declared one who declared it."""
    if _is_flat_parameter(param):
        return Role.UNMAPPED, ""
    shape = shapes.get(id(param)) or _logical_shape(param)
    if isinstance(module, _NORM_TYPES) or (_NORM_CLASS.search(type(module).__name__) and (shape is None or _per_channel(shape))):
        return Role.NORM, ""
    if isinstance(module, _EMBEDDING_TYPES):
        return Role.EMBEDDING, ""
    if local == "bias" or local.endswith("_bias") or local.startswith("bias_"):
        return Role.BIAS, ""
    if getattr(param, "_no_weight_decay", False) is True:
        return Role.DECLARED, "its _no_weight_decay attribute"
    source = next((d.source for d in declarations if d.matches(name)), None)
    if source is not None:
        return Role.DECLARED, source
    if _TOKEN_NAME.search(local.lower()):
        return Role.TOKEN, ""
    if shape is not None and (len(shape) <= 1 or (_per_channel(shape) and not _is_torch_layer(module))):
        return Role.GAIN, ""
    return Role.WEIGHT, ""


def _per_channel(shape: Tuple[int, ...]) -> bool:
    """At most one dimension larger than 1: a scalar or a vector, perhaps shaped for broadcasting."""
    return sum(1 for size in shape if size != 1) <= 1


def _is_torch_layer(module: nn.Module) -> bool:
    """torch's own layers, whose (1, n) weight (``nn.Linear(n, 1)``) is a matrix, not a gain."""
    return type(module).__module__.startswith("torch.")


def _logical_shape(param: torch.Tensor) -> Optional[Tuple[int, ...]]:
    """The parameter's shape (a DTensor reports its global shape), None if unknown."""
    ds_shape = getattr(param, "ds_shape", None)  # DeepSpeed ZeRO-3 keeps an empty placeholder
    if ds_shape is not None:
        return tuple(int(size) for size in ds_shape)
    try:
        return tuple(int(size) for size in param.shape)
    except (RuntimeError, ValueError):  # uninitialised lazy parameter
        return None


def _original_shapes(model: nn.Module) -> Dict[int, Tuple[int, ...]]:
    """Original shapes of FSDP1 ``use_orig_params`` views, which are 1-D slices.

    FSDP is looked for only when the process has imported it: a model cannot hold FSDP
    modules otherwise, and importing it is slow.
    """
    fsdp = sys.modules.get("torch.distributed.fsdp")
    wrapper = getattr(fsdp, "FullyShardedDataParallel", None)
    if wrapper is None:
        return {}
    found: Dict[int, Tuple[int, ...]] = {}
    for module in model.modules():
        handle = getattr(module, "_handle", None) if isinstance(module, wrapper) else None
        flat = getattr(handle, "flat_param", None)
        params, shapes = getattr(flat, "_params", None), getattr(flat, "_shapes", None)
        if params and shapes and len(params) == len(shapes):
            found.update((id(p), tuple(int(n) for n in s)) for p, s in zip(params, shapes))
    return found


def _is_flat_parameter(param: torch.Tensor) -> bool:
    """FSDP (use_orig_params=False) flattens many parameters of mixed roles into one tensor.

    torch marks such tensors with ``_is_flat_param`` (what ``isinstance(t, FlatParameter)`` reads).
    """
    return bool(getattr(param, "_is_flat_param", False)) or type(param).__name__ == "FlatParameter"


# A tied parameter owned by an embedding and by a Linear head is still an embedding table.
_PRIORITY = (Role.UNMAPPED, Role.NORM, Role.EMBEDDING, Role.BIAS, Role.DECLARED, Role.TOKEN, Role.GAIN, Role.WEIGHT)


def _stronger(a: Role, b: Role) -> bool:
    """Whether role ``a`` wins over role ``b`` for a parameter registered under several names."""
    return _PRIORITY.index(a) < _PRIORITY.index(b)


def _declarations(model: nn.Module, notes: Optional[List[str]]) -> List[Declaration]:
    """Every no-decay declaration of every module, with names made relative to ``model``."""
    found: List[Declaration] = []
    for prefix, module in _walk(model):
        for method, keyword in (("no_weight_decay", False), ("no_weight_decay_keywords", True)):
            source = f"{type(module).__name__}.{method}()" + (f" of {prefix[:-1]}" if prefix else "")
            try:
                declared = _call_declaration(module, method)
            except Exception as exc:
                if notes is None:
                    raise RuntimeError(f"{source} failed: {exc!r}") from exc
                notes.append(f"wd-guard: {source} raised {exc!r}; the names it declares are not known and not honoured")
                continue
            found.extend(Declaration(prefix, pattern, source, keyword) for pattern in declared)
    return found


def _call_declaration(module: nn.Module, method: str) -> List[str]:
    func = getattr(type(module), method, None)
    if not callable(func):
        return []
    declared = getattr(module, method)()
    if isinstance(declared, str):
        return [declared]
    return [str(n) for n in (declared or ()) if n]
