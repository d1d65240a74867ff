"""The runtime audit: weight-decay mistakes in a real model and its real optimizers.

``audit`` maps every tensor an optimizer holds back to the model's parameters by identity,
reads each param group's ``weight_decay``, ``lr`` and decoupling flag, and reports the rules
WD101, WD201 to WD206, WD301 and WD302 of the catalogue. Message texts come from the
catalogue; the audit appends where it found the mistake.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

import torch
from torch import nn

from wd_guard._decay import decay_per_step
from wd_guard.catalogue import get_rule
from wd_guard.classify import ParamInfo, Role, classify
from wd_guard.dataflow import scale_invariant_weights
from wd_guard.findings import Finding, WeightDecayWarning
from wd_guard.optimizers import DecayKind, OptimizerFact, fact_for_class, group_kind

__all__ = ["AuditReport", "as_optimizer_list", "audit", "audit_report", "names_text"]

SHOWN_NAMES = 3  # parameter names quoted in a message; Finding.params holds them all
NEGLIGIBLE_SHRINK = 0.01  # WD301: decay removes less than 1% over the whole run
EXCESSIVE_PRODUCT = 0.1  # WD302: lr * weight_decay per step
_ROLE_CODES: Mapping[Role, str] = {
    Role.BIAS: "WD201",
    Role.NORM: "WD202",
    Role.GAIN: "WD202",
    Role.EMBEDDING: "WD203",
    Role.TOKEN: "WD203",
    Role.DECLARED: "WD203",
}
# Decayed next to a no-decay group of the same optimizer, these roles are a recipe's choice.
_DELIBERATE_ROLES = frozenset({Role.EMBEDDING, Role.TOKEN})


@dataclass
class AuditReport:
    """Findings, plus notes on what could not be checked (unknown optimizers, unmapped tensors)."""

    findings: List[Finding] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


@dataclass
class _Group:
    """One param group of one optimizer, with what the audit needs to judge it."""

    optimizer: int
    optimizer_name: str
    index: int
    weight_decay: float
    lr: float
    kind: DecayKind
    members: List[ParamInfo]
    rate: Optional[float] = None  # steady-state decay per step; None where it depends on state
    has_no_decay_group: bool = False  # the optimizer has a group that holds parameters undecayed

    def context(self, names: Sequence[str]) -> str:
        return (
            f" [optimizer {self.optimizer} ({self.optimizer_name}), group {self.index}, "
            f"weight_decay={self.weight_decay:g}, lr={self.lr:g}; {names_text(names)}]"
        )

    def finding(self, code: str, names: Sequence[str], *, deliberate: bool = False, extra: str = "", **values: object) -> Finding:
        rule = get_rule(code)
        text = rule.deliberate if deliberate else rule.format(**values)
        severity = "info" if deliberate else rule.severity
        return Finding(code, severity, text + extra + self.context(names), tuple(names), self.optimizer, self.index)


def names_text(names: Sequence[str]) -> str:
    """``'5 parameters: a, b, c, ... (+2 more)'``: the count and the first few names."""
    shown = ", ".join(names[:SHOWN_NAMES])
    if len(names) > SHOWN_NAMES:
        shown += f", ... (+{len(names) - SHOWN_NAMES} more)"
    return f"{len(names)} parameter{'s' if len(names) != 1 else ''}: {shown}"


def audit(
    model: nn.Module,
    optimizers: Any,
    example_input: Any = None,
    *,
    total_steps: Optional[int] = None,
) -> List[Finding]:
    """Weight-decay mistakes in ``model`` trained by ``optimizers``.

    Args:
        model: the model whose parameters the optimizers train.
        optimizers: one optimizer, a list of them, or wrappers that hold one in ``.optimizer``
            (Lightning's ``LightningOptimizer``); ``None`` or ``[]`` checks nothing that needs
            an optimizer.
        example_input: when given and the model has a BatchNorm layer, one forward pass (no
            gradients, eval mode, random state forked, model state restored) finds the weights
            that feed straight into BatchNorm (WD204). A dict is passed as keyword arguments,
            a tuple or list as positional arguments.
        total_steps: the planned number of optimizer steps; WD301 is checked only with it.

    WD301 and WD302 read each group's learning rate: the largest of ``lr`` and the
    ``initial_lr`` / ``max_lr`` that torch schedulers store in the group, held for the whole
    run. ``audit`` does not know the schedule, so this is an upper bound on ``sum(lr_t)`` for
    warm-up and decay schedules: WD301 fires only when decay is negligible even at that peak.
    Both rules judge the steady-state decay per step that ``effective_decay`` reports:
    ``lr * weight_decay`` for decoupled decay and plain SGD, momentum included for SGD with
    momentum; not coupled decay in an adaptive optimizer (WD101 covers that).

    WD201 to WD203 follow the classification that ``param_groups`` uses (biases; norms and
    other 0-d / 1-D gains; embedding tables, tokens, position tables and declared names; see
    ``docs/parameter-roles.md``). Embedding tables and tokens decayed by an optimizer that
    already has a no-decay group (the transformers and nanoGPT recipes) are a deliberate
    choice: WD203 is then reported at info severity with a message that says so. WD206 names
    parameters that the groups of several optimizers decay.

    What cannot be checked is never guessed. An optimizer missing from wd-guard's table gets
    no WD101, WD301 or WD302 (how it applies ``weight_decay`` is unknown), tensors that
    cannot be mapped to one parameter of the model are skipped, and a ``no_weight_decay()``
    that raises is left out; each such case is reported once as a ``WeightDecayWarning``
    (not as a ``Finding``, which always carries a rule code).

    Returns:
        The findings, each naming every affected parameter, the optimizer and group index.
    """
    feeders = scale_invariant_weights(model, example_input) if example_input is not None else None
    report = audit_report(model, optimizers, feeders=feeders, total_steps=total_steps)
    for note in report.notes:
        warnings.warn(note, WeightDecayWarning, stacklevel=2)
    return report.findings


def audit_report(
    model: nn.Module,
    optimizers: Any,
    *,
    feeders: Optional[Set[int]] = None,
    total_steps: Optional[float] = None,
) -> AuditReport:
    """The audit without side effects: findings and notes, for callers that report them their own way.

    ``feeders`` holds the ``id()`` of weights known to feed BatchNorm (from
    ``wd_guard.dataflow.scale_invariant_weights``); WD204 is checked only when it is given.
    """
    report = AuditReport()
    infos = classify(model, notes=report.notes)
    opts = as_optimizer_list(optimizers)
    held: Set[int] = set()
    decayed_in: Dict[int, List[_Group]] = {}
    foreign = 0
    for oi, opt in enumerate(opts):
        fact = fact_for_class(type(opt))
        if fact is None:
            report.notes.append(_unknown_note(oi, opt))
        no_decay_group = any(_number(g.get("weight_decay", 0.0)) <= 0 and g.get("params") for g in opt.param_groups)
        for gi, raw in enumerate(opt.param_groups):
            params = list(raw.get("params", ()))
            held.update(id(p) for p in params)
            foreign += sum(1 for p in params if id(p) not in infos)
            group = _make_group(oi, opt, fact, gi, raw, infos, no_decay_group)
            report.findings.extend(_group_findings(group, feeders, total_steps))
            for member in group.members if group.weight_decay > 0 else ():
                decayed_in.setdefault(id(member.param), []).append(group)
    if opts:
        report.findings.extend(_untrained(infos, held))
        report.findings.extend(_decayed_twice(infos, decayed_in))
    report.notes.extend(_mapping_notes(infos, held, foreign))
    return report


def as_optimizer_list(optimizers: Any) -> List[Any]:
    """One optimizer or an iterable of them as a list of unwrapped torch optimizers."""
    if optimizers is None:
        return []
    if hasattr(optimizers, "param_groups"):
        return [_unwrap(optimizers)]
    return [_unwrap(opt) for opt in optimizers]


def _unwrap(opt: Any) -> Any:
    """The optimizer inside a wrapper that keeps it in ``.optimizer`` (LightningOptimizer)."""
    inner = getattr(opt, "optimizer", None)
    while isinstance(inner, torch.optim.Optimizer) and inner is not opt:
        opt, inner = inner, getattr(inner, "optimizer", None)
    if not hasattr(opt, "param_groups"):
        raise TypeError(f"expected a torch optimizer (an object with param_groups), got {type(opt).__qualname__}")
    return opt


def _make_group(
    oi: int,
    opt: Any,
    fact: Optional[OptimizerFact],
    gi: int,
    raw: Mapping[str, Any],
    infos: Mapping[int, ParamInfo],
    has_no_decay_group: bool,
) -> _Group:
    members = [infos[id(p)] for p in raw.get("params", ()) if id(p) in infos]
    lr = max(_number(raw.get(key, 0.0)) for key in ("lr", "initial_lr", "max_lr"))
    return _Group(
        optimizer=oi,
        optimizer_name=type(opt).__name__,
        index=gi,
        weight_decay=_number(raw.get("weight_decay", 0.0)),
        lr=lr,
        kind=group_kind(fact, raw, opt),
        members=[m for m in members if m.trainable],
        rate=decay_per_step(fact, raw, opt, lr=lr),
        has_no_decay_group=has_no_decay_group,
    )


def _number(value: Any) -> float:
    """A hyper-parameter as a float (tensors included); anything else counts as 0."""
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _group_findings(group: _Group, feeders: Optional[Set[int]], total_steps: Optional[float]) -> Iterable[Finding]:
    if group.weight_decay <= 0 or not group.members:
        return []
    findings = [*_role_findings(group), *_scale_invariant(group, feeders), *_amount_findings(group, total_steps)]
    if group.kind is DecayKind.COUPLED_ADAPTIVE:
        findings.insert(0, group.finding("WD101", [m.name for m in group.members], optimizer=group.optimizer_name))
    return findings


def _role_findings(group: _Group) -> List[Finding]:
    by_code: Dict[str, List[ParamInfo]] = {}
    for member in group.members:
        code = _ROLE_CODES.get(member.role)
        if code is not None:
            by_code.setdefault(code, []).append(member)
    findings = []
    for code, members in sorted(by_code.items()):
        deliberate = code == "WD203" and group.has_no_decay_group and all(m.role in _DELIBERATE_ROLES for m in members)
        findings.append(group.finding(code, [m.name for m in members], deliberate=deliberate, extra=_declared_by(members)))
    return findings


def _declared_by(members: Sequence[ParamInfo]) -> str:
    """``'; declared no-decay by X.no_weight_decay() (a, b)'``: who declared which names."""
    sources: Dict[str, List[str]] = {}
    for member in members:
        if member.role is Role.DECLARED:
            sources.setdefault(member.declared_by, []).append(member.name)
    parts = [f"{source} ({', '.join(names[:SHOWN_NAMES])}{', ...' if len(names) > SHOWN_NAMES else ''})" for source, names in sources.items()]
    return f"; declared no-decay by {'; '.join(parts)}" if parts else ""


def _scale_invariant(group: _Group, feeders: Optional[Set[int]]) -> List[Finding]:
    if feeders is None:
        return []
    names = [m.name for m in group.members if id(m.param) in feeders]
    return [group.finding("WD204", names)] if names else []


def _amount_findings(group: _Group, total_steps: Optional[float]) -> List[Finding]:
    if group.rate is None:  # coupled adaptive decay (WD101) or an unknown optimizer
        return []
    names = [m.name for m in group.members]
    product = group.rate  # the steady-state decay per step effective_decay reports, momentum included
    if product >= EXCESSIVE_PRODUCT:
        return [group.finding("WD302", names, product=f"{product:.3g}")]
    if total_steps is None or not math.isfinite(total_steps) or total_steps <= 0:
        return []
    shrink = -math.expm1(-product * total_steps)
    if shrink < NEGLIGIBLE_SHRINK:
        return [group.finding("WD301", names, optimizer=group.optimizer_name, shrink=f"{shrink * 100:.2g}%", steps=int(total_steps))]
    return []


def _untrained(infos: Mapping[int, ParamInfo], held: Set[int]) -> List[Finding]:
    names = [info.name for pid, info in infos.items() if info.trainable and pid not in held]
    if not names:
        return []
    rule = get_rule("WD205")
    message = rule.format() + f" [{names_text(names)}]"
    return [Finding("WD205", rule.severity, message, tuple(names))]


def _decayed_twice(infos: Mapping[int, ParamInfo], decayed_in: Mapping[int, List[_Group]]) -> List[Finding]:
    """WD206: parameters decayed by groups of two or more optimizers, one finding per set of groups."""
    by_groups: Dict[Tuple[Tuple[int, int], ...], List[str]] = {}
    holders: Dict[Tuple[Tuple[int, int], ...], List[_Group]] = {}
    for pid, groups in decayed_in.items():
        if len({g.optimizer for g in groups}) < 2:
            continue
        key = tuple((g.optimizer, g.index) for g in groups)
        by_groups.setdefault(key, []).append(infos[pid].name)
        holders[key] = groups
    rule = get_rule("WD206")
    findings = []
    for key, names in by_groups.items():
        where = ", ".join(f"optimizer {g.optimizer} ({g.optimizer_name}) group {g.index} weight_decay={g.weight_decay:g}" for g in holders[key])
        findings.append(Finding("WD206", rule.severity, f"{rule.format()} [{where}; {names_text(names)}]", tuple(names)))
    return findings


def _unknown_note(index: int, opt: Any) -> str:
    cls = type(opt)
    return (
        f"wd-guard: optimizer {index} ({cls.__module__}.{cls.__qualname__}) is not in wd-guard's optimizer "
        "table, so how it applies weight_decay is unknown: WD101, WD301 and WD302 are not checked for it"
    )


def _mapping_notes(infos: Mapping[int, ParamInfo], held: Set[int], foreign: int) -> List[str]:
    notes = []
    flat = [info.name for pid, info in infos.items() if info.role is Role.UNMAPPED and pid in held]
    if flat:
        notes.append(
            f"wd-guard: flattened tensors ({names_text(flat)}) mix parameters of "
            "several layers and cannot be mapped to one module: WD201 to WD204 skip them "
            "(FSDP's use_orig_params=True keeps the original parameters)"
        )
    if foreign:
        notes.append(f"wd-guard: the optimizers hold {foreign} tensors that are not parameters of the model; they are not checked")
    return notes
