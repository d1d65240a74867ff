"""The result type of the runtime audit, and the warning category the callback emits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from wd_guard.catalogue import Severity, get_rule


class WeightDecayWarning(UserWarning):
    """Category of every warning wd-guard emits at run time; filter it like any warning."""


@dataclass(frozen=True)
class Finding:
    """One weight-decay mistake found in a real model and its optimizers.

    ``params`` holds every affected parameter by its qualified name from
    ``model.named_parameters()``; ``optimizer`` and ``group`` index the optimizer list and its
    ``param_groups`` (None when the finding concerns no single group).
    """

    code: str
    severity: Severity
    message: str
    params: Tuple[str, ...] = ()
    optimizer: Optional[int] = None
    group: Optional[int] = None

    @property
    def name(self) -> str:
        """The rule's name in the catalogue (``'decayed-bias'``)."""
        return get_rule(self.code).name

    def __str__(self) -> str:
        return f"{self.code} {self.message}"
