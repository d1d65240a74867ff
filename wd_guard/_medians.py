"""Row medians of the optimizer-state samples: gathered into one buffer, selected in one call."""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor

from wd_guard._norms import SAMPLE_SIZE, Piece, dense_flat, sample_index


class SampleGather:
    """Copies the fixed sample of each row's state tensor into row ``i`` of one ``[rows, 1024]`` buffer.

    Built when the state tensors change identity (first steps, a restored checkpoint); the
    flat views and index tensors are reused as long as the optimizer updates them in place.
    Each row is one ``index_select`` on the device the state lives on.
    """

    def __init__(self, tensors: List[Optional[Tensor]], pieces: List[Piece], device: torch.device) -> None:
        self.tensors = tensors
        self.buffer = torch.full((len(tensors), SAMPLE_SIZE), float("nan"), device=device)
        self.rows: List[Tuple[Tensor, Optional[Tensor], Optional[Tensor], Tensor]] = []
        counts = []
        for row, (tensor, piece) in enumerate(zip(tensors, pieces)):
            if tensor is None:  # no state yet: the row stays NaN and yields no value
                counts.append(0)
                continue
            local = piece.local(tensor)
            index = sample_index(local)
            counts.append(local.numel() if index is None else index.numel())
            # A contiguous state's flat view stays live; other layouts are flattened on every run.
            flat = local.view(-1) if local.is_contiguous() else None
            self.rows.append((local, flat, index, self.buffer[row, : counts[-1]]))
        self.fill = _padding(counts, device)
        self.keep = torch.isnan(self.fill)
        # Rows are full or empty unless some tensor has fewer elements than a sample.
        self.padded = any(0 < count < SAMPLE_SIZE for count in counts)

    def run(self) -> Tensor:
        """The buffer, refreshed from the live state."""
        for local, flat, index, out in self.rows:
            flat = dense_flat(local) if flat is None else flat
            if index is None:
                out.copy_(flat)
            elif flat.dtype == out.dtype and flat.device == out.device:
                torch.index_select(flat, 0, index, out=out)
            else:
                out.copy_(flat.index_select(0, index))
        return self.buffer

    def medians(self, x: Tensor) -> Tensor:
        """The lower median of each row of ``x`` (laid out as the buffer), NaN for rows without state.

        A row with fewer values than a sample is padded with as many ``-inf`` as ``+inf`` (one
        more ``+inf`` for an odd count), so its lower median sits where ``torch.median``
        looks; NaN is kept out of the rows, where torch's CPU selection is 30 times slower.
        """
        padded = torch.where(self.keep, x, self.fill.to(x.dtype)) if self.padded else x
        return torch.median(padded, dim=1).values


def _padding(counts: List[int], device: torch.device) -> Tensor:
    """NaN where values go (and in rows without state), ``-inf`` and ``+inf`` in the padding."""
    fill = torch.full((len(counts), SAMPLE_SIZE), float("nan"))
    for row, count in enumerate(counts):
        if 0 < count < SAMPLE_SIZE:
            low = (SAMPLE_SIZE - count) // 2
            fill[row, count : count + low] = -float("inf")
            fill[row, count + low :] = float("inf")
    return fill.to(device)
