"""Fixes: expected rewrites, whole-file before/after pairs, and files written without loss."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wd_guard.lint.analysis.engine import lint_source, parse
from wd_guard.lint.fixes.apply import FixError, fix_file, fix_text
from wd_guard.lint.rules import ALL_RULES  # before rewrites: the rules import it
from wd_guard.lint.fixes import rewrites as fixes
from wd_guard.lint.rules.base import FixPlan, Replace

HERE = Path(__file__).parent
PAIRS = sorted((HERE / "fix_fixtures").glob("*_before.py"))
FIXTURES = sorted((HERE / "fixtures").glob("*.py"))
ALL_CODES = {rule.CODE for rule in ALL_RULES}
FIXABLE = {"WD101", "WD210"}

ADAM = "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)\n"
ADAM_FIXED = "import torch\nimport wd_guard\nopt = torch.optim.AdamW(wd_guard.param_groups(model, weight_decay=1e-2), lr=1e-3)\n"


@pytest.mark.parametrize("before", PAIRS, ids=lambda p: p.name)
def test_fix_turns_before_into_after(before):
    after = before.with_name(before.name.replace("_before", "_after")).read_text()
    result = fix_text(before.read_text(), str(before), select=ALL_CODES, unsafe=True)
    assert result.text == after
    parse(after)
    assert [d for d in lint_source(after, select=FIXABLE)] == []
    assert fix_text(after, select=ALL_CODES, unsafe=True).text == after


def test_there_are_fix_pairs_for_the_required_layouts():
    names = {path.name for path in PAIRS}
    assert {"multiline_call_before.py", "aliases_before.py", "lightning_module_before.py"} <= names
    assert all(path.with_name(path.name.replace("_before", "_after")).exists() for path in PAIRS)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixing_a_fixture_leaves_no_fixable_finding_and_is_idempotent(path):
    first = fix_text(path.read_text(), str(path), select=ALL_CODES, unsafe=True)
    parse(first.text)
    assert [d for d in first.remaining if d.fix is not None] == []
    second = fix_text(first.text, str(path), select=ALL_CODES, unsafe=True)
    assert second.text == first.text and second.applied == 0


def test_overlapping_fixes_are_applied_one_after_the_other():
    result = fix_text(ADAM, unsafe=True)
    assert result.text == ADAM_FIXED
    assert result.applied == 2
    assert [d.code for d in result.remaining] == []


def test_unsafe_fixes_need_the_unsafe_flag():
    result = fix_text(ADAM, unsafe=False)
    assert result.text == ADAM and result.applied == 0
    assert {d.code for d in result.remaining if d.fix is not None and d.fix.unsafe} == {"WD101", "WD210"}


def test_findings_filtered_out_are_not_fixed():
    result = fix_text(ADAM, unsafe=True, keep=lambda found, text: [d for d in found if d.code != "WD101"])
    assert "torch.optim.Adam(wd_guard.param_groups(" in result.text
    assert [d.code for d in result.remaining] == []


def test_diff_shows_the_change():
    diff = fix_text(ADAM, unsafe=True).diff("train.py")
    assert "\n--- a/train.py\n+++ b/train.py\n" in diff and diff.startswith("# WD101 ")
    assert "-opt = torch.optim.Adam(model.parameters()" in diff and "+import wd_guard\n" in diff
    assert fix_text(ADAM_FIXED, unsafe=True).diff("train.py") == ""


def _write(tmp_path: Path, data: bytes, mode: int = 0o644) -> Path:
    path = tmp_path / "train.py"
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize(
    "data",
    [
        ("# -*- coding: latin-1 -*-\n# r\xe9glage\n" + ADAM).encode("latin-1"),
        ADAM.replace("\n", "\r\n").encode(),
        ADAM.rstrip("\n").encode(),
        b"\xef\xbb\xbf" + ADAM.encode(),
    ],
    ids=["latin-1", "crlf", "no-trailing-newline", "bom"],
)
def test_fix_file_keeps_encoding_newlines_and_permissions(tmp_path, data):
    path = _write(tmp_path, data, 0o754)
    result = fix_file(str(path), unsafe=True)
    written = path.read_bytes()
    assert result.applied == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o754
    assert written.startswith(b"\xef\xbb\xbf") == data.startswith(b"\xef\xbb\xbf")
    if b"\r\n" in data:
        assert written.count(b"\n") == written.count(b"\r\n")
    else:
        assert b"\r\n" not in written
    assert written.endswith(b"\n") == data.endswith(b"\n")
    if b"latin-1" in data:
        assert b"r\xe9glage" in written
    assert sorted(os.listdir(tmp_path)) == ["train.py"]  # no temporary file left behind
    assert fix_file(str(path), unsafe=True).applied == 0 and path.read_bytes() == written


def test_fix_file_follows_a_symbolic_link(tmp_path):
    target = _write(tmp_path, ADAM.encode())
    link = tmp_path / "link.py"
    link.symlink_to(target)
    fix_file(str(link), unsafe=True)
    assert link.is_symlink() and target.read_text() == ADAM_FIXED


def test_a_fix_that_breaks_the_code_leaves_the_file_untouched(tmp_path, monkeypatch):
    def broken(site, ctx):
        return FixPlan("break it", (Replace(site.call, "torch.optim.AdamW((("),))

    monkeypatch.setattr(fixes, "decouple", broken)  # the rule reads it from the module at fix time
    path = _write(tmp_path, ADAM.encode())
    with pytest.raises(FixError, match="does not parse"):
        fix_file(str(path), unsafe=True)
    assert path.read_bytes() == ADAM.encode()
    assert sorted(os.listdir(tmp_path)) == ["train.py"]


def test_fix_edits_lie_inside_the_text_in_order():
    source = (HERE / "fix_fixtures" / "lightning_module_before.py").read_text()
    for diagnostic in lint_source(source):
        if diagnostic.fix is not None:
            edits = diagnostic.fix.edits
            assert all(0 <= e.start <= e.end <= len(source) for e in edits)
            assert list(edits) == sorted(edits, key=lambda e: e.start)


def test_when_the_new_name_is_taken_adam_gets_the_flag_instead():
    source = "from torch.optim import Adam\nAdamW = object\nopt = Adam(params, weight_decay=1e-2)\n"
    (diagnostic,) = lint_source(source, select={"WD101"})
    assert diagnostic.fix is not None
    assert diagnostic.fix.apply(source).endswith("opt = Adam(params, weight_decay=1e-2, decoupled_weight_decay=True)\n")


def test_no_fix_for_an_optimizer_without_a_decoupled_form():
    (diagnostic,) = lint_source("import torch\nopt = torch.optim.Adagrad(params, weight_decay=1e-2)\n", select={"WD101"})
    assert diagnostic.fix is None


def test_no_fix_through_a_variable_or_a_middle_positional():
    through_variable = "import torch\nparams = model.parameters()\nopt = torch.optim.AdamW(params, lr=1e-3)\n"
    middle_positional = "import torch\nopt = torch.optim.SGD(model.parameters(), 0.1, 0.9, 0, 1e-4, True)\n"
    for source in (through_variable, middle_positional):
        (diagnostic,) = lint_source(source, select={"WD210"})
        assert diagnostic.fix is None


def test_imports_of_the_helper_follow_the_file_style():
    source = '"""Doc."""\nfrom wd_guard import audit\nimport torch\nopt = torch.optim.AdamW(m.parameters())\n'
    fixed = fix_text(source, unsafe=True).text
    assert fixed.splitlines()[1] == "from wd_guard import audit, param_groups"
    assert "torch.optim.AdamW(param_groups(m, weight_decay=0.01))" in fixed
    decorated = "@register\ndef build(m):\n    import torch\n    return torch.optim.AdamW(m.parameters())\n"
    assert fix_text(decorated, unsafe=True).text.startswith("import wd_guard\n@register\n")


def test_an_import_the_module_re_exports_is_kept():
    source = 'from torch.optim import Adam\n__all__ = ["Adam"]\nopt = Adam(params, weight_decay=1e-2)\n'
    fixed = fix_text(source, unsafe=True).text
    assert fixed.startswith("from torch.optim import Adam, AdamW\n") and "opt = AdamW(" in fixed
