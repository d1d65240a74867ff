"""The static engine: a cheap test on the raw bytes, then one parse and one pass of every rule.

:func:`might_matter` says from the bytes alone whether any rule could fire (see
``vocabulary``); :func:`lint_source` parses what is left once and runs every rule in one
batched pass (see ``analysis``). This module stays light: the pre-filter loads neither libcst
nor the rules, so a run over files without optimizer vocabulary (a pre-commit hook on an
unrelated change) never pays for importing the parser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Collection, List, Optional, Union

from wd_guard.lint.intake.vocabulary import might_matter

if TYPE_CHECKING:  # pragma: no cover
    import libcst as cst

    from wd_guard.lint.diagnostic import Diagnostic

__all__ = ["lint_source", "might_matter", "parse"]

_HEAVY = ("build_context", "locate", "parse_and_check")


def lint_source(
    source: Union[str, bytes], path: str = "<string>", *, select: Optional[Collection[str]] = None
) -> List["Diagnostic"]:
    """Every finding of the selected rules in ``source``, sorted by position.

    ``select=None`` runs every rule the catalogue turns on by default; otherwise only the
    given codes (an opt-in rule such as WD204 runs only when selected). Lines and columns
    are 1-based; each diagnostic carries the rule's fix when it offers one. Raises
    ``libcst.ParserSyntaxError`` when ``source`` does not parse.
    """
    from wd_guard.lint.analysis import parse as analysis

    return analysis.lint(source, path, select=select)


def parse(source: Union[str, bytes]) -> "cst.Module":
    """The libcst module for ``source``; every failure is a ``libcst.ParserSyntaxError``."""
    from wd_guard.lint.analysis import parse as analysis

    return analysis.parse(source)


def __getattr__(name: str) -> Any:
    if name in _HEAVY:
        from wd_guard.lint.analysis import parse as analysis

        return getattr(analysis, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
