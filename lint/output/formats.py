"""How ``wd-lint`` shows what it found: text, JSON, SARIF 2.1.0, GitHub annotations, statistics.

Diagnostics go to stdout. Files that could not be linted go to stderr (except in the GitHub
format, where they become ``::error`` annotations); SARIF also lists them in
``invocations[0].toolExecutionNotifications``. File names and messages are escaped for each format: control
characters never reach a terminal, JSON is ASCII, SARIF URIs are percent-encoded bytes.
"""

from __future__ import annotations

import collections
import json
import os
import re
import urllib.parse
from typing import Any, Dict, Iterable, List, Optional, Sequence, TextIO, Tuple

from wd_guard import __version__
from wd_guard.catalogue import Rule, get_rule, iter_rules
from wd_guard.lint.diagnostic import Diagnostic, Fix
from wd_guard.lint.diagnostic import Problem

FORMATS = ("text", "json", "sarif", "github")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters and undecodable bytes shown as escapes, one line."""
    text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def location(path: str, line: Any = None, column: Any = None, cell: Any = None) -> str:
    """``path:line:col`` (or less when the position is unknown), printable; in a notebook
    ``path:cell N:line:col``, as ruff writes it."""
    parts = [printable(path)] + ([f"cell {cell}"] if cell is not None else [])
    parts += [str(v) for v in (line, column) if v is not None]
    return ":".join(parts) if line is not None else parts[0]


def format_text(diagnostics: Sequence[Diagnostic]) -> str:
    """One ``path:line:col: CODE message`` line per diagnostic (1-based line and column)."""
    return "".join(f"{location(d.path, d.line, d.column, d.cell)}: {d.code} {printable(d.message)}\n" for d in diagnostics)


def format_problems(problems: Sequence[Problem]) -> str:
    """One ``path[:line:col]: error: reason`` line per file that could not be linted."""
    return "".join(f"{location(p.path, p.line, p.column, p.cell)}: error: {printable(p.reason)}\n" for p in problems)


def diagnostic_dict(diagnostic: Diagnostic) -> Dict[str, Any]:
    """The JSON object for one diagnostic: the fields DESIGN.md fixes, then those of ruff's
    JSON (``name``, ``url``, ``fix``, ``noqa_row``: the line a ``# noqa`` goes on); a
    notebook's also has ``cell`` (1-based), and its lines are lines of that cell."""
    rule = get_rule(diagnostic.code)
    found: Dict[str, Any] = {
        "code": diagnostic.code,
        "severity": diagnostic.severity,
        "message": diagnostic.message,
        "path": diagnostic.path,
        "line": diagnostic.line,
        "column": diagnostic.column,
        "end_line": diagnostic.end_line,
        "end_column": diagnostic.end_column,
        "name": rule.name,
        "url": rule.url,
        "fix": fix_dict(diagnostic.fix),
        "noqa_row": diagnostic.line,
    }
    if diagnostic.cell is not None:
        found["cell"] = diagnostic.cell
    return found


def fix_dict(fix: Optional[Fix]) -> Optional[Dict[str, Any]]:
    """A fix as ruff's JSON shows it: applicability, message, and edits with 1-based positions."""
    if fix is None:
        return None
    return {
        "applicability": "unsafe" if fix.unsafe else "safe",
        "message": fix.title,
        "edits": [
            {"content": edit.content, "location": _position(edit.location), "end_location": _position(edit.end_location)}
            for edit in fix.edits
        ],
    }


def _position(where: Optional[Tuple[int, int]]) -> Optional[Dict[str, int]]:
    return None if where is None else {"row": where[0], "column": where[1]}


def format_json(diagnostics: Sequence[Diagnostic]) -> str:
    """A JSON list of diagnostic objects; ASCII only, so any file name survives."""
    return json.dumps([diagnostic_dict(d) for d in diagnostics], indent=2, ensure_ascii=True) + "\n"


def statistics(diagnostics: Iterable[Diagnostic]) -> List[Tuple[str, int]]:
    """(code, count) pairs, most frequent first, then by code."""
    counts = collections.Counter(d.code for d in diagnostics)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def format_statistics(diagnostics: Sequence[Diagnostic], fmt: str) -> str:
    """Counts per code as an aligned table, or as JSON objects with code, name and count."""
    rows = statistics(diagnostics)
    if fmt == "json":
        items = [{"code": code, "name": get_rule(code).name, "count": count} for code, count in rows]
        return json.dumps(items, indent=2, ensure_ascii=True) + "\n"
    width = max((len(str(count)) for _, count in rows), default=1)
    return "".join(f"{count:>{width}}  {code}  {get_rule(code).name}\n" for code, count in rows)


def format_github(diagnostics: Sequence[Diagnostic], problems: Sequence[Problem]) -> str:
    """GitHub Actions workflow commands: one annotation per diagnostic and per problem."""
    lines = []
    for d in diagnostics:
        rule = get_rule(d.code)
        props = {"file": d.path, "line": d.line, "col": d.column, "endLine": d.end_line, "endColumn": d.end_column}
        props["title"] = f"{d.code} {rule.name}" + (f" (cell {d.cell})" if d.cell is not None else "")
        lines.append(_workflow_command(_GITHUB_LEVEL[rule.severity], props, d.message))
    for p in problems:
        props = {"file": p.path, "line": p.line, "col": p.column, "title": f"wd-lint {p.kind}"}
        lines.append(_workflow_command("error", props, p.reason))
    return "".join(line + "\n" for line in lines)


def _workflow_command(level: str, props: Dict[str, Any], message: str) -> str:
    fields = ",".join(f"{key}={_escape_property(str(value))}" for key, value in props.items() if value is not None)
    return f"::{level} {fields}::{_escape_data(message)}"


def _escape_data(value: str) -> str:
    # The escapes GitHub's runner undoes (toolkit command.ts); every other control character
    # (ESC, TAB, ...) would reach the log raw, so it is shown as an escape, as in text output.
    return printable(value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def sarif_uri(path: str) -> str:
    """A relative URI reference for ``path`` (absolute paths become ``file://`` URIs)."""
    raw = os.fsencode(path).replace(os.sep.encode(), b"/")
    quoted = urllib.parse.quote(raw, safe="/")
    return "file://" + quoted if os.path.isabs(path) else quoted


def sarif_rule(rule: Rule) -> Dict[str, Any]:
    """A ``reportingDescriptor`` with the catalogue's texts."""
    sections = rule.sections()
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.format_summary()},
        "fullDescription": {"text": sections.get("What it does", rule.format_summary())},
        "help": {"text": rule.explain(), "markdown": rule.explain()},
        "helpUri": rule.url,
        "defaultConfiguration": {"level": _SARIF_LEVEL[rule.severity]},
        "properties": {"tags": ["weight-decay", "pytorch"], "precision": "high"},
    }


