"""A precomputed plan that turns a model and its optimizers into flat ``{key: float}`` stats.

Built once (names, keys, optimizer mapping, index tensors); each :meth:`StatsPlan.compute`
then costs one batched norm pass over the weights, a fixed sample of the optimizer state
for coupled adaptive decay, a handful of small vector operations and a single
device-to-host transfer.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from wd_guard import _decay
from wd_guard._medians import SampleGather, lower_medians
from wd_guard._norms import Groups, NormPass, all_reduce_rows, gather_columns
from wd_guard._sources import collect_sources
from wd_guard.optimizers import fact_for_class


def unwrap_optimizer(optimizer: Any) -> Any:
    """The torch optimizer inside a wrapper such as Lightning's ``LightningOptimizer``."""
    inner = getattr(optimizer, "_optimizer", None)
    return inner if isinstance(inner, torch.optim.Optimizer) else optimizer


@dataclass(frozen=True)
class _Segments:
    """Series (or totals) as sums over parameters: ``member`` parameter indices, ``segment`` ids."""

    keys: Tuple[str, ...]
    member: Tensor
    segment: Tensor
    norm_keys: Tuple[str, ...]
    decay_keys: Tuple[str, ...]
    singletons: bool  # one parameter per segment: no sums needed


@dataclass
class _Rows:
    """The parameters of one decay family, with what :meth:`StatsPlan._family_rates` needs."""

    family: _decay.Family
    params: List[int]
    row_keys: List[Tuple[int, int]]  # (optimizer, group) of each row
    groups: List[Tuple[int, int]]  # distinct (optimizer, group) pairs
    row_group: List[int]  # position of each row's pair in ``groups``
    row_group_index: Tensor
    index: Tensor
    sharded: Dict[Groups, Tensor]
    local: Optional[Tensor]
    lookups: List[Tuple[Any, Tensor]]  # (optimizer, parameter) of each row; state is read live


