"""Settings for ``wd-lint``: ``[tool.wd-lint]`` in pyproject.toml, and which codes run.

A configuration is a ``wd-lint.toml`` (the keys at its top level) or a ``pyproject.toml``
with a ``[tool.wd-lint]`` table; in one folder, ``wd-lint.toml`` wins. Each file is linted
with the closest configuration in its folder or above (see ``hierarchy``); patterns in it are
relative to its folder::

    [tool.wd-lint]
    select = ["WD1", "WD210"]          # codes or prefixes, "ALL" for every static rule
    extend-select = ["WD204"]          # added to the defaults (or to select)
    ignore = ["WD302"]                 # removed afterwards
    exclude = ["generated/"]           # replaces the default excludes (SKIP_DIRS)
    extend-exclude = ["*_pb2.py"]      # added to them
    include = ["configs/**/*.yaml"]    # further files a folder walk lints (*.py and *.ipynb always)
    per-file-ignores = { "tests/*" = ["WD210"] }
    respect-gitignore = true           # skip what .gitignore and .ignore files name
    line-length = 88                   # fixes keep lines within it (default: [tool.ruff]'s
                                       # or [tool.black]'s line-length; none: no limit)
    max-file-size = "5MiB"             # larger files are skipped and reported
    max-file-lines = 100000            # so are longer ones
    timeout = 120                      # seconds one file may take to analyse or fix

Every value is checked before anything is linted; a bad one is a usage error (exit 2) whose
message names the file, the key and what was expected.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterable, Mapping, Optional, Tuple

from wd_guard.catalogue import iter_rules

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.9 and 3.10 only
    import tomli as tomllib

TABLE = "wd-lint"
OWN_FILE = "wd-lint.toml"
PYPROJECT = "pyproject.toml"
# Formatters whose line-length a fix keeps to when [tool.wd-lint] names none, in this order.
FORMATTER_TABLES = ("ruff", "black")
ALL = "ALL"
DEFAULT_MAX_FILE_SIZE = 5 * 1024 * 1024
DEFAULT_MAX_FILE_LINES = 100_000  # the parser takes about 10 kB and 0.3 ms a line, however short
DEFAULT_TIMEOUT = 120.0

_SELECTOR = re.compile(r"^[A-Z]+[0-9]*$")
_SIZE = re.compile(r"^\s*([0-9]+)\s*(B|KB|KIB|MB|MIB|GB|GIB)?\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 1000, "KIB": 1024, "MB": 1000**2, "MIB": 1024**2, "GB": 1000**3, "GIB": 1024**3}


class ConfigError(ValueError):
    """A setting that wd-lint cannot use; the message says where it came from and why."""


@dataclass(frozen=True)
class Layer:
    """One source of rule selection (the config file or the command line), applied in order."""

    select: Optional[Tuple[str, ...]] = None
    extend_select: Tuple[str, ...] = ()
    ignore: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """The validated ``[tool.wd-lint]`` table; ``root`` anchors its path patterns."""

    root: Path
    path: Optional[Path] = None
    layer: Layer = field(default_factory=Layer)
    exclude: Optional[Tuple[str, ...]] = None  # None: the default excludes
    extend_exclude: Tuple[str, ...] = ()
    include: Tuple[str, ...] = ()
    per_file_ignores: Tuple[Tuple[str, Tuple[str, ...]], ...] = ()
    respect_gitignore: bool = True
    line_length: Optional[int] = None
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    max_file_lines: int = DEFAULT_MAX_FILE_LINES
    timeout: float = DEFAULT_TIMEOUT


def static_codes() -> Tuple[str, ...]:
    """Every code the linter can report, opt-in rules included."""
    return tuple(rule.code for rule in iter_rules("static"))


def default_codes() -> FrozenSet[str]:
    """The codes that run when nothing is selected."""
    return frozenset(rule.code for rule in iter_rules("static") if rule.static_default)


def expand(selector: str) -> FrozenSet[str]:
    """The static codes that a validated selector (a code, a prefix or ``ALL``) stands for."""
    if selector == ALL:
        return frozenset(static_codes())
    return frozenset(code for code in static_codes() if code.startswith(selector))


def check_selectors(values: Any, where: str) -> Tuple[str, ...]:
    """Upper-cased selectors; raises ConfigError for a value that matches no catalogue code."""
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise ConfigError(f"{where}: expected a list of rule codes, got {_describe(values)}")
    known = [rule.code for rule in iter_rules("both")]
    checked = []
    for value in values:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected rule codes as strings, got {_describe(value)}")
        selector = value.strip().upper()
        if selector != ALL and not (_SELECTOR.match(selector) and any(c.startswith(selector) for c in known)):
            raise ConfigError(f"{where}: {value!r} matches no rule code; known codes: {', '.join(known)}, or ALL")
        checked.append(selector)
    return tuple(checked)


def resolve_codes(layers: Iterable[Layer]) -> FrozenSet[str]:
    """Apply each layer in turn: ``select`` replaces, ``extend_select`` adds, ``ignore`` removes."""
    codes = default_codes()
    for layer in layers:
        if layer.select is not None:
            codes = frozenset().union(*(expand(s) for s in layer.select))
        codes = codes.union(*(expand(s) for s in layer.extend_select))
        codes = codes.difference(*(expand(s) for s in layer.ignore))
    return codes


def parse_size(value: Any, where: str) -> int:
    """A size in bytes from an integer or a string such as ``"5MB"`` or ``"512KiB"``."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ConfigError(f"{where}: expected a positive size such as 5000000 or \"5MB\", got {_describe(value)}")
    return int(match.group(1)) * _UNITS[(match.group(2) or "B").upper()]


