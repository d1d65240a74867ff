"""A plan built once that turns a model and its optimizers into flat ``{key: float}`` stats.

Built once (names, keys, optimizer mapping, index tensors); each :meth:`StatsPlan.compute`
then costs one batched norm pass over the weights and, for coupled adaptive decay, a fixed
sample of the optimizer state with its row medians, all where the tensors live, and one
device-to-host transfer of the per-parameter results. The formulas of ``_decay`` and the
sums per series then run on those few hundred numbers on the host, in float64.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Collection, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from wd_guard import _decay
from wd_guard._medians import SampleGather
from wd_guard._norms import Groups, all_reduce_rows, gather_columns, result_dtype, squared_norms
from wd_guard._sources import collect_sources
from wd_guard.optimizers import fact_for_class

Pair = Tuple[int, int]  # (optimizer index, param group index)


def unwrap_optimizer(optimizer: Any) -> Any:
    """The torch optimizer inside a wrapper such as Lightning's ``LightningOptimizer``."""
    inner = getattr(optimizer, "_optimizer", None)
    return inner if isinstance(inner, torch.optim.Optimizer) else optimizer


@dataclass(frozen=True)
class _Segments:
    """Series (or totals) as sums over parameters: ``member`` parameter indices, ``segment`` ids."""

    norm_keys: Tuple[str, ...]
    decay_keys: Tuple[str, ...]
    members: Tuple[Tuple[int, ...], ...]
    member: Tensor
    segment: Tensor
    singletons: bool  # one parameter per segment: no sums needed


@dataclass(frozen=True)
class _Rows:
    """The parameters of one decay family, with what :meth:`StatsPlan._columns` reads for them."""

    family: _decay.Family
    params: List[int]  # position of each row's parameter in the plan's sources
    groups: List[Pair]  # distinct groups of the rows
    row_group: List[int]  # position of each row's group in ``groups``
    lookups: List[Tuple[Any, Tensor]]  # (optimizer, parameter) of each row; state is read live
    sharded: Dict[Groups, Tensor]
    local: Optional[Tensor]


