"""The logging engine behind ``WeightDecayGuard``: weight norms and effective decay on logging steps."""

from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional, Sequence

from wd_guard._plan import StatsPlan

__all__ = ["WeightMonitor"]


class WeightMonitor:
    """Logs per-layer weight norms and effective decay to every logger of a Lightning Trainer.

    The monitor is driven by a callback: :meth:`setup` once at ``on_train_start`` (when the
    optimizers hold their final, possibly restored, param groups), :meth:`on_train_batch_end`
    after every training batch. It logs when the Trainer's optimizer step count
    (``trainer.global_step``, which counts real optimizer steps, so gradient accumulation,
    manual optimization and several optimizers are handled) reaches a new multiple of
    ``log_every_n_steps``; every other batch costs a couple of attribute reads.

    A logging step reads every weight once (batched norms), a fixed sample of the
    optimizer state for coupled adaptive decay, moves all values to the host in one
    transfer, and calls ``logger.log_metrics(metrics, step=trainer.global_step)`` for each of
    ``trainer.loggers``, on global rank zero only. Definitions of both quantities and the
    median estimator's error bound: :func:`wd_guard.weight_stats`.

    Under DDP the weights are identical on every rank, so only rank zero computes. Under
    FSDP2 (DTensor) and FSDP1 every rank computes, because the shards' squared norms are
    summed across the process group (a collective every rank must join); rank zero logs.
    FSDP1 flat parameters are mapped back to the original names from FSDP's shard metadata;
    where that is missing, the flat parameter's norm is logged and a warning says so once.
    DeepSpeed ZeRO-3 partitioned parameters are left out (a warning says so once) rather
    than logged as the norm of their empty placeholder.

    Args:
        log_every_n_steps: log every this many optimizer steps; ``None`` uses the Trainer's
            ``log_every_n_steps``.
        prefix: prepended verbatim to every key (``"train/"`` gives ``train/weight_norm/...``).
        per_module: one series per module (the parameters it owns directly, together)
            instead of one per parameter.
        include: fnmatch patterns (a single string is one pattern); only series whose name
            matches one are logged. Totals always cover every parameter.
        max_series: log at most this many series, keeping the largest by element count
            (0 logs the totals only); a warning says once how many were left out.

    Raises:
        ValueError: for an argument of the wrong type or range; the message shows the value.

    Logged metrics (``<name>`` is a parameter name from ``named_parameters()``, or a module
    name with ``per_module=True``; ``<i>``/``<j>`` index ``trainer.optimizers`` and their
    ``param_groups``):

    - ``weight_norm/<name>``: 2-norm of the whole parameter (of the module's parameters).
    - ``effective_decay/<name>``: fraction of the weight decay removes per step at the current
      learning rate (norm-weighted mean over a module's parameters). Absent for optimizers
      whose update rule wd-guard does not know and, for adaptive optimizers, before the
      parameter's first step.
    - ``weight_norm/group_<i>_<j>``: norm of all parameters of param group ``j`` of
      optimizer ``i``; ``effective_decay/group_<i>_<j>``: their norm-weighted effective decay.
    - ``weight_norm/total``, ``effective_decay/total``: the same over every logged parameter.

    A total whose name a parameter already uses gets a trailing ``_``.

    Example::

        monitor = WeightMonitor(log_every_n_steps=10, include=["encoder.*"], max_series=200)
        monitor.setup(trainer, pl_module)                 # on_train_start
        monitor.on_train_batch_end(trainer, pl_module)    # every training batch
    """

    def __init__(
        self,
        *,
        log_every_n_steps: Optional[int] = None,
        prefix: str = "",
        per_module: bool = False,
        include: Optional[Sequence[str]] = None,
        max_series: Optional[int] = None,
    ) -> None:
        self.log_every_n_steps = _optional_count("log_every_n_steps", log_every_n_steps, minimum=1)
        self.max_series = _optional_count("max_series", max_series, minimum=0)
        if not isinstance(prefix, str):
            raise ValueError(f"prefix must be a string, got {prefix!r}")
        if not isinstance(per_module, bool):
            raise ValueError(f"per_module must be True or False, got {per_module!r}")
        self.prefix = prefix
        self.per_module = per_module
        self.include = _patterns(include)
        self._plan: Optional[StatsPlan] = None
        self._every = 1
        self._last_bucket = 0
        self._active = False
        self._rank_zero = True
        self._optimizers: List[Any] = []
        self._warned: set = set()

    def setup(self, trainer: Any, pl_module: Any) -> None:
        """Precompute names, keys, optimizer mapping and cadence; call once at ``on_train_start``."""
        every = self.log_every_n_steps or getattr(trainer, "log_every_n_steps", None) or 50
        self._every = int(every)
        self._rank_zero = bool(getattr(trainer, "is_global_zero", True))
        self._optimizers = list(trainer.optimizers)
        self._plan = StatsPlan(
            pl_module,
            self._optimizers,
            per_module=self.per_module,
            include=self.include,
            max_series=self.max_series,
            totals=True,
            prefix=self.prefix,
        )
        # Ranks other than zero compute only when a collective needs them.
        self._active = self._rank_zero or self._plan.collective
        self._last_bucket = trainer.global_step // self._every
        self._warn_plan(self._plan)

    def on_train_batch_end(self, trainer: Any, pl_module: Any) -> None:
        """Log if the optimizer step count has reached a new multiple of ``log_every_n_steps``."""
        bucket = trainer.global_step // self._every
        if bucket == self._last_bucket:
            return
        self._last_bucket = bucket
        if self._active:
            self._log(trainer, pl_module)

    def compute(self, trainer: Any, pl_module: Any) -> Dict[str, float]:
        """The metrics a logging step would log now (every rank of a sharded run must call it)."""
        if self._plan is None or list(trainer.optimizers) != self._optimizers:
            self.setup(trainer, pl_module)
        assert self._plan is not None
        return self._plan.compute()

    def _log(self, trainer: Any, pl_module: Any) -> None:
        metrics = self.compute(trainer, pl_module)
        if not self._rank_zero:
            return
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)

    def _warn_plan(self, plan: StatsPlan) -> None:
        if not self._rank_zero:
            return
        notes = list(plan.notes)
        if plan.dropped:
            notes.append(f"max_series={self.max_series}: {plan.dropped} smaller series are not logged (totals still cover them)")
        for note in notes:
            if note not in self._warned:
                self._warned.add(note)
                warnings.warn(f"wd-guard weight stats: {note}", UserWarning, stacklevel=3)


def _optional_count(name: str, value: Any, *, minimum: int) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be None or an integer >= {minimum}, got {value!r}")
    return value


def _patterns(include: Any) -> Optional[List[str]]:
    if include is None:
        return None
    patterns = [include] if isinstance(include, str) else include
    try:
        patterns = list(patterns)
    except TypeError:
        raise ValueError(f"include must be a pattern or a sequence of patterns, got {include!r}") from None
    if not all(isinstance(p, str) for p in patterns):
        raise ValueError(f"include must hold strings (fnmatch patterns), got {include!r}")
    return patterns
