"""wd-guard: catch weight-decay mistakes in PyTorch training code.

``import wd_guard`` is light: every public name loads on first use, so the linter and the
catalogue work without torch and Lightning, and the ``wd-lint`` command starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict

__all__ = [
    "Finding",
    "WeightDecayGuard",
    "WeightDecayWarning",
    "__version__",
    "audit",
    "param_groups",
    "weight_stats",
]

__version__ = "0.1.0"

# Public name -> module that defines it; imported on first attribute access.
_LAZY: Dict[str, str] = {
    "Finding": "wd_guard.findings",
    "WeightDecayWarning": "wd_guard.findings",
    "WeightDecayGuard": "wd_guard.callback",
    "audit": "wd_guard.auditing",
    "param_groups": "wd_guard.groups",
    "weight_stats": "wd_guard.stats",
}

_EXTRA_HINT = "pip install 'wd-guard[lightning]'"

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from wd_guard.auditing import audit
    from wd_guard.callback import WeightDecayGuard
    from wd_guard.findings import Finding, WeightDecayWarning
    from wd_guard.groups import param_groups
    from wd_guard.stats import weight_stats


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'wd_guard' has no attribute {name!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("torch", "lightning", "torchmetrics"):
            raise ImportError(
                f"wd_guard.{name} needs {exc.name!r}, which is not installed: {_EXTRA_HINT}"
            ) from exc
        raise
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
