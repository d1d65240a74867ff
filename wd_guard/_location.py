"""Where the callback's warnings point: at the user's code or config, never into a library.

``warnings.warn(stacklevel=...)`` cannot know how deep Lightning calls a callback hook (it
differs between ``lightning.pytorch``, ``pytorch_lightning`` and ``LightningCLI``), so the
location is chosen here and given to ``warnings.warn_explicit``:

1. a finding points at the ``configure_optimizers`` the user wrote;
2. when ``LightningCLI`` injected the optimizer from a config file, at that file's
   ``optimizer:`` line;
3. otherwise (and for notes and the guard's own failures) at the innermost frame of the call
   stack outside wd-guard, Lightning, torch and jsonargparse: the user's ``trainer.fit(...)``
   or ``LightningCLI(...)`` call. The same idea as Python 3.12's ``skip_file_prefixes``.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from typing import Any, Optional, Tuple

Location = Tuple[str, int]

# Packages whose frames are never the user's code; only those already imported are looked up.
_LIBRARIES = ("wd_guard", "lightning", "pytorch_lightning", "lightning_fabric", "lightning_utilities", "torch", "jsonargparse")
_OPTIMIZER_KEY = re.compile(r"^\s*optimizer\s*:")


def finding_location(trainer: Any, pl_module: Any) -> Location:
    """Where a finding about the configured optimizers should point."""
    return _configure_optimizers(pl_module) or _cli_config(trainer) or caller_location()


def caller_location() -> Location:
    """The innermost frame on the call stack that belongs to none of the libraries."""
    skip = _library_dirs()
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<") and not os.path.abspath(filename).startswith(skip):
            return filename, frame.f_lineno
        frame = frame.f_back
    return "<wd-guard>", 0


def _library_dirs() -> Tuple[str, ...]:
    dirs = []
    for name in _LIBRARIES:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            dirs.append(os.path.dirname(os.path.abspath(path)) + os.sep)
    return tuple(dirs)


def _configure_optimizers(pl_module: Any) -> Optional[Location]:
    """The user's ``configure_optimizers``; None when a library provides or replaced it."""
    if "configure_optimizers" in vars(pl_module):  # set on the instance: LightningCLI's injection
        return None
    try:
        method = type(pl_module).configure_optimizers
        filename = inspect.getsourcefile(method)
        line = inspect.getsourcelines(method)[1]
    except (TypeError, OSError, AttributeError):
        return None
    if not filename or os.path.abspath(filename).startswith(_library_dirs()):
        return None
    return filename, line


def _cli_config(trainer: Any) -> Optional[Location]:
    """The ``optimizer:`` line of the config file LightningCLI read, when there is one."""
    for callback in getattr(trainer, "callbacks", ()):
        config = getattr(callback, "config", None) if type(callback).__name__ == "SaveConfigCallback" else None
        try:
            paths = [str(getattr(p, "absolute", p)) for p in (config.get("config") or ())] if config is not None else []
        except (AttributeError, TypeError):
            continue
        for path in paths:
            line = _optimizer_line(path)
            if line is not None:
                return path, line
    return None


def _optimizer_line(path: str) -> Optional[int]:
    try:
        with open(path, encoding="utf-8") as handle:
            for number, text in enumerate(handle, start=1):
                if _OPTIMIZER_KEY.match(text):
                    return number
    except (OSError, UnicodeDecodeError):
        return None
    return None
