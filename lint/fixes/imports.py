"""Where an added import goes: where isort and ruff's import sorting would put it.

Fixes that need a module add ``import module`` to the file. It joins the third-party section
of the file's leading imports in sorted order, or starts that section, so that the project's
import sorter leaves the fixed file as it is. A module is standard library when Python lists
it (``sys.stdlib_module_names``), local when imported relatively, third-party otherwise.
"""

from __future__ import annotations

import functools
import os
import sys
import sysconfig
from typing import FrozenSet, List, Optional, Sequence, Tuple, Union

import libcst as cst

from wd_guard.lint.analysis.names import dotted


def import_placement(module: cst.Module, name: str) -> Optional[Tuple[cst.CSTNode, bool, str]]:
    """Where ``import name`` goes, as isort and ruff would sort it: ``(anchor, before, text)``.

    Among the file's leading imports it joins the third-party section in order (plain
    ``import`` lines first, then ``from`` imports, by module name); without third-party
    imports it starts that section after the standard-library ones (or before the relative
    ones), set off by a blank line. A file without leading imports gets it after its docstring,
    else before its first statement."""
    newline = module.default_newline
    line = f"import {name}{newline}"
    sections = _leading_imports(module)
    third = [(statement, key) for statement, section, key in sections if section == _THIRD_PARTY]
    if third:
        wanted = (0, name.lower())
        for statement, key in third:
            if key > wanted:
                return statement, True, line
        return third[-1][0], False, line
    earlier = [statement for statement, section, _ in sections if section < _THIRD_PARTY]
    if earlier:
        return earlier[-1], False, newline + line
    if sections:
        return sections[0][0], True, line + newline
    body: Sequence[Union[cst.SimpleStatementLine, cst.BaseCompoundStatement]] = module.body
    if not body:
        return None
    if _is_docstring(body[0]):
        return body[0], False, line
    decorators = getattr(body[0], "decorators", ())
    return (decorators[0] if decorators else body[0]), True, line


_FUTURE, _STDLIB, _THIRD_PARTY, _LOCAL = range(4)


def _leading_imports(module: cst.Module) -> List[Tuple[cst.CSTNode, int, Tuple[int, str]]]:
    """The import lines at the top of the file (after its docstring): each with its isort
    section and its sort key within the section."""
    found = []
    for index, statement in enumerate(module.body):
        if _is_import_line(statement):
            small = statement.body[0]  # type: ignore[attr-defined]
            found.append((statement, *_section(small)))
        elif not (index == 0 and _is_docstring(statement)):
            break
    return found


def _section(small: cst.BaseSmallStatement) -> Tuple[int, Tuple[int, str]]:
    if isinstance(small, cst.ImportFrom):
        if small.relative:
            return _LOCAL, (1, "")
        module = dotted(small.module) if small.module is not None else ""
        return _kind(module, _FUTURE if module == "__future__" else None), (1, module.lower())
    names = small.names  # type: ignore[attr-defined]
    module = dotted(names[0].name) or ""
    return _kind(module), (0, module.lower())


def _kind(module: str, known: Optional[int] = None) -> int:
    if known is not None:
        return known
    return _STDLIB if module.partition(".")[0] in _stdlib_names() else _THIRD_PARTY


@functools.lru_cache(maxsize=1)
def _stdlib_names() -> FrozenSet[str]:
    """The standard library's top-level modules (listed by Python 3.10+, else found on disk)."""
    listed = getattr(sys, "stdlib_module_names", None)
    if listed is not None:
        return frozenset(listed)
    folder = sysconfig.get_paths()["stdlib"]  # pragma: no cover - Python 3.9
    names = {entry.partition(".")[0] for entry in os.listdir(folder) if entry != "site-packages"}
    return frozenset(names | set(sys.builtin_module_names))


def _is_import_line(statement: cst.CSTNode) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body
    )


def _is_docstring(statement: cst.CSTNode) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    return isinstance(small, cst.Expr) and isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString))
