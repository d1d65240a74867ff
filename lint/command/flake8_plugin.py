"""wd-lint as a flake8 plugin: ``flake8 --select WD`` reports the same findings as ``wd-lint``.

flake8 owns selection, ``# noqa`` and per-file ignores here. The plugin runs the rules that
wd-lint runs by default; an opt-in rule runs too when flake8's ``--select`` or
``--extend-select`` (or ``select`` / ``extend-select`` in its configuration) names its code or
its family (``WD204``, ``WD2``), as it would any other code; ``WD`` alone, the usual way to
turn the plugin on, keeps to the defaults. ``--wd-extend-select WD204`` adds opt-in rules too. A file without the rules' vocabulary is skipped before any
parse. flake8 columns are 0-based, so each column is one less than wd-lint prints. A file that
libcst cannot parse yields nothing: flake8 reports syntax errors itself (E999).
"""

from __future__ import annotations

import ast
from typing import Any, ClassVar, FrozenSet, Iterator, Sequence, Tuple, Type

from wd_guard import __version__
from wd_guard.lint.files.settings import ConfigError, check_selectors, default_codes, expand


class WeightDecayChecker:
    """The flake8 entry point ``WD``: one instance per file, ``run`` yields the findings."""

    name = "wd-guard"
    version = __version__
    extend_select: ClassVar[FrozenSet[str]] = frozenset()

    def __init__(self, tree: ast.AST, lines: Sequence[str], filename: str) -> None:
        self.tree = tree
        self.lines = lines
        self.filename = filename

    @classmethod
    def add_options(cls, option_manager: Any) -> None:
        option_manager.add_option(
            "--wd-extend-select",
            default="",
            parse_from_config=True,
            comma_separated_list=True,
            help="wd-lint codes to run in addition to the default ones (e.g. WD204)",
        )

    @classmethod
    def parse_options(cls, manager_or_options: Any, options: Any = None, args: Any = None) -> None:
        """Read ``--wd-extend-select`` (flake8 passes ``(manager, options, args)``)."""
        options = manager_or_options if options is None else options
        try:
            selectors = check_selectors(list(getattr(options, "wd_extend_select", None) or []), "--wd-extend-select")
        except ConfigError as exc:
            raise SystemExit(f"wd-guard: {exc}") from None
        named = flake8_selected(options)
        cls.extend_select = frozenset().union(*(expand(s) for s in (*selectors, *named)))

    def run(self) -> Iterator[Tuple[int, int, str, Type["WeightDecayChecker"]]]:
        from wd_guard.lint.analysis.engine import lint_source, might_matter
        from wd_guard.lint.analysis.workers import call_with_deep_stack

        codes = default_codes() | self.extend_select
        source = "".join(self.lines)
        if not might_matter(source.encode("utf-8", "surrogatepass"), select=codes):
            return
        try:
            diagnostics = call_with_deep_stack(lambda: lint_source(source, self.filename, select=codes))
        except Exception:  # a parse error (flake8 has its own E999) or a file libcst cannot read
            return
        for diagnostic in diagnostics:
            message = f"{diagnostic.code} {diagnostic.message}"
            yield diagnostic.line, max(diagnostic.column - 1, 0), message, type(self)


def flake8_selected(options: Any) -> Tuple[str, ...]:
    """The wd-lint codes and families (``WD204``, ``WD2``) that flake8's ``select`` and
    ``extend-select`` name; flake8 has checked their syntax, unknown codes are passed over."""
    named = []
    for attribute in ("select", "extend_select"):
        for value in getattr(options, attribute, None) or ():
            selector = str(value).strip().upper()
            if len(selector) > 2 and selector.startswith("WD") and selector[2:].isdigit():
                try:
                    named.extend(check_selectors([selector], f"flake8 --{attribute.replace('_', '-')}"))
                except ConfigError:
                    continue
    return tuple(named)