class StatsPlan:
    """Weight norms and effective decay of ``model`` under ``optimizers``, computed in batch.

    Args:
        model: the module whose ``named_parameters()`` name the series.
        optimizers: the optimizers stepping it (their classes pick the decay formulas).
        per_module: one series per module (parameters owned directly by it) instead of per
            parameter; the module's norm is the norm of its parameters together, its
            effective decay their norm-weighted mean.
        include: fnmatch patterns; only series whose name matches one are kept.
        max_series: keep at most this many series, the largest by element count.
        totals: also compute per-optimizer-group totals and the overall total.
        prefix: prepended to every key.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizers: Sequence[Any],
        *,
        per_module: bool = False,
        include: Optional[Sequence[str]] = None,
        max_series: Optional[int] = None,
        totals: bool = False,
        prefix: str = "",
    ) -> None:
        self.optimizers = [unwrap_optimizer(o) for o in optimizers]
        self._facts = [fact_for_class(type(o)) for o in self.optimizers]
        optimized = {id(p) for o in self.optimizers for g in o.param_groups for p in g["params"]}
        self.sources, self.notes = collect_sources(model, optimized)
        # Whole parameters are their own local part: the list is built once, not per step.
        self._whole = [s.tensor for s in self.sources] if all(s.piece.kind == "whole" for s in self.sources) else None
        self.prefix = prefix
        self.device = self._result_device()
        self._norms = NormPass(self.device)
        self.dropped = 0
        self._series = self._build_series(per_module, include, max_series)
        self._totals = totals
        self._reduce = self._reduce_rows()
        self.collective = bool(self._reduce)
        self._layout_key: Optional[tuple] = None
        self._gathers: Dict[Tuple[str, str], SampleGather] = {}

    # ----------------------------------------------------------------- setup

    def _result_device(self) -> torch.device:
        for source in self.sources:
            return source.piece.local(source.tensor).device
        return torch.device("cpu")

    def _index(self, values: Sequence[int]) -> Tensor:
        return torch.tensor(list(values), dtype=torch.long, device=self.device)

    def _build_series(self, per_module: bool, include: Optional[Sequence[str]], max_series: Optional[int]) -> _Segments:
        members: Dict[str, List[int]] = {}
        for index, source in enumerate(self.sources):
            name = source.name.rpartition(".")[0] or source.name if per_module else source.name
            members.setdefault(name, []).append(index)
        names = [n for n in members if include is None or any(fnmatch.fnmatchcase(n, p) for p in include)]
        if max_series is not None and len(names) > max_series:
            size = {n: sum(self.sources[i].numel for i in members[n]) for n in names}
            kept = set(sorted(names, key=lambda n: -size[n])[:max_series])
            self.dropped = len(names) - len(kept)
            names = [n for n in names if n in kept]
        return self._segments(names, [members[n] for n in names])

    def _segments(self, names: Sequence[str], members: Sequence[Sequence[int]]) -> _Segments:
        flat = [i for group in members for i in group]
        segment = [s for s, group in enumerate(members) for _ in group]
        norm_keys = tuple(f"{self.prefix}weight_norm/{n}" for n in names)
        decay_keys = tuple(f"{self.prefix}effective_decay/{n}" for n in names)
        singletons = all(len(group) == 1 for group in members)
        return _Segments(tuple(names), self._index(flat), self._index(segment), norm_keys, decay_keys, singletons)

    def _group_totals(self) -> _Segments:
        names, members = [], []
        for i, opt in enumerate(self.optimizers):
            for j, group in enumerate(opt.param_groups):
                ids = {id(p) for p in group["params"]}
                owned = [k for k, s in enumerate(self.sources) if id(s.tensor) in ids]
                if owned:
                    names.append(f"group_{i}_{j}")
                    members.append(owned)
        names.append("total")
        members.append(list(range(len(self.sources))))
        taken = set(self._series.keys)
        return self._segments([_unique(n, taken) for n in names], members)

    def _reduce_rows(self) -> Dict[Groups, Tensor]:
        rows: Dict[Groups, List[int]] = {}
        for index, source in enumerate(self.sources):
            if source.piece.groups:
                rows.setdefault(source.piece.groups, []).append(index)
        return {groups: self._index(indices) for groups, indices in rows.items()}

    # ------------------------------------------------------- family layout

    def _layout(self) -> Tuple[Tensor, List[_Rows], Optional[_Segments]]:
        """Which family computes each parameter's effective decay; rebuilt when groups change."""
        families = [
            [(_decay.family_for(fact, g, opt), len(g["params"])) for g in opt.param_groups]
            for opt, fact in zip(self.optimizers, self._facts)
        ]
        key = tuple(tuple(f) for f in families)
        if key != self._layout_key:
            self._layout_key = key
            self._layout_cache = self._build_layout([[f for f, _ in per_opt] for per_opt in families])
        return self._layout_cache

    def _build_layout(self, families: List[List[Optional[str]]]) -> Tuple[Tensor, List[_Rows], Optional[_Segments]]:
        where = {id(s.tensor): [] for s in self.sources}
        for k, s in enumerate(self.sources):
            where[id(s.tensor)].append(k)
        base = torch.zeros(len(self.sources), dtype=torch.float64, device=self.device)
        rows: Dict[str, Tuple[List[int], List[Tuple[int, int]]]] = {}
        for i, opt in enumerate(self.optimizers):
            for j, group in enumerate(opt.param_groups):
                name = families[i][j]
                for k in (k for p in group["params"] for k in where.pop(id(p), [])):
                    if name is None:
                        base[k] = float("nan")
                    elif name != _decay.ZERO:
                        params, groups = rows.setdefault(name, ([], []))
                        params.append(k)
                        groups.append((i, j))
        totals = self._group_totals() if self._totals else None
        return base, [self._rows(_decay.FAMILIES[n], *rows[n]) for n in rows], totals

    def _rows(self, family: _decay.Family, params: List[int], groups: List[Tuple[int, int]]) -> _Rows:
        distinct = list(dict.fromkeys(groups))
        row_group = [distinct.index(g) for g in groups]
        sharded: Dict[Groups, List[int]] = {}
        local = []
        for row, k in enumerate(params):
            piece_groups = self.sources[k].piece.groups
            (sharded.setdefault(piece_groups, []) if piece_groups else local).append(row)
        return _Rows(
            family,
            params,
            groups,
            distinct,
            row_group,
            self._index(row_group),
            self._index(params),
            {g: self._index(r) for g, r in sharded.items()},
            self._index(local) if sharded else None,
            [(self.optimizers[i], self.sources[k].tensor) for k, (i, _) in zip(params, groups)],
        )

    # ------------------------------------------------------------- compute

    def compute(self) -> Dict[str, float]:
        """``{key: value}`` for every series (and the totals when asked), read in one transfer."""
        if not self.sources:
            return {}
        # Inference mode, not just no_grad: the ops skip autograd's dispatch layers altogether,
        # which is about 3% of a logging step on ResNet-50 (one op per tensor).
        with torch.inference_mode():
            base, families, totals = self._layout()
            local = self._whole if self._whole is not None else [s.piece.local(s.tensor) for s in self.sources]
            sq = self._norms(local)
            all_reduce_rows(sq, self._reduce)
            eff = base.clone()
            for rows in families:
                eff.index_copy_(0, rows.index, self._family_rates(rows))
            parts = [_aggregate(sq, eff, self._series)]
            if totals is not None:
                parts.append(_aggregate(sq, eff, totals))
            values = torch.cat([p for pair in parts for p in pair]).tolist()
        return self._to_dict(values, [self._series] + ([totals] if totals is not None else []))

    def _to_dict(self, values: List[float], segments: List[_Segments]) -> Dict[str, float]:
        out: Dict[str, float] = {}
        at = 0
        for seg in segments:
            count = len(seg.keys)
            out.update(zip(seg.norm_keys, values[at : at + count]))
            for key, value in zip(seg.decay_keys, values[at + count : at + 2 * count]):
                if value == value:  # NaN: no formula for this optimizer, or no state yet
                    out[key] = value
            at += 2 * count
        return out

    def _family_rates(self, rows: _Rows) -> Tensor:
        family, dtype = rows.family, _scalar_dtype(self.device)
        group_dicts = [self.optimizers[i].param_groups[j] for i, j in rows.groups]
        columns = _decay.group_columns(family, group_dicts, self.device, dtype)
        cols = {k: v.index_select(0, rows.row_group_index) for k, v in columns.items()}
        if not (family.state_cols or family.states):  # decoupled decay: the group says it all
            return family.rate(cols).to(torch.float64)
        states = [optimizer.state.get(tensor) for optimizer, tensor in rows.lookups]
        row_groups = [group_dicts[g] for g in rows.row_group] if family.state_cols else []
        cols.update(self._reduced_state_cols(rows, _decay.state_columns(family, list(zip(row_groups, states)), self.device, dtype)))
        if family.states:
            gathers = [self._gather(rows, states, key) for key in family.states]
            samples = [gather.run() for gather in gathers]
            x = samples[0] if family.combine is None else family.combine(samples, cols)
            cols["x"] = self._medians(rows, x, gathers[0]).to(dtype)
        return family.rate(cols).to(torch.float64)

    def _reduced_state_cols(self, rows: _Rows, cols: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """State scalars agreed across shards: a rank with an empty shard has no state."""
        if not rows.sharded:
            return cols
        for name, col in cols.items():
            filled = torch.nan_to_num(col, nan=-torch.inf)
            all_reduce_rows(filled, rows.sharded, op="max")
            cols[name] = torch.where(torch.isinf(filled) & (filled < 0), torch.nan, filled)
        return cols

    def _gather(self, rows: _Rows, states: List[Optional[Dict[str, Any]]], key: str) -> SampleGather:
        """The gather of state ``key``'s samples for these rows, rebuilt when its tensors change."""
        tensors = [state.get(key) if state else None for state in states]
        gather = self._gathers.get((rows.family.name, key))
        if gather is None or len(gather.tensors) != len(tensors) or any(a is not b for a, b in zip(gather.tensors, tensors)):
            gather = SampleGather(tensors, [self.sources[k].piece for k in rows.params], self.device)
            self._gathers[(rows.family.name, key)] = gather
        return gather

    def _medians(self, rows: _Rows, x: Tensor, gather: SampleGather) -> Tensor:
        """Each row's lower median; sharded rows over the samples of every shard together."""
        if not rows.sharded:
            return lower_medians(x, gather)
        out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
        if rows.local is not None and rows.local.numel():
            out.index_copy_(0, rows.local, torch.nanmedian(x.index_select(0, rows.local), dim=1).values)
        for groups, index in rows.sharded.items():
            gathered = gather_columns(x.index_select(0, index), groups)
            out.index_copy_(0, index, torch.nanmedian(gathered, dim=1).values)
        return out


def _scalar_dtype(device: torch.device) -> torch.dtype:
    # Bias corrections such as 1 - 0.999**t lose digits in float32; MPS has no float64.
    return torch.float32 if device.type == "mps" else torch.float64


def _aggregate(sq: Tensor, eff: Tensor, seg: _Segments) -> Tuple[Tensor, Tensor]:
    """Norms of each segment and its norm-weighted effective decay (plain mean if all zero)."""
    count = len(seg.keys)
    sq_m, eff_m = sq.index_select(0, seg.member), eff.index_select(0, seg.member)
    if seg.singletons:
        return sq_m.sqrt(), eff_m
    den = sq.new_zeros(count).index_add_(0, seg.segment, sq_m)
    num = sq.new_zeros(count).index_add_(0, seg.segment, eff_m * sq_m)
    mean = sq.new_zeros(count).index_add_(0, seg.segment, eff_m) / sq.new_zeros(count).index_add_(0, seg.segment, torch.ones_like(sq_m))
    return den.sqrt(), torch.where(den > 0, num / den.clamp_min(torch.finfo(den.dtype).tiny), mean)


def _unique(name: str, taken: set) -> str:
    while name in taken:
        name += "_"
    return name
