"""``WeightDecayGuard``: the Lightning callback that audits weight decay in a real training run."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import warnings
from typing import Any, Callable, Dict, List, Literal, Optional, Sequence, Set, Tuple

import lightning.pytorch as pl
from lightning.pytorch.callbacks.callback import Callback
from torch import Tensor, nn
from typing_extensions import override

from wd_guard._location import caller_location, finding_location
from wd_guard.auditing import audit_report
from wd_guard.catalogue import RULES_BY_CODE, SEVERITIES
from wd_guard.findings import Finding, WeightDecayWarning

__all__ = ["WeightDecayGuard", "WeightDecayGuardError"]

log = logging.getLogger(__name__)

SeverityName = Literal["error", "warning", "info"]


class WeightDecayGuardError(RuntimeError):
    """Raised with ``strict=True``: error-severity findings, or a failure of the guard itself."""


class WeightDecayGuard(Callback):
    r"""Audit weight decay in the optimizers Lightning configured, before the first step.

    At the start of training (after a checkpoint restore, so the values audited are the ones
    in force) the guard checks every optimizer and param group against wd-guard's rules
    (WD101, WD201 to WD206, WD301, WD302) and logs one summary table through the ``wd_guard``
    logger. Each error or warning finding is warned once, as a
    :class:`~wd_guard.WeightDecayWarning` whose message starts with the rule code and which
    points at the user's ``configure_optimizers`` (or the config that set the optimizer); info
    findings (WD204, WD301, embeddings decayed next to a no-decay group) go to the summary and
    the log only. On the first training batch, when the model has a BatchNorm layer, one
    forward pass with hooks finds the weights that feed straight into it (WD204) and a second
    short table reports them; the pass leaves the run's random state untouched. An optimizer
    replaced or extended mid-training is audited again. Validate, test and predict runs are not
    audited.

    What cannot be checked (an optimizer missing from wd-guard's table, tensors that map to no
    single parameter of the model) is never guessed: it is said once in a warning that starts
    with ``wd-guard:``. Warnings come from global rank zero only; every rank runs the same
    audit, so ``strict`` stops all of them together. The guard never stops a run by itself: a failure of one of its
    steps becomes one warning and that step is skipped, unless ``strict=True``.

    Args:
        ignore: rule codes or code prefixes not to report (``["WD3", "WD204"]``).
        severity: per-code severity overrides (``{"WD201": "error"}``).
        strict: raise :class:`WeightDecayGuardError` before the first step when a finding has
            severity ``"error"``, and let the guard's own failures stop the run.
        dataflow: run the WD204 forward pass on the first training batch.
        input_fn: how to get the model input from a batch (an import path in YAML). By default
            the batch itself when it is a tensor, else its first element when it is a tuple or
            list. A tuple or list returned is passed as positional arguments, a dict as keyword
            arguments, to the LightningModule's ``forward``.
        log_weights: log weight norms and effective decay through the module's logger.
        log_every_n_steps: logging cadence; ``None`` follows the Trainer's ``log_every_n_steps``.
        log_prefix: prefix for the logged keys.
        log_per_module: log one series per module instead of one per parameter.
        log_include: fnmatch patterns (``["encoder.*"]``); only matching series are logged.
        log_max_series: log at most this many series, the largest first (0: totals only).

    Raises:
        ValueError: for an unknown code in ``ignore`` or ``severity``, an unknown severity, or
            a logging option of the wrong type or range.

    Example::

        >>> from lightning.pytorch import Trainer
        >>> from wd_guard import WeightDecayGuard
        >>> trainer = Trainer(callbacks=[WeightDecayGuard(ignore=["WD301"])])

    Logged metrics (with ``log_weights=True``, through every logger of the Trainer, on global
    rank zero, at the steps Lightning logs its own training metrics at; see
    :class:`wd_guard.monitor.WeightMonitor` for the definitions):

    - ``weight_norm/<name>`` for each parameter (each module with ``log_per_module=True``),
      and ``effective_decay/<name>`` where it differs within a group (coupled adaptive decay);
    - ``weight_norm/group_<i>_<j>``, ``effective_decay/group_<i>_<j>`` for param group ``j``
      of optimizer ``i`` (the decay for groups that decay), and ``weight_norm/total``,
      ``effective_decay/total``, which also go to ``trainer.callback_metrics``.
    """

    def __init__(
        self,
        ignore: Optional[List[str]] = None,
        severity: Optional[Dict[str, SeverityName]] = None,
        strict: bool = False,
        dataflow: bool = True,
        input_fn: Optional[Callable[[Any], Any]] = None,
        log_weights: bool = True,
        log_every_n_steps: Optional[int] = None,
        log_prefix: str = "",
        log_per_module: bool = False,
        log_include: Optional[List[str]] = None,
        log_max_series: Optional[int] = None,
    ) -> None:
        self.ignore = _validate_ignore(ignore or [])
        self.severity = _validate_severity(severity or {})
        # The weight logger checks its own options, so a bad value fails here, at once.
        self._weights = _new_monitor(log_every_n_steps, log_prefix, log_per_module, log_include, log_max_series)
        self.strict = strict
        self.dataflow = dataflow
        self.input_fn = input_fn
        self.log_weights = log_weights
        self.log_every_n_steps = log_every_n_steps
        self.log_prefix = log_prefix
        self.log_per_module = log_per_module
        self.log_include = list(log_include) if log_include is not None else None
        self.log_max_series = log_max_series
        self.findings: List[Finding] = []
        self._reported: Set[str] = set()
        self._reset_run_state()
        _make_log_visible()

    def _reset_run_state(self) -> None:
        self._disabled: Set[str] = set()
        self._audited: Optional[Tuple[Tuple[int, int], ...]] = None
        self._feeders: Optional[Set[int]] = None
        self._dataflow_pending = True
        self._dataflow_waits = 0
        self._monitor: Any = None

    @override
    def setup(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        if stage == "fit":
            self._reset_run_state()

    @override
    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._guarded("audit", self._audit, trainer, pl_module, True)
        if self.log_weights:
            self._guarded("weight logging", self._setup_monitor, trainer, pl_module)

    @override
    def on_train_batch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", batch: Any, batch_idx: int) -> None:
        if self._audited != _signature(_optimizers(trainer)):
            self._guarded("audit", self._audit, trainer, pl_module, False)
        if self._dataflow_pending and "audit" not in self._disabled:  # WD204 reports through the audit
            self._guarded("data-flow check", self._dataflow, trainer, pl_module, batch)

    @override
    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._monitor is not None:
            self._guarded("weight logging", self._monitor.on_train_batch_end, trainer, pl_module)

    @override
    def state_dict(self) -> Dict[str, Any]:
        return {"reported": sorted(self._reported)}

    @override
    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self._guarded("state restore", self._load, state_dict)

    def _load(self, state_dict: Dict[str, Any]) -> None:
        reported = state_dict["reported"]
        if not isinstance(reported, (list, tuple)) or not all(isinstance(key, str) for key in reported):
            raise TypeError(f"expected a list of finding keys, got {type(reported).__name__}")
        self._reported.update(reported)

    # -- the steps, each run through _guarded -------------------------------------------------

    def _audit(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", summary: bool) -> None:
        optimizers = _optimizers(trainer)
        self._audited = _signature(optimizers)
        report = audit_report(pl_module, optimizers, feeders=self._feeders, total_steps=_planned_steps(trainer))
        self.findings = self._select(report.findings)
        if summary and trainer.is_global_zero:
            log.info(summary_table(self.findings, report.notes))
        self._report(trainer, self.findings, report.notes)
        self._raise_if_strict(self.findings)

    def _dataflow(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", batch: Any) -> None:
        from wd_guard.dataflow import has_batchnorm, has_uninitialized_lazy, scale_invariant_weights

        if has_uninitialized_lazy(pl_module) and self._dataflow_waits < _LAZY_WAITS:
            # The pass would initialise them (drawing random numbers the run has not drawn yet):
            # wait for the training step to do it.
            self._dataflow_waits += 1
            log.debug("wd-guard: WD204 waits for the lazy modules of %s to be initialised", type(pl_module).__name__)
            return
        self._dataflow_pending = False
        skip = _dataflow_skip_reason(self.dataflow, trainer, pl_module)
        if skip is None and has_uninitialized_lazy(pl_module):
            skip = "lazy modules are still not initialised"
        if skip is None and not has_batchnorm(pl_module):
            skip = "the model has no BatchNorm layer"
        example = None
        if skip is None:
            example = self.input_fn(batch) if self.input_fn is not None else _default_input(batch)
            if example is None:
                skip = f"pass input_fn to get the model input from a {type(batch).__name__} batch"
        if skip is not None:
            log.debug("wd-guard: WD204 not checked: %s", skip)
            return
        runner = _runner(trainer, pl_module)
        with trainer.precision_plugin.forward_context():
            self._feeders = scale_invariant_weights(runner, example)
        report = audit_report(pl_module, _optimizers(trainer), feeders=self._feeders)
        found = self._select([f for f in report.findings if f.code == "WD204"])
        self.findings = [*self.findings, *(f for f in found if f not in self.findings)]
        if found and trainer.is_global_zero:
            log.info(summary_table(found, title="wd-guard data-flow check"))
        self._report(trainer, found, [])
        self._raise_if_strict(found)

    def _setup_monitor(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._weights.hint_switch = not any("WD101".startswith(prefix) for prefix in self.ignore)
        self._weights.setup(trainer, pl_module)
        self._monitor = self._weights

    # -- helpers --------------------------------------------------------------------------------

    def _guarded(self, step: str, fn: Callable[..., Any], *args: Any) -> None:
        """Run one step; its failure becomes one warning and disables it, unless ``strict``."""
        if step in self._disabled:
            return
        try:
            fn(*args)
        except WeightDecayGuardError:
            raise
        except Exception as exc:
            self._disabled.add(step)
            if step == "weight logging":
                self._monitor = None
            if self.strict:
                raise WeightDecayGuardError(f"wd-guard: the {step} step failed: {exc!r}") from exc
            filename, lineno = caller_location()
            warnings.warn_explicit(
                f"wd-guard: the {step} step failed and is skipped for the rest of this run; "
                f"training continues ({type(exc).__name__}: {exc})",
                WeightDecayWarning,
                filename,
                lineno,
            )

    def _select(self, findings: Sequence[Finding]) -> List[Finding]:
        kept = [f for f in findings if not any(f.code.startswith(p) for p in self.ignore)]
        return [dataclasses.replace(f, severity=self.severity[f.code]) if f.code in self.severity else f for f in kept]

    def _report(self, trainer: "pl.Trainer", findings: Sequence[Finding], notes: Sequence[str]) -> None:
        """Say each new finding and note once: a warning, or for an info finding a log line."""
        messages = [(finding_key(f), str(f), f.severity == "info") for f in findings]
        messages += [("note:" + _digest(n), n, False) for n in notes]
        fresh = [message for message in messages if message[0] not in self._reported]
        self._reported.update(key for key, _, _ in fresh)
        if not trainer.is_global_zero or not fresh:
            return
        filename, lineno = finding_location(trainer, trainer.lightning_module)
        for _, text, info in fresh:
            if info:
                log.info("%s", text)
            else:
                warnings.warn_explicit(text, WeightDecayWarning, filename, lineno)

    def _raise_if_strict(self, findings: Sequence[Finding]) -> None:
        errors = [f for f in findings if f.severity == "error"]
        if self.strict and errors:
            lines = "\n".join(f"  {f}" for f in errors)
            count = _count(len(errors), "error-severity finding")
            raise WeightDecayGuardError(f"wd-guard (strict=True) stops the run before the first step: {count}\n{lines}")


def summary_table(findings: Sequence[Finding], notes: Sequence[str] = (), title: str = "wd-guard") -> str:
    """One compact table of ``findings`` (code, severity, optimizer, group, parameter count, rule)."""
    if not findings:
        head = f"{title}: no weight-decay findings"
        return head + (f" ({_count(len(notes), 'note')}, see warnings)" if notes else "")
    counts = ", ".join(_count(sum(f.severity == s for f in findings), s) for s in SEVERITIES if any(f.severity == s for f in findings))
    rows = [("code", "severity", "optimizer", "group", "params", "rule")]
    rows += [(f.code, f.severity, _dash(f.optimizer), _dash(f.group), str(len(f.params)), f.name) for f in findings]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    tail = [f"  {_count(len(notes), 'note')} (see warnings)"] if notes else []
    return "\n".join([f"{title}: {_count(len(findings), 'finding')} ({counts})", *lines, *tail])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 or noun == 'info' else 's'}"


def finding_key(finding: Finding) -> str:
    """A stable key telling one finding from another across processes and restarts."""
    where = f"{finding.code}|{finding.optimizer}|{finding.group}|" + "\n".join(finding.params)
    return f"{finding.code}:{_digest(where)}"


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _dash(value: Optional[int]) -> str:
    return "-" if value is None else str(value)


def _optimizers(trainer: "pl.Trainer") -> List[Any]:
    """The optimizers in use; Lightning's placeholder for "no optimizer" is none."""
    return [opt for opt in trainer.optimizers if type(opt).__name__ != "_MockOptimizer"]


