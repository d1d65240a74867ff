"""Fixtures for the runtime tests: small real models and a LightningModule factory."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Iterator, List

import pytest

pytest.importorskip("lightning")

from runtime_models import GuardedModule, cnn, mlp, tiny_bert, tiny_gpt2  # noqa: E402

from wd_guard.findings import WeightDecayWarning  # noqa: E402


@pytest.fixture
def make_mlp() -> Callable[[], Any]:
    return mlp


@pytest.fixture
def make_cnn() -> Callable[[], Any]:
    return cnn


@pytest.fixture
def bert() -> Any:
    return tiny_bert()


@pytest.fixture
def gpt2() -> Any:
    return tiny_gpt2()


@pytest.fixture
def make_module() -> Callable[..., GuardedModule]:
    """``make_module(net, optimizer_factory, manual=False)``: a LightningModule for a real fit."""
    return GuardedModule


class WarningRecord:
    """The warnings caught during a test, with helpers for wd-guard's own."""

    def __init__(self, caught: List[warnings.WarningMessage]) -> None:
        self.caught = caught

    def guard(self) -> List[str]:
        """Messages of every WeightDecayWarning, in order."""
        return [str(w.message) for w in self.caught if issubclass(w.category, WeightDecayWarning)]

    def codes(self) -> List[str]:
        """Rule codes of the finding warnings, in order (notes and internal errors left out)."""
        return [text.split()[0] for text in self.guard() if text.startswith("WD")]

    def internal(self) -> List[str]:
        """Warnings about a step of the guard that failed."""
        return [text for text in self.guard() if "step failed" in text]


@pytest.fixture
def wd_warnings() -> Iterator[WarningRecord]:
    """Record every warning raised during the test."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield WarningRecord(caught)
