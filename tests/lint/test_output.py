"""Output formats: text, JSON per DESIGN.md, SARIF 2.1.0 for code scanning, GitHub annotations.

File names and messages may hold anything a file system allows; every format must keep them
intact (JSON, SARIF) or escaped (terminal text, workflow commands), never broken.
"""

from __future__ import annotations

import io
import json
import os
import re
import urllib.parse

import pytest

from wd_guard.catalogue import get_rule, iter_rules
from wd_guard.lint.output import formats as output
from wd_guard.lint.diagnostic import Diagnostic
from wd_guard.lint.diagnostic import SYNTAX, Problem

ODD_NAMES = [
    "plain.py",
    "with space/and,comma:colon.py",
    'quote"back\\slash.py',
    "new\nline.py",
    "carriage\rreturn.py",
    "percent%0A.py",
    "escape\x1b[31mred.py",
    "ünïcödé/模型.py",
    os.fsdecode(b"latin1-\xe9.py"),  # undecodable bytes arrive as lone surrogates
    "::error file=x::injected.py",
]


def diag(code="WD101", path="a.py", line=3, column=7, end_line=3, end_column=40, message=None, fix=None):
    text = message if message is not None else get_rule(code).format_summary()
    return Diagnostic(code, text, line, column, end_line, end_column, path, fix)


def test_text_line_per_diagnostic():
    text = output.format_text([diag(), diag("WD210", "b/c.py", 10, 1, 11, 5)])
    assert text.splitlines() == [
        f"a.py:3:7: WD101 {get_rule('WD101').format_summary()}",
        f"b/c.py:10:1: WD210 {get_rule('WD210').format_summary()}",
    ]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_text_never_lets_control_characters_through(name):
    text = output.format_text([diag(path=name, message="evil\n\x1b]0;title\x07 message")])
    assert text.count("\n") == 1 and text.endswith("\n")
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text[:-1])
    text.encode("utf-8")  # printable on any UTF-8 terminal, surrogates included


def test_problems_in_text():
    text = output.format_problems([Problem("x.py", SYNTAX, "syntax error: expected ')'", 4, 2), Problem("y.py", "unreadable", "cannot read: gone")])
    assert text.splitlines() == ["x.py:4:2: error: syntax error: expected ')'", "y.py: error: cannot read: gone"]


def test_json_has_exactly_the_designed_fields():
    [item] = json.loads(output.format_json([diag()]))
    assert item == {
        "code": "WD101",
        "severity": "error",
        "message": get_rule("WD101").format_summary(),
        "path": "a.py",
        "line": 3,
        "column": 7,
        "end_line": 3,
        "end_column": 40,
        "name": "coupled-decay-adaptive",
        "url": get_rule("WD101").url,
        "fix": None,
        "noqa_row": 3,
    }


def test_json_fix_has_ruffs_shape_with_positions_in_the_text():
    from wd_guard.lint.diagnostic import Edit, Fix

    text = "import torch\nopt = torch.optim.Adam(p, weight_decay=1e-2)\n"
    start = text.index("Adam(")
    fix = Fix("Replace Adam with AdamW", (Edit(start, start + 4, "AdamW"),)).located(text)
    [item] = json.loads(output.format_json([diag(fix=fix)]))
    assert item["fix"] == {
        "applicability": "unsafe",
        "message": "Replace Adam with AdamW",
        "edits": [{"content": "AdamW", "location": {"row": 2, "column": 19}, "end_location": {"row": 2, "column": 23}}],
    }


@pytest.mark.parametrize("name", ODD_NAMES)
def test_json_round_trips_any_name_and_message(name):
    message = 'he said "stop"\n\t\\ </script> \u2028'
    text = output.format_json([diag(path=name, message=message)])
    assert text.isascii()
    [item] = json.loads(text)
    assert item["path"] == name and item["message"] == message


def test_severity_comes_from_the_catalogue():
    items = json.loads(output.format_json([diag(code) for code in ("WD101", "WD210", "WD204")]))
    assert [item["severity"] for item in items] == [get_rule(c).severity for c in ("WD101", "WD210", "WD204")]


# -- SARIF ------------------------------------------------------------------------------------

