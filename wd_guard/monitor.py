"""The logging engine behind ``WeightDecayGuard``: weight norms and effective decay on logging steps."""

from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional, Sequence

import torch

from wd_guard._plan import StatsPlan

__all__ = ["WeightMonitor"]


class WeightMonitor:
    """Logs per-layer weight norms and effective decay to every logger of a Lightning Trainer.

    The monitor is driven by a callback: :meth:`setup` once at ``on_train_start`` (when the
    optimizers hold their final, possibly restored, param groups), :meth:`on_train_batch_end`
    after every training batch. It logs on the steps, and at the step values, at which
    Lightning logs the training metrics of ``LightningModule.log`` (as ``LearningRateMonitor``
    does): after the optimizer step of every ``log_every_n_steps``-th batch that ends an
    accumulation window, once per batch however many optimizers step in it, so the curves
    line up with the loss. Every other batch costs a couple of attribute reads; with no
    logger on the Trainer nothing is computed.

    A logging step reads every weight once (batched norms), a fixed sample of the
    optimizer state for coupled adaptive decay, moves all values to the host in one
    transfer, and calls ``logger.log_metrics`` for each of ``trainer.loggers``, on global
    rank zero only. The totals also go to ``trainer.callback_metrics`` on every rank, where
    ``EarlyStopping`` and ``ModelCheckpoint`` can watch them (``monitor="weight_norm/total"``).
    Definitions of both quantities and the median estimator's error bound:
    :func:`wd_guard.weight_stats`. Once per run, a warning names parameters whose weights
    hold NaN or inf, and, for a group with coupled decay in an adaptive optimizer (WD101),
    the AdamW ``weight_decay`` that removes as much of the median decayed weight per step.

    Every rank computes: under DDP at no cost in wall time (rank zero would be the slowest
    otherwise), so that every rank's callbacks see the same totals; under FSDP2 (DTensor)
    and FSDP1 because the shards' squared norms are summed across the process group (a
    collective every rank must join). Rank zero logs.
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
      learning rate (norm-weighted mean over a module's parameters), only where it differs
      between the parameters of one group: coupled decay in an adaptive optimizer. Absent
      before the parameter's first step.
    - ``weight_norm/group_<i>_<j>``: norm of all parameters of param group ``j`` of
      optimizer ``i``; ``effective_decay/group_<i>_<j>``: their norm-weighted effective decay,
      for groups that decay.
    - ``weight_norm/total``, ``effective_decay/total``: the same over every logged parameter
      (the decay over those that have a value: parameters without optimizer state yet, or
      under an optimizer wd-guard does not know, are left out).

    No effective-decay key is logged for optimizers whose update rule wd-guard does not know.

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
        #: Say once, for groups with coupled adaptive decay (WD101), which AdamW weight_decay
        #: removes as much per step; the guard turns it off when WD101 is ignored.
        self.hint_switch = True
        self._plan: Optional[StatsPlan] = None
        self._every = 1
        self._last_step = -1
        self._rank_zero = True
        self._optimizers: List[Any] = []
        self._warned: set = set()

    def setup(self, trainer: Any, pl_module: Any) -> None:
        """Precompute names, keys, optimizer mapping and cadence; call once at ``on_train_start``.

        Without a logger nothing is prepared, and no logging step computes anything.
        """
        every = self.log_every_n_steps or getattr(trainer, "log_every_n_steps", None) or 50
        self._every = int(every)
        self._rank_zero = bool(getattr(trainer, "is_global_zero", True))
        self._optimizers = list(trainer.optimizers)
        self._last_step = -1
        self._plan = self._new_plan(pl_module) if trainer.loggers else None
        if self._plan is None:
            return
        notes = list(self._plan.notes)
        if self._plan.dropped:
            notes.append(f"max_series={self.max_series}: {self._plan.dropped} smaller series are not logged (totals still cover them)")
        for note in notes:
            self._warn_once(note, f"wd-guard weight stats: {note}", UserWarning)

    def on_train_batch_end(self, trainer: Any, pl_module: Any) -> None:
        """Log at the steps Lightning logs its own training metrics at, every ``log_every_n_steps``."""
        step = _lightning_step(trainer)
        if (step + 1) % self._every or step == self._last_step or self._plan is None:
            return
        if _accumulating(trainer):  # the weights change on the window's last batch
            return
        self._last_step = step
        self._log(trainer, pl_module, step)

    def compute(self, trainer: Any, pl_module: Any) -> Dict[str, float]:
        """The metrics a logging step would log now (every rank of a sharded run must call it)."""
        if self._plan is None or list(trainer.optimizers) != self._optimizers:
            self.setup(trainer, pl_module)
            self._plan = self._plan or self._new_plan(pl_module)
        return self._plan.compute()

    def _new_plan(self, pl_module: Any) -> StatsPlan:
        return StatsPlan(
            pl_module,
            self._optimizers,
            per_module=self.per_module,
            include=self.include,
            max_series=self.max_series,
            totals=True,
            dashboard=True,
            prefix=self.prefix,
        )

    def _log(self, trainer: Any, pl_module: Any, step: int) -> None:
        metrics = self.compute(trainer, pl_module)
        assert self._plan is not None
        # Every rank computes (the weights are the same under DDP), so every rank's callbacks
        # see the totals: EarlyStopping and ModelCheckpoint decide together.
        shared = getattr(trainer, "callback_metrics", None)
        if isinstance(shared, dict):
            shared.update({key: torch.tensor(metrics[key]) for key in self._plan.total_keys if key in metrics})
        if not self._rank_zero:
            return
        self._report(step)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    def _report(self, step: int) -> None:
        """Once per run: parameters that hold NaN or inf, and the AdamW decay matching coupled decay."""
        assert self._plan is not None
        if self._plan.nonfinite:
            names = self._plan.nonfinite
            shown = ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
            self._warn_once("nonfinite", f"wd-guard weight stats: NaN or infinite weights at step {step} in {shown}", UserWarning)
        if not self.hint_switch:
            return
        said = {tuple(map(int, key.split(":")[1:])) for key in self._warned if key.startswith("switch:")}
        for (i, j), rate in self._plan.varying_medians(exclude=said).items():
            group = self._plan.optimizers[i].param_groups[j]
            lr = float(group["lr"])
            self._warn_once(
                f"switch:{i}:{j}",
                f"wd-guard weight stats: WD101 optimizer {i} ({type(self._plan.optimizers[i]).__name__}), group {j}: at step "
                f"{step} coupled decay removes {rate:.3g} of the median decayed weight per step; "
                f"AdamW(lr={lr:g}, weight_decay={rate / lr:.3g}) removes the same, decoupled from the gradient scale",
                UserWarning,  # not a finding of its own: WD101 was warned at fit start
            )

    def _warn_once(self, key: str, text: str, category: type) -> None:
        if self._rank_zero and key not in self._warned:
            self._warned.add(key)
            warnings.warn(text, category, stacklevel=4)


def _lightning_step(trainer: Any) -> int:
    """The step Lightning logs its own training metrics at (``LearningRateMonitor`` logs there too).

    It counts training batches that ended an accumulation window, once per batch whatever
    the number of optimizers; a Trainer-like object without it gives its ``global_step``.
    """
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    step = getattr(loop, "_batches_that_stepped", None)
    return trainer.global_step if step is None else step


def _accumulating(trainer: Any) -> bool:
    """Whether this batch only accumulated gradients (Lightning logs its metrics after the step)."""
    module = getattr(trainer, "lightning_module", None)
    should_accumulate = getattr(getattr(trainer, "fit_loop", None), "_should_accumulate", None)
    return bool(getattr(module, "automatic_optimization", False) and should_accumulate is not None and should_accumulate())


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
