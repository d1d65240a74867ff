"""Batched norms, fixed samples of optimizer state, and the reductions that make them global under sharding.

Everything here works on *pieces*: the part of a logical parameter (and of its optimizer
state) that this process holds. A plain or DDP parameter is one whole piece; an FSDP2
parameter is the local shard of a DTensor; an FSDP1 parameter is a slice of a flat
parameter. A piece may come with process groups across which its squared norm is summed
and its samples gathered, so every rank ends with the statistic of the whole parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

try:  # DTensor moved out of torch.distributed._tensor in torch 2.4.
    from torch.distributed.tensor import DTensor
except ImportError:  # pragma: no cover - old torch or a build without distributed
    try:
        from torch.distributed._tensor import DTensor
    except ImportError:
        DTensor = None  # type: ignore[assignment,misc]

#: Elements sampled per tensor for the median of the optimizer state (see ``sample_index``).
SAMPLE_SIZE = 1024

Groups = Tuple[object, ...]  # process groups a piece is reduced over, in a fixed order


@dataclass(frozen=True)
class Piece:
    """Where the local part of one logical parameter lives in a same-shaped tensor.

    ``kind`` is ``'whole'`` (the tensor itself), ``'dtensor'`` (its local shard) or
    ``'slice'`` (``tensor.view(-1)[start:stop]``, for FSDP1 flat parameters).
    """

    kind: str = "whole"
    start: int = 0
    stop: int = 0
    groups: Groups = ()

    def local(self, tensor: Tensor) -> Tensor:
        """The local part of ``tensor`` (the parameter or one of its optimizer states)."""
        if self.kind == "whole":
            return tensor
        if self.kind == "dtensor":
            return tensor.to_local()
        return tensor.view(-1)[self.start : self.stop]


def is_dtensor(tensor: object) -> bool:
    """Whether ``tensor`` is a DTensor (FSDP2, tensor parallel)."""
    return DTensor is not None and isinstance(tensor, DTensor)


def dtensor_piece(param: Tensor) -> Optional[Piece]:
    """The piece for a DTensor parameter, or None when its placements cannot be reduced.

    Squared norms add up over the mesh dimensions the tensor is sharded on and are equal
    over replicated ones; a partial (pending-sum) placement has no per-shard norm.
    """
    groups = []
    for dim, placement in enumerate(param.placements):
        if placement.is_shard():
            groups.append(param.device_mesh.get_group(dim))
        elif not placement.is_replicate():
            return None
    return Piece(kind="dtensor", groups=tuple(groups))


def result_dtype(device: torch.device) -> torch.dtype:
    """float64 for the per-parameter results, except on MPS, which has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def squared_norms(tensors: Sequence[Tensor], device: torch.device) -> Tensor:
    """Squared 2-norms of ``tensors`` as one vector on ``device`` (float64 where it exists).

    Tensors on an accelerator go through ``torch._foreach_norm``, one fused kernel per
    (device, dtype) bucket. On the CPU each tensor takes one norm per row (per slice along
    its first dimension) and the row norms are combined in float64: torch's CPU norm keeps
    one float32 running sum per vector lane over the whole tensor, 6.5e-4 off on 16M
    elements, where sums over rows stay short (3e-10 off) at the same speed. Low-precision
    tensors are accumulated in float32.
    """
    buckets: Dict[Tuple[torch.device, torch.dtype], List[int]] = {}
    for index, tensor in enumerate(tensors):
        buckets.setdefault((tensor.device, tensor.dtype), []).append(index)
    if len(buckets) == 1:
        return _bucket_squares(tensors).to(device=device, dtype=result_dtype(device))
    out = torch.empty(len(tensors), dtype=result_dtype(device), device=device)
    for indices in buckets.values():
        squares = _bucket_squares([tensors[i] for i in indices])
        out[indices] = squares.to(device=device, dtype=out.dtype)
    return out