# Property names that SARIF 2.1.0 defines for the objects wd-lint writes (OASIS SARIF 2.1.0,
# sections 3.13 sarifLog, 3.14 run, 3.18 tool, 3.19 toolComponent, 3.49 reportingDescriptor,
# 3.27 result, 3.28 location, 3.29 physicalLocation, 3.4 artifactLocation, 3.30 region,
# 3.20 invocation, 3.58 notification, 3.11 message). The schema forbids any other property.
ALLOWED = {
    "log": {"$schema", "version", "runs", "inlineExternalProperties", "properties"},
    "run": {"tool", "invocations", "results", "columnKind", "originalUriBaseIds", "artifacts", "properties", "language"},
    "driver": {"name", "version", "semanticVersion", "informationUri", "rules", "fullName", "organization", "properties"},
    "rule": {"id", "name", "shortDescription", "fullDescription", "help", "helpUri", "defaultConfiguration", "properties"},
    "result": {"ruleId", "ruleIndex", "level", "message", "locations", "kind", "partialFingerprints", "properties"},
    "physical": {"artifactLocation", "region"},
    "region": {"startLine", "startColumn", "endLine", "endColumn"},
    "invocation": {"executionSuccessful", "toolExecutionNotifications"},
    "notification": {"level", "message", "locations", "descriptor"},
}
LEVELS = {"none", "note", "warning", "error"}


def check_message(message):
    assert set(message) <= {"text", "markdown"} and isinstance(message["text"], str) and message["text"]


def check_location(location):
    assert set(location) == {"physicalLocation"}
    physical = location["physicalLocation"]
    assert set(physical) <= ALLOWED["physical"]
    uri = physical["artifactLocation"]["uri"]
    assert isinstance(uri, str) and uri and uri.isascii()
    assert not re.search(r"[\s\x00-\x1f\"<>\\^`{|}]", uri), uri  # a valid URI reference (RFC 3986)
    region = physical.get("region", {})
    assert set(region) <= ALLOWED["region"]
    assert all(isinstance(value, int) and value >= 1 for value in region.values())
    if "endLine" in region:
        assert region["endLine"] >= region["startLine"]
        if region["endLine"] == region["startLine"]:
            assert region["endColumn"] >= region.get("startColumn", 1)


def check_sarif(log):
    """The structure SARIF 2.1.0 and GitHub code scanning require of what wd-lint writes."""
    assert set(log) <= ALLOWED["log"] and log["version"] == "2.1.0" and isinstance(log["$schema"], str)
    assert len(log["runs"]) == 1
    run = log["runs"][0]
    assert set(run) <= ALLOWED["run"] and run["columnKind"] in {"utf16CodeUnits", "unicodeCodePoints"}
    driver = run["tool"]["driver"]
    assert set(run["tool"]) == {"driver"} and set(driver) <= ALLOWED["driver"] and driver["name"] == "wd-lint"
    ids = [rule["id"] for rule in driver["rules"]]
    assert len(ids) == len(set(ids))
    for rule in driver["rules"]:
        assert set(rule) <= ALLOWED["rule"]
        for key in ("shortDescription", "fullDescription", "help"):
            check_message(rule[key])
        assert rule["defaultConfiguration"]["level"] in LEVELS
    for result in run["results"]:
        assert set(result) <= ALLOWED["result"] and result["level"] in LEVELS
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        check_message(result["message"])
        assert len(result["locations"]) >= 1
        for location in result["locations"]:
            check_location(location)
    for invocation in run["invocations"]:
        assert set(invocation) <= ALLOWED["invocation"] and isinstance(invocation["executionSuccessful"], bool)
        for note in invocation["toolExecutionNotifications"]:
            assert set(note) <= ALLOWED["notification"] and note["level"] in LEVELS
            check_message(note["message"])
            for location in note["locations"]:
                check_location(location)


def test_sarif_structure_and_rules_from_the_catalogue():
    diagnostics = [diag(), diag("WD204", "pkg/m.py", 2, 3, 4, 1), diag("WD210", "b.py", 1, 1, 1, 1)]
    problems = [Problem("bad.py", SYNTAX, "syntax error: expected ')'", 3, 5)]
    log = json.loads(output.format_sarif(diagnostics, problems))
    check_sarif(log)
    run = log["runs"][0]
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    assert set(rules) == {rule.code for rule in iter_rules("static")}
    assert rules["WD101"]["help"]["text"] == get_rule("WD101").explain()
    assert rules["WD204"]["defaultConfiguration"]["level"] == "note"
    assert [r["level"] for r in run["results"]] == ["error", "note", "warning"]
    assert run["results"][0]["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 3, "startColumn": 7, "endLine": 3, "endColumn": 40,
    }
    assert run["invocations"][0]["executionSuccessful"] is False
    note = run["invocations"][0]["toolExecutionNotifications"][0]
    assert note["message"]["text"] == "syntax error: expected ')'"
    assert note["locations"][0]["physicalLocation"]["region"] == {"startLine": 3, "startColumn": 5}


def test_sarif_without_findings_is_valid_and_successful():
    log = json.loads(output.format_sarif([], []))
    check_sarif(log)
    assert log["runs"][0]["results"] == [] and log["runs"][0]["invocations"][0]["executionSuccessful"] is True