def _signature(optimizers: Sequence[Any]) -> Tuple[Tuple[int, int], ...]:
    """Identity and size of the optimizers: changes when one is replaced, added or extended."""
    return tuple((id(opt), len(opt.param_groups)) for opt in optimizers)


_LAZY_WAITS = 2  # batches the data-flow check waits for lazy modules to be initialised


def _dataflow_skip_reason(enabled: bool, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> Optional[str]:
    """Why the WD204 forward pass cannot or need not run, or None."""
    if not enabled:
        return "dataflow=False"
    if not _any_decay(_optimizers(trainer)):
        return "no optimizer group decays"
    if not _implements_forward(pl_module):
        return f"{type(pl_module).__name__} does not implement forward()"
    return None


def _implements_forward(pl_module: nn.Module) -> bool:
    """Whether ``forward`` is the user's: not nn.Module's nor a Lightning base class's."""
    forward = getattr(type(pl_module), "forward", None)
    owner = getattr(forward, "__module__", None) or ""
    return forward is not None and forward is not nn.Module.forward and owner.split(".")[0] not in ("lightning", "pytorch_lightning", "torch")


def _any_decay(optimizers: Sequence[Any]) -> bool:
    return any(float(g.get("weight_decay", 0.0) or 0.0) > 0 for opt in optimizers for g in opt.param_groups)


def _planned_steps(trainer: "pl.Trainer") -> Optional[float]:
    """Optimizer steps planned for the run; None when unknown or meaningless (fast_dev_run)."""
    if trainer.fast_dev_run:
        return None
    steps = float(trainer.estimated_stepping_batches)
    return steps if math.isfinite(steps) and steps > 0 else None


def _default_input(batch: Any) -> Any:
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, (tuple, list)) and batch:
        return batch[0]
    return None