@dataclass(frozen=True)
class _Layout:
    """Which family computes each parameter's effective decay, and which decay keys are shown."""

    base: Tensor  # 0.0, or NaN where the optimizer is unknown; families fill their rows
    families: List[_Rows]
    segments: List[_Segments]
    shown: List[Tuple[bool, ...]]  # per segment, whether each decay key is reported
    varying: Dict[Pair, List[int]]  # groups whose decay differs per parameter: their parameters


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
        dashboard: report a series' effective decay only where it varies within its group
            (coupled adaptive decay), and no decay key that is constantly zero.
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
        dashboard: bool = False,
        prefix: str = "",
    ) -> None:
        self.optimizers = [unwrap_optimizer(o) for o in optimizers]
        self._facts = [fact_for_class(type(o)) for o in self.optimizers]
        optimized = {id(p) for o in self.optimizers for g in o.param_groups for p in g["params"]}
        self.sources, self.notes = collect_sources(model, optimized)
        self.prefix = prefix
        self.device = next((s.piece.local(s.tensor).device for s in self.sources), torch.device("cpu"))
        self.dropped = 0
        self._series = self._build_series(per_module, include, max_series)
        self._totals = totals
        self._dashboard = dashboard
        self._reduce = self._reduce_rows()
        self.collective = bool(self._reduce)
        self._layout_key: Optional[tuple] = None
        self._layout_cache: Optional[_Layout] = None
        self._gathers: Dict[Tuple[str, str], SampleGather] = {}
        #: Names of the parameters whose norm was NaN or infinite in the last :meth:`compute`.
        self.nonfinite: List[str] = []
        #: Each source's effective decay in the last :meth:`compute` (NaN where unknown).
        self.decay: Optional[Tensor] = None
        #: The keys of the group totals and the overall total.
        self.total_keys: Tuple[str, ...] = ()

    # ----------------------------------------------------------------- setup

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
        return _Segments(
            tuple(f"{self.prefix}weight_norm/{n}" for n in names),
            tuple(f"{self.prefix}effective_decay/{n}" for n in names),
            tuple(tuple(group) for group in members),
            torch.tensor([i for group in members for i in group], dtype=torch.long),
            torch.tensor([s for s, group in enumerate(members) for _ in group], dtype=torch.long),
            all(len(group) == 1 for group in members),
        )

    def _group_totals(self) -> Tuple[_Segments, List[Pair]]:
        names, members, pairs = [], [], []
        position = {id(s.tensor): [] for s in self.sources}
        for k, s in enumerate(self.sources):
            position[id(s.tensor)].append(k)
        for i, opt in enumerate(self.optimizers):
            for j, group in enumerate(opt.param_groups):
                owned = sorted({k for p in group["params"] for k in position.get(id(p), [])})
                if owned:
                    names.append(f"group_{i}_{j}")
                    members.append(owned)
                    pairs.append((i, j))
        names.append("total")
        members.append(list(range(len(self.sources))))
        taken = set(self._series.norm_keys)
        names = [_unique(n, taken, f"{self.prefix}weight_norm/") for n in names]
        return self._segments(names, members), pairs

    def _reduce_rows(self) -> Dict[Groups, Tensor]:
        rows: Dict[Groups, List[int]] = {}
        for index, source in enumerate(self.sources):
            if source.piece.groups:
                rows.setdefault(source.piece.groups, []).append(index)
        return {groups: self._index(indices) for groups, indices in rows.items()}

    def _index(self, values: Sequence[int]) -> Tensor:
        return torch.tensor(list(values), dtype=torch.long, device=self.device)

    # ------------------------------------------------------- family layout

    def _layout(self) -> _Layout:
        """Which family computes each parameter's effective decay; rebuilt when groups change."""
        families = [
            [(_decay.family_for(fact, g, opt), len(g["params"])) for g in opt.param_groups]
            for opt, fact in zip(self.optimizers, self._facts)
        ]
        key = tuple(tuple(f) for f in families)
        if key != self._layout_key or self._layout_cache is None:
            self._layout_key = key
            self._layout_cache = self._build_layout([[f for f, _ in per_opt] for per_opt in families])
        return self._layout_cache

    def _build_layout(self, families: List[List[Optional[str]]]) -> _Layout:
        where = {id(s.tensor): [] for s in self.sources}
        for k, s in enumerate(self.sources):
            where[id(s.tensor)].append(k)
        base = torch.zeros(len(self.sources), dtype=torch.float64)
        family_of: List[Optional[str]] = [_decay.ZERO] * len(self.sources)
        rows: Dict[str, Tuple[List[int], List[Pair]]] = {}
        varying: Dict[Pair, List[int]] = {}
        for i, opt in enumerate(self.optimizers):
            for j, group in enumerate(opt.param_groups):
                name = families[i][j]
                for k in (k for p in group["params"] for k in where.pop(id(p), [])):
                    family_of[k] = name
                    if name is None:
                        base[k] = float("nan")
                    elif name != _decay.ZERO:
                        params, pairs = rows.setdefault(name, ([], []))
                        params.append(k)
                        pairs.append((i, j))
                        if _decay.FAMILIES[name].states:
                            varying.setdefault((i, j), []).append(k)
        segments, shown = [self._series], [self._shown(self._series, family_of, by_parameter=True)]
        self.total_keys = ()
        if self._totals:
            totals, pairs = self._group_totals()
            group_family = [families[i][j] for i, j in pairs] + [None]
            segments.append(totals)
            shown.append(self._shown(totals, family_of, by_parameter=False, group_family=group_family))
            self.total_keys = totals.norm_keys + totals.decay_keys
        return _Layout(base, [self._rows(_decay.FAMILIES[n], *rows[n]) for n in rows], segments, shown, varying)

    def _shown(self, seg: _Segments, family_of: List[Optional[str]], *, by_parameter: bool, group_family: Sequence[Optional[str]] = ()) -> Tuple[bool, ...]:
        """Which of ``seg``'s decay keys a dashboard reports (every one outside dashboard mode)."""
        if not self._dashboard:
            return (True,) * len(seg.members)
        shown = []
        for at, members in enumerate(seg.members):
            names = {family_of[k] for k in members}
            if by_parameter:  # per parameter only where decay differs within a group
                shown.append(any(n in _decay.FAMILIES and bool(_decay.FAMILIES[n].states) for n in names))
            elif at < len(group_family) and group_family[at] is not None:
                shown.append(group_family[at] != _decay.ZERO)
            else:  # the total, or a group whose optimizer is unknown (no value anyway)
                shown.append(any(n not in (None, _decay.ZERO) for n in names))
        return tuple(shown)

    def _rows(self, family: _decay.Family, params: List[int], pairs: List[Pair]) -> _Rows:
        distinct = list(dict.fromkeys(pairs))
        sharded: Dict[Groups, List[int]] = {}
        local = []
        for row, k in enumerate(params):
            piece_groups = self.sources[k].piece.groups
            (sharded.setdefault(piece_groups, []) if piece_groups else local).append(row)
        return _Rows(
            family,
            params,
            distinct,
            [distinct.index(p) for p in pairs],
            [(self.optimizers[i], self.sources[k].tensor) for k, (i, _) in zip(params, pairs)],
            {g: self._index(r) for g, r in sharded.items()},
            self._index(local) if sharded else None,
        )

    # ------------------------------------------------------------- compute

    def compute(self) -> Dict[str, float]:
        """``{key: value}`` for every series (and the totals when asked), read in one transfer."""
        if not self.sources:
            return {}
        # Inference mode, not just no_grad: the ops skip autograd's dispatch layers altogether.
        with torch.inference_mode():
            layout = self._layout()
            sq = squared_norms([s.piece.local(s.tensor) for s in self.sources], self.device)
            all_reduce_rows(sq, self._reduce)
            columns = [self._columns(rows) for rows in layout.families]
            sq = _to_host(sq, columns)
        eff = layout.base.clone()
        for rows, (per_group, per_row) in zip(layout.families, columns):
            index = torch.tensor(rows.row_group)
            cols = {**{name: col[index] for name, col in per_group.items()}, **per_row}
            eff[rows.params] = rows.family.rate(cols).to(torch.float64)
        self.decay = eff
        self.nonfinite = [self.sources[k].name for k in (~torch.isfinite(sq)).nonzero().flatten().tolist()]
        out: Dict[str, float] = {}
        for seg, shown in zip(layout.segments, layout.shown):
            norms, decays = _aggregate(sq, eff, seg)
            out.update(zip(seg.norm_keys, norms.tolist()))
            out.update((k, v) for k, v, show in zip(seg.decay_keys, decays.tolist(), shown) if show and v == v)
        return out

    def varying_medians(self, exclude: Collection[Pair] = ()) -> Dict[Pair, float]:
        """For each group whose decay differs per parameter: the effective decay of its median element.

        Read from the last :meth:`compute`: the median of the group's per-parameter effective
        decays (each the median over its own sampled elements), weighted by element count.
        Groups without optimizer state yet, and those in ``exclude``, are left out.
        """
        out: Dict[Pair, float] = {}
        if self.decay is None or self._layout_cache is None:
            return out
        for pair, members in self._layout_cache.varying.items():
            if pair in exclude:
                continue
            values = self.decay[members]
            known = ~torch.isnan(values)
            if not bool(known.any()):
                continue
            sizes = torch.tensor([float(self.sources[k].numel) for k in members], dtype=torch.float64)[known]
            values, order = values[known].sort()
            weight = sizes[order].cumsum(0)
            out[pair] = float(values[int((weight < weight[-1] / 2).sum())])
        return out

    def _columns(self, rows: _Rows) -> Tuple[_decay.Cols, _decay.Cols]:
        """One family's columns, where they live: per group (hyperparameters) and per row (state)."""
        family = rows.family
        groups = [self.optimizers[i].param_groups[j] for i, j in rows.groups]
        per_group = _decay.group_columns(family, groups)
        if not (family.state_cols or family.states):  # decoupled decay: the group says it all
            return per_group, {}
        states = [optimizer.state.get(tensor) for optimizer, tensor in rows.lookups]
        per_row = _decay.state_columns(family, [(groups[g], state) for g, state in zip(rows.row_group, states)])
        if rows.sharded:
            per_row = {name: self._agreed(rows, col) for name, col in per_row.items()}
        if family.states:
            gathers = [self._gather(rows, states, key) for key in family.states]
            samples = [gather.run() for gather in gathers]
            if family.combine is not None:
                index = torch.tensor(rows.row_group)
                samples = [family.combine(samples, {name: col.cpu()[index] for name, col in per_group.items()})]
            per_row["x"] = self._medians(rows, samples[0], gathers[0])
        return per_group, per_row

    def _agreed(self, rows: _Rows, col: Tensor) -> Tensor:
        """A state scalar agreed across shards: a rank with an empty shard has no state."""
        filled = torch.nan_to_num(col.to(self.device), nan=-torch.inf)
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
            return gather.medians(x)
        out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
        if rows.local is not None and rows.local.numel():
            out.index_copy_(0, rows.local, torch.nanmedian(x.index_select(0, rows.local), dim=1).values)
        for groups, index in rows.sharded.items():
            gathered = gather_columns(x.index_select(0, index), groups)
            out.index_copy_(0, index, torch.nanmedian(gathered, dim=1).values)
        return out