def _bucket_squares(tensors: Sequence[Tensor]) -> Tensor:
    """Squared norms of tensors that share one device and one dtype."""
    first = tensors[0]
    wide = first.dtype if first.dtype in (torch.float32, torch.float64) else torch.float32
    if first.device.type != "cpu":
        norms = torch._foreach_norm(list(tensors), 2, dtype=None if wide == first.dtype else wide)
        return torch.stack(norms).to(result_dtype(first.device)).square_()
    rows = [torch.linalg.vector_norm(t, 2, dim=tuple(range(1, t.dim())) if t.dim() > 1 else None, dtype=wide) for t in tensors]
    return torch.stack(torch._foreach_norm(rows, 2, dtype=torch.float64)).square_()


def all_reduce_rows(values: Tensor, rows: Dict[Groups, Tensor], op: str = "sum") -> None:
    """Reduce ``values[rows[groups]]`` (``op``: ``'sum'`` or ``'max'``) over ``groups``, in place.

    Every rank calls this with the same ``rows`` in the same order (the plans are built
    identically), so the collectives match up.
    """
    import torch.distributed as dist

    reduce_op = dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM
    for groups, index in rows.items():
        part = values.index_select(0, index)
        for group in groups:
            dist.all_reduce(part, op=reduce_op, group=group)
        values.index_copy_(0, index, part)


def gather_columns(samples: Tensor, groups: Groups) -> Tensor:
    """Concatenate the ``[rows, S]`` sample matrices of every rank in ``groups`` along dim 1."""
    import torch.distributed as dist

    for group in groups:
        parts = [torch.empty_like(samples) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, samples.contiguous(), group=group)
        samples = torch.cat(parts, dim=1)
    return samples


def dense_flat(tensor: Tensor) -> Tensor:
    """A 1-D view of every element of ``tensor`` in memory order, without copying.

    Works for contiguous and channels-last (any dense, non-overlapping) layouts; other
    layouts are copied.
    """
    if tensor.is_contiguous():
        return tensor.view(-1)
    if _is_dense(tensor):
        return tensor.as_strided((tensor.numel(),), (1,), tensor.storage_offset())
    return tensor.reshape(-1)


def _is_dense(tensor: Tensor) -> bool:
    """Whether ``tensor`` covers a contiguous block of memory in some dimension order."""
    expected = 1
    for size, stride in sorted(zip(tensor.shape, tensor.stride()), key=lambda pair: pair[1]):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


def _row_length(tensor: Tensor) -> int:
    """Elements per outermost slice in memory order (a matrix row, a conv filter)."""
    if tensor.dim() < 2:
        return 1
    outer = max(range(tensor.dim()), key=lambda d: (tensor.stride(d), tensor.shape[d]))
    return max(1, tensor.numel() // max(1, tensor.shape[outer]))


_GOLDEN = (math.sqrt(5) - 1) / 2


@lru_cache(maxsize=4096)
def _lattice(rows: int, cols: int, size: int, device: torch.device) -> Tensor:
    """Flat positions of a rank-1 lattice: ``size`` points, rows stratified, columns by golden steps.

    Point ``k`` sits in row ``(k + 1/2) * rows / size`` and column ``frac((k + 1) * phi) * cols``,
    so every band of rows is sampled in proportion and the columns it meets are spread as
    evenly as a sequence can spread them (a Weyl sequence), whatever the period of the
    structure along a row (attention heads, q/k/v blocks, conv filter positions).
    """
    k = torch.arange(size, dtype=torch.float64)
    row = ((2 * k + 1) * rows / (2 * size)).floor()
    col = ((k + 1) * _GOLDEN % 1 * cols).floor()
    return (row * cols + col).to(device=device, dtype=torch.long)


def sample_index(tensor: Tensor, size: int = SAMPLE_SIZE) -> Optional[Tensor]:
    """Positions in ``dense_flat(tensor)`` of the fixed sample, or None when all elements fit."""
    numel = tensor.numel()
    if numel <= size:
        return None
    cols = _row_length(tensor)
    return _lattice(numel // cols, cols, size, tensor.device)


def sample(tensor: Tensor, size: int = SAMPLE_SIZE) -> Tensor:
    """The fixed sample of ``tensor``: every element if it has at most ``size``, else ``size`` of them."""
    index = sample_index(tensor, size)
    flat = dense_flat(tensor)
    return flat if index is None else flat.index_select(0, index)
