"""wd-lint reports exactly the marked lines of examples/bad_optimizers.py, with their codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import List, Set, Tuple

from wd_guard.catalogue import iter_rules

from docs_helpers import EXAMPLES

BAD = EXAMPLES / "bad_optimizers.py"
WD_LINT = str(Path(sys.executable).with_name("wd-lint"))  # the console script, run by this interpreter
MARKER = re.compile(r"# wd-lint( opt-in)?: (WD\d+(?: WD\d+)*)\s*$")


def expected(opt_in: bool) -> Set[Tuple[int, str]]:
    """(line, code) pairs from the ``# wd-lint: CODE`` comments of the example."""
    pairs = set()
    for number, line in enumerate(BAD.read_text().splitlines(), start=1):
        match = MARKER.search(line)
        if match and (opt_in or not match.group(1)):
            pairs.update((number, code) for code in match.group(2).split())
    return pairs


def lint(*options: str) -> List[dict]:
    result = subprocess.run([sys.executable, WD_LINT, "--format", "json", *options, str(BAD)], capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_every_default_static_rule_is_marked_in_the_example():
    marked = {code for _, code in expected(opt_in=False)}
    assert marked == {rule.code for rule in iter_rules("static") if rule.static_default}
    opt_in = {code for _, code in expected(opt_in=True)} - marked
    assert opt_in == {rule.code for rule in iter_rules("static") if not rule.static_default}


def test_default_rules_report_exactly_the_marked_lines():
    findings = lint()
    assert {(f["line"], f["code"]) for f in findings} == expected(opt_in=False)
    assert len(findings) == len(expected(opt_in=False))  # no line reported twice for one code


def test_opt_in_rule_reports_its_marked_line():
    findings = lint("--extend-select", "WD204")
    assert {(f["line"], f["code"]) for f in findings} == expected(opt_in=True)


def test_findings_carry_the_catalogue_severity_and_the_path():
    severities = {rule.code: rule.severity for rule in iter_rules()}
    for finding in lint():
        assert finding["severity"] == severities[finding["code"]]
        assert Path(finding["path"]).resolve() == BAD