@pytest.mark.parametrize("name", ODD_NAMES)
def test_sarif_uris_encode_any_file_name(name):
    log = json.loads(output.format_sarif([diag(path=name)], []))
    check_sarif(log)
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert os.fsdecode(urllib.parse.unquote_to_bytes(uri)) == name


def test_sarif_absolute_paths_become_file_uris(tmp_path):
    path = str(tmp_path / "a b.py")
    log = output.sarif_log([diag(path=path)], [])
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri.startswith("file:///") and urllib.parse.unquote(uri[len("file://"):]) == path


def test_sarif_drops_an_inverted_end_instead_of_writing_an_invalid_region():
    log = output.sarif_log([diag(line=5, column=9, end_line=5, end_column=2)], [])
    region = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 5, "startColumn": 9}


# -- GitHub annotations -------------------------------------------------------------------------


def parse_command(line):
    """Undo GitHub's escaping the way the runner does (toolkit command.ts)."""
    match = re.fullmatch(r"::(\w+) ([^:]*)::(.*)", line)
    assert match, line

    def unescape(value):
        return value.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",").replace("%25", "%")

    props = dict(item.split("=", 1) for item in match.group(2).split(","))
    return match.group(1), {k: unescape(v) for k, v in props.items()}, unescape(match.group(3))


def test_github_annotations_map_severity_and_position():
    text = output.format_github([diag(), diag("WD210", "b.py", 2, 3, 2, 9), diag("WD204", "c.py", 1, 1, 1, 2)], [])
    commands = [parse_command(line) for line in text.splitlines()]
    assert [c[0] for c in commands] == ["error", "warning", "notice"]
    level, props, message = commands[0]
    assert props == {"file": "a.py", "line": "3", "col": "7", "endLine": "3", "endColumn": "40", "title": "WD101 coupled-decay-adaptive"}
    assert message == get_rule("WD101").format_summary()


@pytest.mark.parametrize("name", [n for n in ODD_NAMES if "\udce9" not in n])
def test_github_escaping_survives_any_name_and_message(name):
    message = "100% bad,\nsecond line: yes\r"
    text = output.format_github([diag(path=name, message=message)], [Problem(name, SYNTAX, "syntax error: a,b:c", 2)])
    lines = text.splitlines()
    assert len(lines) == 2  # nothing in a name or message can start a new command
    shown = name.replace("\x1b", "\\x1b")  # control characters other than line breaks: escaped
    _, props, parsed = parse_command(lines[0])
    assert props["file"] == shown and parsed == message
    level, props, parsed = parse_command(lines[1])
    assert (level, props["file"], props["line"], parsed) == ("error", shown, "2", "syntax error: a,b:c")


@pytest.mark.parametrize("control", ["\x1b", "\t", "\x00", "\x07", "\x08", "\x0b", "\x0c", "\x7f", "\x9b"])
def test_github_output_holds_no_control_character(control):
    name, text = f"a{control}b.py", f"before{control}[31mafter"
    out = output.format_github([diag(path=name, message=text)], [Problem(name, SYNTAX, text, 2)])
    assert out.count("\n") == 2 and out.endswith("\n")
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", out.replace("\n", "")), repr(out)
    assert control.encode("unicode_escape").decode("ascii") in out


def test_github_undecodable_name_is_escaped_not_fatal():
    name = os.fsdecode(b"bad-\xff.py")
    text = output.format_github([diag(path=name)], [])
    text.encode("utf-8")
    assert "bad-\\udcff.py" in text


# -- statistics and the writer ------------------------------------------------------------------


def test_statistics_count_and_order():
    diagnostics = [diag("WD210"), diag("WD101"), diag("WD210"), diag("WD302")]
    assert output.statistics(diagnostics) == [("WD210", 2), ("WD101", 1), ("WD302", 1)]
    assert output.format_statistics(diagnostics, "text").splitlines() == [
        "2  WD210  blanket-decay",
        "1  WD101  coupled-decay-adaptive",
        "1  WD302  excessive-decay",
    ]
    assert json.loads(output.format_statistics(diagnostics, "json"))[0] == {"code": "WD210", "name": "blanket-decay", "count": 2}


@pytest.mark.parametrize("fmt", output.FORMATS)
def test_writer_puts_problems_where_each_format_wants_them(fmt):
    out, err = io.StringIO(), io.StringIO()
    output.write_report([diag()], [Problem("bad.py", SYNTAX, "syntax error: x", 1, 1)], fmt, out, err)
    assert "WD101" in out.getvalue()
    assert ("bad.py" in err.getvalue()) is (fmt != "github")  # logs show them; SARIF carries them too
    assert ("bad.py" in out.getvalue()) is (fmt in ("sarif", "github"))