def _runner(trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> nn.Module:
    """The module whose forward reaches ``pl_module.forward`` through the strategy's wrapper."""
    wrapped = trainer.strategy.model
    return wrapped if isinstance(wrapped, nn.Module) else pl_module


def _validate_ignore(ignore: Sequence[str]) -> List[str]:
    if isinstance(ignore, str):
        raise ValueError(f"ignore must be a list of codes or prefixes, not the string {ignore!r}")
    prefixes = [str(p).upper() for p in ignore]
    for prefix in prefixes:
        if not any(code.startswith(prefix) for code in RULES_BY_CODE):
            raise ValueError(f"ignore: {prefix!r} matches no rule code (known: {', '.join(RULES_BY_CODE)})")
    return prefixes


def _validate_severity(severity: Dict[str, str]) -> Dict[str, str]:
    checked = {}
    for code, level in severity.items():
        if code.upper() not in RULES_BY_CODE:
            raise ValueError(f"severity: unknown rule code {code!r} (known: {', '.join(RULES_BY_CODE)})")
        if level not in SEVERITIES:
            raise ValueError(f"severity[{code!r}]: {level!r} is not one of {', '.join(SEVERITIES)}")
        checked[code.upper()] = level
    return checked


def _new_monitor(every: Optional[int], prefix: str, per_module: bool, include: Optional[List[str]], max_series: Optional[int]) -> Any:
    from wd_guard.monitor import WeightMonitor

    return WeightMonitor(log_every_n_steps=every, prefix=prefix, per_module=per_module, include=include, max_series=max_series)


def _make_log_visible() -> None:
    """Show the summary by default, as Lightning does for its own INFO messages.

    Only when logging is not configured at all: then the ``wd_guard`` logger gets a stream
    handler at INFO. A configured root logger (``logging.basicConfig``) is left in charge.
    """
    package_log = logging.getLogger("wd_guard")
    if not logging.getLogger().hasHandlers() and not package_log.handlers:
        package_log.addHandler(logging.StreamHandler())
        package_log.setLevel(logging.INFO)