def _to_host(sq: Tensor, columns: List[Tuple[_decay.Cols, _decay.Cols]]) -> Tensor:
    """Bring ``sq`` and every column still on a device to the host in one transfer; returns ``sq`` there.

    The columns are replaced in place by float64 CPU tensors.
    """
    remote = [(cols, name) for pair in columns for cols in pair for name, col in cols.items() if col.device.type != "cpu"]
    parts = [sq] + [cols[name] for cols, name in remote]
    flat = torch.cat([part.reshape(-1).to(device=sq.device, dtype=result_dtype(sq.device)) for part in parts])
    host = flat.to("cpu", torch.float64).split([part.numel() for part in parts])
    for (cols, name), value in zip(remote, host[1:]):
        cols[name] = value
    for pair in columns:
        for cols in pair:
            cols.update({name: col.to(torch.float64) for name, col in cols.items()})
    return host[0]


def _aggregate(sq: Tensor, eff: Tensor, seg: _Segments) -> Tuple[Tensor, Tensor]:
    """Norms of each segment and its norm-weighted effective decay (plain mean if all norms are zero).

    Parameters without a value (no optimizer state yet, unknown optimizer) are left out of
    the decay; a segment with no value at all gets NaN.
    """
    sq_m, eff_m = sq[seg.member], eff[seg.member]
    if seg.singletons:
        return sq_m.sqrt(), eff_m
    count = len(seg.members)
    known = ~torch.isnan(eff_m)
    weight, value = torch.where(known, sq_m, 0.0), torch.where(known, eff_m, 0.0)

    def total(x: Tensor) -> Tensor:
        return torch.zeros(count, dtype=torch.float64).index_add_(0, seg.segment, x)

    den = total(weight)
    mean = total(value) / total(known.to(torch.float64))
    return total(sq_m).sqrt(), torch.where(den > 0, total(value * weight) / den, mean)


def _unique(name: str, taken: set, prefix: str) -> str:
    while prefix + name in taken:
        name += "_"
    return name