def _region(line: Any, column: Any, end_line: Any = None, end_column: Any = None) -> Dict[str, int]:
    region: Dict[str, int] = {}
    if isinstance(line, int) and line >= 1:
        region["startLine"] = line
        if isinstance(column, int) and column >= 1:
            region["startColumn"] = column
        if isinstance(end_line, int) and end_line >= line and isinstance(end_column, int) and end_column >= 1:
            if end_line > line or end_column >= region.get("startColumn", 1):
                region.update(endLine=end_line, endColumn=end_column)
    return region


def _sarif_location(path: str, region: Dict[str, int]) -> Dict[str, Any]:
    physical: Dict[str, Any] = {"artifactLocation": {"uri": sarif_uri(path)}}
    if region:
        physical["region"] = region
    return {"physicalLocation": physical}


def sarif_log(diagnostics: Sequence[Diagnostic], problems: Sequence[Problem]) -> Dict[str, Any]:
    """A SARIF 2.1.0 log with one run, as GitHub code scanning accepts it."""
    rules = list(iter_rules("static"))
    index = {rule.code: i for i, rule in enumerate(rules)}
    results = [
        {
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": _SARIF_LEVEL[d.severity],
            "message": {"text": d.message},
            "locations": [_sarif_location(d.path, _region(d.line, d.column, d.end_line, d.end_column))],
            **({"properties": {"cell": d.cell}} if d.cell is not None else {}),
        }
        for d in diagnostics
    ]
    notifications = [
        {
            "level": "error",
            "message": {"text": p.reason},
            "descriptor": {"id": p.kind},
            "locations": [_sarif_location(p.path, _region(p.line, p.column))],
        }
        for p in problems
    ]
    driver = {"name": "wd-lint", "version": __version__, "semanticVersion": __version__}
    driver["rules"] = [sarif_rule(rule) for rule in rules]
    run = {
        "tool": {"driver": driver},
        "columnKind": "unicodeCodePoints",
        "results": results,
        "invocations": [{"executionSuccessful": not problems, "toolExecutionNotifications": notifications}],
    }
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}


def format_sarif(diagnostics: Sequence[Diagnostic], problems: Sequence[Problem]) -> str:
    """The SARIF log as ASCII JSON text."""
    return json.dumps(sarif_log(diagnostics, problems), indent=2, ensure_ascii=True) + "\n"


def write_report(
    diagnostics: Sequence[Diagnostic], problems: Sequence[Problem], fmt: str, out: TextIO, err: TextIO
) -> None:
    """Write diagnostics in ``fmt`` to ``out``; problems to ``err`` unless the format carries them."""
    if fmt == "sarif":
        out.write(format_sarif(diagnostics, problems))
    elif fmt == "github":
        out.write(format_github(diagnostics, problems))
    else:
        out.write(format_json(diagnostics) if fmt == "json" else format_text(diagnostics))
    if fmt != "github":
        err.write(format_problems(problems))