def parse_count(value: Any, where: str) -> int:
    """A positive whole number, from an integer or a string of digits."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{where}: expected a positive whole number, got {_describe(value)}")
    return value


def parse_timeout(value: Any, where: str) -> float:
    """A positive number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise ConfigError(f"{where}: expected a positive number of seconds, got {_describe(value)}")
    return float(value)


def config_in(folder: Path) -> Optional[Path]:
    """The configuration file of ``folder`` itself: its wd-lint.toml, else its pyproject.toml
    when that has a ``[tool.wd-lint]`` table."""
    own = folder / OWN_FILE
    if own.is_file():
        return own
    candidate = folder / PYPROJECT
    if candidate.is_file() and TABLE in _read_toml(candidate).get("tool", {}):
        return candidate
    return None


def find_config_file(start: Path) -> Optional[Path]:
    """The closest configuration file at or above the folder ``start``."""
    for folder in (start, *start.parents):
        found = config_in(folder)
        if found is not None:
            return found
    return None


def load_config(path: Optional[Path] = None, start: Optional[Path] = None) -> Config:
    """The configuration from ``path``, or from the closest configuration file above ``start``.

    A ``path`` named by the user must hold settings: a pyproject.toml without a
    ``[tool.wd-lint]`` table is a ConfigError, not silence."""
    start = (start or Path.cwd()).resolve()
    if path is None:
        path = find_config_file(start)
        if path is None:
            return Config(root=start)
    path = Path(path).resolve()
    data = _read_toml(path)
    if path.name != PYPROJECT:  # wd-lint.toml, or any file named with --config
        return parse_table(data, path, where=str(path))
    tool = data.get("tool", {})
    if not isinstance(tool, dict) or TABLE not in tool:
        raise ConfigError(f"{path}: no [tool.{TABLE}] table (a {OWN_FILE} holds the keys at its top level)")
    return parse_table(tool[TABLE], path, formatter=_formatter_line_length(tool, path))


def parse_table(table: Any, path: Path, where: Optional[str] = None, formatter: Optional[int] = None) -> Config:
    """Validate a settings table read from ``path`` (``[tool.wd-lint]`` or a wd-lint.toml);
    ``formatter`` is the line length a formatter's table of the same file sets, if any."""
    where = where or f"{path}: [tool.{TABLE}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table, got {_describe(table)}")
    _reject_unknown_keys(table, where)
    get = table.get
    layer = Layer(
        select=check_selectors(get("select"), f"{where} select") if "select" in table else None,
        extend_select=check_selectors(get("extend-select", []), f"{where} extend-select"),
        ignore=check_selectors(get("ignore", []), f"{where} ignore"),
    )
    return Config(
        root=path.parent,
        path=path,
        layer=layer,
        exclude=check_patterns(get("exclude"), f"{where} exclude") if "exclude" in table else None,
        extend_exclude=check_patterns(get("extend-exclude", []), f"{where} extend-exclude"),
        include=check_patterns(get("include", []), f"{where} include"),
        per_file_ignores=_per_file_ignores(get("per-file-ignores", {}), f"{where} per-file-ignores"),
        respect_gitignore=_boolean(get("respect-gitignore", True), f"{where} respect-gitignore"),
        line_length=parse_line_length(get("line-length"), f"{where} line-length") if "line-length" in table else formatter,
        max_file_size=parse_size(get("max-file-size", DEFAULT_MAX_FILE_SIZE), f"{where} max-file-size"),
        max_file_lines=parse_count(get("max-file-lines", DEFAULT_MAX_FILE_LINES), f"{where} max-file-lines"),
        timeout=parse_timeout(get("timeout", DEFAULT_TIMEOUT), f"{where} timeout"),
    )


def parse_line_length(value: Any, where: str) -> int:
    """A line length: an integer from 1 to 320 (ruff's range)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 320:
        raise ConfigError(f"{where}: expected a line length from 1 to 320, got {_describe(value)}")
    return value


def _formatter_line_length(tool: Mapping[str, Any], path: Path) -> Optional[int]:
    """``line-length`` from ``[tool.ruff]`` or ``[tool.black]``; a value wd-lint cannot use
    there is that tool's business, so it is passed over."""
    for name in FORMATTER_TABLES:
        table = tool.get(name)
        value = table.get("line-length") if isinstance(table, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 320:
            return value
    return None


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {_describe(value)}")
    return value


def check_patterns(values: Any, where: str) -> Tuple[str, ...]:
    """Glob patterns as non-empty strings without control characters."""
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise ConfigError(f"{where}: expected a list of glob patterns, got {_describe(values)}")
    for value in values:
        if not isinstance(value, str) or not value.strip() or any(ord(ch) < 32 for ch in value):
            raise ConfigError(f"{where}: expected non-empty glob patterns, got {_describe(value)}")
    return tuple(values)


_KEYS = (
    "select", "extend-select", "ignore", "exclude", "extend-exclude", "include", "per-file-ignores", "respect-gitignore",
    "line-length", "max-file-size", "max-file-lines", "timeout",
)


def _reject_unknown_keys(table: Mapping[str, Any], where: str) -> None:
    for key in table:
        if key not in _KEYS:
            close = difflib.get_close_matches(key.replace("_", "-"), _KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint} (known keys: {', '.join(_KEYS)})")


def _per_file_ignores(value: Any, where: str) -> Tuple[Tuple[str, Tuple[str, ...]], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table of pattern = [codes], got {_describe(value)}")
    pairs = []
    for pattern, codes in value.items():
        check_patterns([pattern], where)
        pairs.append((pattern, check_selectors(codes, f"{where} {pattern!r}")))
    return tuple(pairs)


def _read_toml(path: Path) -> Dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _describe(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{type(value).__name__} {text}"

