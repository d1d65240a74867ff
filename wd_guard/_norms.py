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

import numpy
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

# CPU tensors up to this many elements take numpy's dot: a call costs about 2 us against
# torch's 4, and up to here one thread reads them as fast as torch's two (measured, warm and
# cold). Most tensors of a model are this small (biases, norms), and their count sets the cost.
_NUMPY_DOT_MAX = 16384

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


def squared_norms(tensors: Sequence[Tensor], device: torch.device) -> Tensor:
    """Squared 2-norms of ``tensors`` as one float64 vector on ``device``; one pass over the data.

    Float32 and float64 tensors on the CPU take a BLAS dot of the tensor with itself
    (``torch.dot``, or numpy's for small tensors, where the call costs more than the read): the
    BLAS dot runs on every torch thread and keeps partial sums in several lanes, where the CPU
    ``torch._foreach_norm`` loops over single-threaded norm kernels with one float32 running sum
    (measured on 40M elements: relative error 9e-5 against 6e-3). Every other tensor, and every
    tensor on an accelerator, goes through one ``torch._foreach_norm`` per (device, dtype)
    bucket: the fused multi-tensor kernel.
    """
    buckets: Dict[Tuple[torch.device, torch.dtype], List[int]] = {}
    for index, tensor in enumerate(tensors):
        buckets.setdefault((tensor.device, tensor.dtype), []).append(index)
    if len(buckets) == 1:
        return _bucket_squares(tensors, device)
    out = torch.empty(len(tensors), dtype=torch.float64, device=device)
    for indices in buckets.values():
        squares = _bucket_squares([tensors[i] for i in indices], device)
        out.index_copy_(0, torch.tensor(indices, device=device), squares)
    return out


def _bucket_squares(tensors: Sequence[Tensor], device: torch.device) -> Tensor:
    """Squared norms of tensors that share one device and one dtype."""
    if _takes_dot(tensors[0]):
        return _Dots([dense_flat(tensor) for tensor in tensors]).squares().to(device)
    squares = torch.stack(torch._foreach_norm(list(tensors), 2, dtype=torch.float32)).square_()
    return squares.to(device=device, dtype=torch.float64)


def host_view(tensor: Tensor) -> Optional[numpy.ndarray]:
    """A numpy view of ``tensor``'s memory, or None where numpy cannot read it as torch does.

    Only plain CPU tensors of a dtype numpy has qualify: a tensor subclass's storage need not
    hold its values, and a device tensor would need a transfer.
    """
    if type(tensor) is not Tensor or tensor.device.type != "cpu":
        return None
    try:
        return tensor.detach().numpy()
    except (TypeError, RuntimeError):  # bfloat16, conjugate or negative views
        return None


class _Dots:
    """1-D CPU tensors, each squared by the dot that does it fastest: numpy's while it is small.

    A numpy call costs a third to a half of a torch call, and a model's small tensors (biases,
    norms) outnumber its large ones; large tensors take ``torch.dot``, which reads them on
    every torch thread.
    """

    def __init__(self, flats: Sequence[Tensor]) -> None:
        views = [host_view(flat) if flat.numel() <= _NUMPY_DOT_MAX else None for flat in flats]
        small = [i for i, view in enumerate(views) if view is not None]
        large = [i for i, view in enumerate(views) if view is None]
        self.count = len(flats)
        self.small = [views[i] for i in small]
        self.small_at = numpy.asarray(small, dtype=numpy.intp)
        self.large = [flats[i] for i in large]
        self.large_at = torch.tensor(large, dtype=torch.long)

    def squares(self) -> Tensor:
        """The squared norms, as one float64 CPU tensor."""
        out = numpy.empty(self.count)
        out[self.small_at] = [numpy.dot(a, a) for a in self.small]
        squares = torch.from_numpy(out)
        if self.large:
            squares.index_copy_(0, self.large_at, torch.stack([torch.dot(f, f) for f in self.large]).to(torch.float64))
        return squares


class NormPass:
    """:func:`squared_norms` over the same tensors at every logging step, with the views kept.

    Making each CPU tensor's 1-D view for the dot costs a few microseconds, about 5% of a
    ResNet-50 logging step. The views are made again when a tensor's address or element count
    changes (a parameter moved, cast or re-assigned through ``.data``). A kept view holds its
    memory, so no other tensor can take that address while the view is kept.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._marks: List[Tuple[int, int]] = []
        self._dots: Optional[_Dots] = None

    def __call__(self, tensors: Sequence[Tensor]) -> Tensor:
        """Squared norms of ``tensors`` as one float64 vector on the pass's device."""
        if not tensors or not _takes_dot(tensors[0]):  # nothing to keep (and no addresses to read)
            return squared_norms(tensors, self.device)
        marks = [(tensor.data_ptr(), tensor.numel()) for tensor in tensors]
        if marks != self._marks:
            self._marks, self._dots = marks, _dot_views(tensors)
        if self._dots is None:
            return squared_norms(tensors, self.device)
        return self._dots.squares()


def _takes_dot(tensor: Tensor) -> bool:
    """Whether the norm of ``tensor`` comes from a BLAS dot (see :func:`squared_norms`)."""
    return tensor.device.type == "cpu" and tensor.dtype in (torch.float32, torch.float64)


def _dot_views(tensors: Sequence[Tensor]) -> Optional[_Dots]:
    """Flat views for the dot path, or None when some tensor takes another path (or a copy)."""
    if not all(_takes_dot(tensor) and is_dense(tensor) for tensor in tensors):
        return None
    return _Dots([dense_flat(tensor) for tensor in tensors])


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
    layouts are copied (see ``is_dense``).
    """
    if tensor.is_contiguous():
        return tensor.view(-1)
    if is_dense(tensor):
        return tensor.as_strided((tensor.numel(),), (1,), tensor.storage_offset())
    return tensor.reshape(-1)


def is_dense(tensor: Tensor) -> bool:
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
