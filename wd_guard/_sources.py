"""Which tensors hold each named parameter: plain, DDP, FSDP2 (DTensor) and FSDP1 (flat) models.

The result is a list of :class:`Source`: a clean qualified name (wrapper prefixes removed),
the tensor object the optimizer holds, and the :class:`~wd_guard._norms.Piece` of it this
process owns. Every rank builds the same list in the same order, empty pieces included, so
the collectives that sum the pieces match up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Set, Tuple

from torch import Tensor, nn

from wd_guard._norms import Piece, dtensor_piece, is_dtensor

# Prefixes that wrappers insert into parameter names: FSDP1, activation checkpointing,
# torch.compile.
_WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


@dataclass(frozen=True)
class Source:
    """One logical parameter: its name, the tensor the optimizer steps, and the local piece."""

    name: str
    tensor: Tensor
    piece: Piece
    numel: int


def clean_name(name: str) -> str:
    """``name`` without the prefixes that FSDP1, checkpoint wrappers and ``torch.compile`` add."""
    for prefix in _WRAPPER_PREFIXES:
        name = name.replace(prefix, "")
    return name


def collect_sources(model: nn.Module, optimized: Set[int]) -> Tuple[List[Source], List[str]]:
    """The sources of ``model``'s trainable parameters, and notes on what could not be mapped.

    A parameter counts when it requires grad or an optimizer holds it (``optimized`` holds
    their ids); frozen parameters do not change and are left out.
    """
    fsdp1 = _fsdp1_handles(model)
    sources: List[Source] = []
    notes: List[str] = []
    for name, param in model.named_parameters():
        if not (param.requires_grad or id(param) in optimized):
            continue
        handle = fsdp1.get(id(param))
        if hasattr(param, "ds_tensor"):
            # DeepSpeed ZeRO-3 keeps an empty placeholder here and the shard elsewhere: its
            # norm would read as 0, so the parameter is left out rather than misreported.
            notes.append(f"{clean_name(name)}: DeepSpeed ZeRO-3 partitioned parameter; not logged")
        elif handle is not None:
            sources.extend(_fsdp1_sources(name, param, handle, notes))
        elif is_dtensor(param):
            piece = dtensor_piece(param)
            if piece is None:
                notes.append(f"{clean_name(name)}: DTensor placements {param.placements} have no per-shard norm; not logged")
                continue
            sources.append(Source(clean_name(name), param, piece, param.numel()))
        else:
            sources.append(Source(clean_name(name), param, Piece(), param.numel()))
    return sources, notes


@dataclass(frozen=True)
class _Handle:
    flat_param: Tensor
    group: object
    prefix: str  # clean name of the FSDP module owning the flat parameter
    orig_params: bool


def _fsdp1_handles(model: nn.Module) -> Dict[int, _Handle]:
    """FSDP1 flat parameters (and their original parameters) by id, for wrapped models."""
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel
    except ImportError:  # pragma: no cover - torch built without distributed
        return {}
    found: Dict[int, _Handle] = {}
    for module_name, module in model.named_modules():
        handle = getattr(module, "_handle", None) if isinstance(module, FullyShardedDataParallel) else None
        if handle is None:
            continue
        flat = handle.flat_param
        use_orig = bool(getattr(handle, "_use_orig_params", False))
        info = _Handle(flat, module.process_group, clean_name(module_name), use_orig)
        found[id(flat)] = info
        for param in (getattr(flat, "_params", None) or []) if use_orig else []:
            found[id(param)] = info
    return found


def _fsdp1_sources(name: str, param: Tensor, handle: _Handle, notes: List[str]) -> Iterable[Source]:
    groups = (handle.group,)
    if handle.orig_params:
        # With use_orig_params the parameter is this rank's 1-D slice of the original.
        return [Source(clean_name(name), param, Piece(groups=groups), param.numel())]
    mapped = _flat_slices(handle)
    if mapped is None:
        notes.append(
            f"{clean_name(name)}: FSDP1 flat parameter without shard metadata; logging its total "
            "norm only (use_orig_params=True or FSDP2 give per-parameter series)"
        )
        return [Source(clean_name(name), param, Piece(kind="slice", start=0, stop=param.numel(), groups=groups), param.numel())]
    return [Source(n, param, Piece(kind="slice", start=a, stop=b, groups=groups), numel) for n, a, b, numel in mapped]


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _flat_slices(handle: _Handle) -> Optional[List[Tuple[str, int, int, int]]]:
    """(name, start, stop, numel) of every original parameter in this rank's flat shard.

    Reads FSDP1's shard metadata; parameters outside this rank's shard get an empty slice so
    that every rank still takes part in their reduction.
    """
    flat = handle.flat_param
    fqns = getattr(flat, "_fqns", None)
    infos = getattr(flat, "_shard_param_infos", None)
    numels = getattr(flat, "_numels", None)
    if fqns is None or infos is None or numels is None or len(fqns) != len(infos):
        return None
    out = []
    for fqn, info, numel in zip(fqns, infos, numels):
        start = info.offset_in_shard if info.in_shard else 0
        stop = start + info.numel_in_shard if info.in_shard else 0
        out.append((_join(handle.prefix, clean_name(fqn)), start, stop, int(numel)))
    return out
