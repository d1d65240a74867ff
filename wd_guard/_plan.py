"""A precomputed plan that turns a model and its optimizers into flat ``{key: float}`` stats.

Built once (names, keys, optimizer mapping, index arrays); each :meth:`StatsPlan.compute`
then costs one batched norm pass over the weights and a fixed sample of the optimizer state
for coupled adaptive decay, where the tensors live, and a single device-to-host transfer of
the per-parameter results. The formulas and the sums per series then run on the host in
numpy: a few hundred numbers, for which each torch operation would cost more than the math
(on the CPU, three to five times more right after the norm pass has emptied the caches).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
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
    member: numpy.ndarray
    segment: numpy.ndarray
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
    row_group: numpy.ndarray  # position of each row's pair in ``groups``
    row_group_index: Tensor  # the same on the plan's device, for hyperparameters held as tensors
    index: numpy.ndarray  # position of each row's parameter in the plan's sources
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
        self._scalars: Dict[Tuple[str, str], _decay.HostScalars] = {}

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
        return _Segments(tuple(names), _host_index(flat), _host_index(segment), norm_keys, decay_keys, singletons)

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

    def _layout(self) -> Tuple[numpy.ndarray, List[_Rows], Optional[_Segments]]:
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

    def _build_layout(self, families: List[List[Optional[str]]]) -> Tuple[numpy.ndarray, List[_Rows], Optional[_Segments]]:
        where = {id(s.tensor): [] for s in self.sources}
        for k, s in enumerate(self.sources):
            where[id(s.tensor)].append(k)
        base = numpy.zeros(len(self.sources))
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
            _host_index(row_group),
            self._index(row_group),
            _host_index(params),
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
            inputs = [self._family_inputs(rows) for rows in families]
            sq_host, *read = _to_host([sq] + [col for _, device in inputs for col in device.values()])
        segments = [self._series] + ([totals] if totals is not None else [])
        with numpy.errstate(all="ignore"):  # IEEE results, as torch gives them: x / 0 is inf, not a warning
            eff = _effective_decay(base, families, inputs, read)
            values = numpy.concatenate([part for seg in segments for part in _aggregate(sq_host, eff, seg)])
        return self._to_dict(values.tolist(), segments)

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

    def _family_inputs(self, rows: _Rows) -> Tuple[Dict[str, numpy.ndarray], Dict[str, Tensor]]:
        """One family's columns: those known on the host, and those still on the device.

        The device columns are the parameters' state scalars (step counts), the medians of the
        state samples, and any hyperparameter the group holds as a tensor.
        """
        family = rows.family
        group_dicts = [self.optimizers[i].param_groups[j] for i, j in rows.groups]
        per_group, on_device = _decay.group_columns(family, group_dicts, self.device, _scalar_dtype(self.device))
        cols = {name: col[rows.row_group] for name, col in per_group.items()}
        device = {name: col.index_select(0, rows.row_group_index) for name, col in on_device.items()}
        if not (family.state_cols or family.states):  # decoupled decay: the group says it all
            return cols, device
        states = [optimizer.state.get(tensor) for optimizer, tensor in rows.lookups]
        self._state_scalars(rows, [(group_dicts[g], state) for g, state in zip(rows.row_group, states)], cols, device)
        if family.states:
            gathers = [self._gather(rows, states, key) for key in family.states]
            samples = [gather.run() for gather in gathers]
            x = samples[0] if family.combine is None else family.combine(samples, {**cols, **device})
            device["x"] = self._medians(rows, x, gathers[0])
        return cols, device

    def _state_scalars(
        self, rows: _Rows, group_states: List[Tuple[Any, Any]], cols: Dict[str, numpy.ndarray], device: Dict[str, Tensor]
    ) -> None:
        """The family's state scalars (step counts): into ``cols`` when read on the host, else ``device``."""
        for name, values in _decay.state_values(rows.family, group_states).items():
            reader = self._scalars.setdefault((rows.family.name, name), _decay.HostScalars())
            host = None if rows.sharded else reader.read(values)  # shards must agree first
            if host is not None:
                cols[name] = host
            else:
                device[name] = self._reduced_state_col(rows, _decay.stack_scalars(values, self.device, _scalar_dtype(self.device)))

    def _reduced_state_col(self, rows: _Rows, col: Tensor) -> Tensor:
        """A state scalar agreed across shards: a rank with an empty shard has no state."""
        if not rows.sharded:
            return col
        filled = torch.nan_to_num(col, nan=-torch.inf)
        all_reduce_rows(filled, rows.sharded, op="max")
        return torch.where(torch.isinf(filled) & (filled < 0), torch.nan, filled)

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


def _effective_decay(
    base: numpy.ndarray, families: List[_Rows], inputs: List[Tuple[Dict[str, numpy.ndarray], Dict[str, Tensor]]], read: List[numpy.ndarray]
) -> numpy.ndarray:
    """Each parameter's effective decay by its family's formula, over ``base`` (0.0, or NaN if unknown).

    ``read`` holds the families' device columns, now on the host, in the order they were sent.
    """
    eff = base.copy()
    for rows, (cols, device) in zip(families, inputs):
        cols.update(zip(device, read[: len(device)]))
        read = read[len(device) :]
        eff[rows.index] = rows.family.rate(cols)
    return eff


def _aggregate(sq: numpy.ndarray, eff: numpy.ndarray, seg: _Segments) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Norms of each segment and its norm-weighted effective decay (plain mean if all zero)."""
    sq_m, eff_m = sq[seg.member], eff[seg.member]
    if seg.singletons:
        return numpy.sqrt(sq_m), eff_m
    count = len(seg.keys)
    den = numpy.bincount(seg.segment, sq_m, count)
    num = numpy.bincount(seg.segment, eff_m * sq_m, count)
    mean = numpy.bincount(seg.segment, eff_m, count) / numpy.bincount(seg.segment, minlength=count)
    return numpy.sqrt(den), numpy.where(den > 0, num / den, mean)


def _host_index(values: Sequence[int]) -> numpy.ndarray:
    return numpy.asarray(values, dtype=numpy.intp)


def _to_host(parts: List[Tensor]) -> List[numpy.ndarray]:
    """The 1-D ``parts`` as float64 numpy arrays, read from their device in one transfer."""
    dtype = _scalar_dtype(parts[0].device)
    flat = torch.cat([part.reshape(-1).to(dtype) for part in parts]).cpu().numpy().astype(numpy.float64, copy=False)
    return numpy.split(flat, numpy.cumsum([part.numel() for part in parts[:-1]]))


def _unique(name: str, taken: set) -> str:
    while name in taken:
        name += "_"
    return name
