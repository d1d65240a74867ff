"""Jupyter notebooks as Python source: the code cells joined, and back again.

The code cells of a notebook are joined into one Python text, each followed by a boundary
comment line, so that the linter reads a notebook as it reads a ``.py`` file. IPython syntax is
kept out of the parser's way: a line that starts with ``%`` (a line magic), ``!`` (a shell
command), assigns one (``files = !ls``) or ends in ``?`` (help) becomes a ``pass`` statement that remembers the line, and a
cell that starts with a cell magic (``%%bash``, ``%%writefile``) is left out, except for the
magics that run the rest of the cell as Python (``%%time``, ``%%capture``, ...).

Positions in the joined text map back to the cell (1-based, counting every cell of the
notebook as Jupyter and ruff do) and the line in that cell. ``--fix`` edits the joined text and
:func:`rewrite` puts each changed cell's source back into the notebook; the rest of the file
(outputs, metadata, key order, indentation) is written as it was, and a notebook whose JSON
would not come back byte for byte is not rewritten at all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

BOUNDARY = "# wd-lint: end of notebook cell {index}"
_BOUNDARY = re.compile(r"^# wd-lint: end of notebook cell (\d+)$")
_MAGIC_MARK = "pass  # wd-lint: ipython "
# ``%magic``, ``!shell``, ``?help``, and ``files = !ls`` / ``t = %timeit -o f()`` assignments.
_MAGIC = re.compile(r"^(\s*)(?:[%!](?!=)|\?|[\w.]+(?:\s*,\s*[\w.]+)*\s*=\s*[%!](?!=))")
_HELP = re.compile(r"^\s*[\w.]+\?{1,2}\s*$")
_RESTORE = re.compile(r"^(\s*)" + re.escape(_MAGIC_MARK) + r"(.*)$")
# Cell magics that run the rest of the cell as Python.
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun", "debug", "memit", "snakeviz"})


class NotebookError(ValueError):
    """The file is not a notebook wd-lint can read; ``line``/``column`` point into its JSON."""

    def __init__(self, message: str, line: Optional[int] = None, column: Optional[int] = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Cells:
    """Where each code cell sits in the joined text: ``(cell number, first line, line count)``."""

    spans: Tuple[Tuple[int, int, int], ...]

    def locate(self, line: int) -> Tuple[Optional[int], int]:
        """The cell number and the line in that cell of a line of the joined text."""
        for number, first, count in self.spans:
            if first <= line < first + count:
                return number, line - first + 1
        return None, line


@dataclass(frozen=True)
class Notebook:
    """A parsed notebook and its code cells as one Python text."""

    document: Dict[str, Any]
    text: str
    cells: Cells


def load(data: bytes) -> Dict[str, Any]:
    """The notebook's JSON; raises NotebookError for anything that is not a notebook."""
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise NotebookError(f"cannot decode notebook as UTF-8: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise NotebookError(f"invalid notebook JSON: {exc.msg}", exc.lineno, exc.colno) from None
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        raise NotebookError("not a notebook: no list of cells")
    return document


def read(data: bytes) -> Notebook:
    """The code cells of notebook bytes as one Python text, with the map back to cells."""
    document = load(data)
    parts: List[str] = []
    spans: List[Tuple[int, int, int]] = []
    line = 1
    for index, cell in enumerate(document["cells"]):
        source = _code(cell)
        if source is None:
            continue
        body = python_lines(source)
        spans.append((index + 1, line, len(body)))
        parts.extend(line_text + "\n" for line_text in body)
        parts.append(BOUNDARY.format(index=index) + "\n")
        line += len(body) + 1
    return Notebook(document, "".join(parts), Cells(tuple(spans)))


def _code(cell: Any) -> Optional[str]:
    """The source of a code cell, or None for other cells and cells of another language."""
    if not isinstance(cell, dict) or cell.get("cell_type") != "code":
        return None
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(part for part in source if isinstance(part, str))
    if not isinstance(source, str):
        return None
    first = source.lstrip().split("\n", 1)[0]
    if first.startswith("%%") and first[2:].split(" ", 1)[0].strip() not in PYTHON_CELL_MAGICS:
        return None
    return source


def python_lines(source: str) -> List[str]:
    """The lines of a cell with IPython syntax replaced by ``pass`` statements."""
    return [_python_line(line) for line in source.split("\n")] if source else [""]


def _python_line(line: str) -> str:
    line = line.rstrip("\r")
    match = _MAGIC.match(line)
    if match is not None or _HELP.match(line):
        indent = line[: len(line) - len(line.lstrip())]
        return indent + _MAGIC_MARK + line[len(indent):]
    return line


def split(text: str, count: int) -> List[str]:
    """The cell sources of a joined text (as :func:`read` made it, possibly edited since), with
    IPython lines restored; raises NotebookError when the boundaries are no longer intact."""
    sources: List[str] = []
    current: List[str] = []
    for line in text.split("\n"):
        match = _BOUNDARY.match(line)
        if match is not None:
            sources.append("\n".join(_restore(item) for item in current))
            current = []
        else:
            current.append(line)
    if len(sources) != count or any(item for item in current):
        raise NotebookError("the cell boundaries changed while fixing")
    return sources


def _restore(line: str) -> str:
    match = _RESTORE.match(line)
    return match.group(1) + match.group(2) if match is not None else line


# -- writing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """How the notebook's JSON was written, found by writing it again and comparing."""

    indent: Optional[int]
    ensure_ascii: bool
    newline: bool


def style_of(document: Dict[str, Any], data: bytes) -> Optional[Style]:
    """The JSON style that reproduces ``data`` exactly, or None when none does."""
    original = data.decode("utf-8")
    for indent in (1, 2, 4, None):
        for ensure_ascii in (False, True):
            written = _dumps(document, Style(indent, ensure_ascii, False))
            if original == written or original == written + "\n":
                return Style(indent, ensure_ascii, original.endswith("\n") and not written.endswith("\n"))
    return None


def _dumps(document: Dict[str, Any], style: Style) -> str:
    text = json.dumps(document, indent=style.indent, ensure_ascii=style.ensure_ascii)
    return text + "\n" if style.newline else text


def rewrite(data: bytes, fixed_text: str) -> bytes:
    """The notebook bytes with the code cells replaced by those of ``fixed_text`` (the joined
    text of :func:`read` after fixing). Only the sources of changed cells change; raises
    NotebookError when the notebook's JSON cannot be written back byte-stable."""
    notebook = read(data)
    style = style_of(notebook.document, data)
    if style is None:
        raise NotebookError("cannot rewrite this notebook without reformatting its JSON; fix it by hand")
    sources = split(fixed_text, len(notebook.cells.spans))
    cells = notebook.document["cells"]
    for (number, _, _), source in zip(notebook.cells.spans, sources):
        cell = cells[number - 1]
        old = cell["source"]
        if ("".join(old) if isinstance(old, list) else old) != source:
            cell["source"] = source.splitlines(keepends=True) if isinstance(old, list) else source
    return _dumps(notebook.document, style).encode("utf-8")
