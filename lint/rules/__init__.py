"""The static rules, registered explicitly: one class per catalogue code, in families."""

from __future__ import annotations

from typing import Collection, Optional, Tuple, Type

from wd_guard.catalogue import get_rule

from wd_guard.lint.rules.base import Invalid, LintRule
from wd_guard.lint.rules.optimizers import BlanketDecay, CoupledDecayAdaptive, ExcessiveDecay
from wd_guard.lint.rules.penalties import DoubleL2, L2PenaltyAdaptive
from wd_guard.lint.rules.sequential import DecayedScaleInvariant

__all__ = ["ALL_RULES", "Invalid", "LintRule", "rule_for", "rules_for"]

ALL_RULES: Tuple[Type[LintRule], ...] = (
    CoupledDecayAdaptive,
    BlanketDecay,
    ExcessiveDecay,
    DoubleL2,
    L2PenaltyAdaptive,
    DecayedScaleInvariant,
)

_BY_CODE = {rule.CODE: rule for rule in ALL_RULES}


def rule_for(code: str) -> Type[LintRule]:
    """The rule class for a catalogue code; ``KeyError`` when the linter has none."""
    return _BY_CODE[code.upper()]


def rules_for(select: Optional[Collection[str]] = None) -> Tuple[Type[LintRule], ...]:
    """The rules to run: those on by default, or exactly the selected codes (others ignored)."""
    if select is None:
        return tuple(rule for rule in ALL_RULES if get_rule(rule.CODE).static_default)
    chosen = {code.upper() for code in select}
    return tuple(rule for rule in ALL_RULES if rule.CODE in chosen)
