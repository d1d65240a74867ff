"""The rule pages and the README's rule table match the catalogue, and --check notices drift."""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wd_guard.catalogue import SECTIONS, get_rule, iter_rules

from docs_helpers import ROOT


@pytest.fixture()
def checkout(tmp_path: Path) -> Path:
    """A copy of the README and the docs that a test may change."""
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    return tmp_path


def test_repository_docs_are_fresh(gen_docs):
    stale = gen_docs.stale_files(ROOT)
    assert stale == [], f"run python scripts/gen_docs.py; stale: {stale}"


def test_check_command_exits_zero_on_this_checkout():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("code", [rule.code for rule in iter_rules()])
def test_each_rule_page_is_its_explanation(code):
    page = (ROOT / "docs" / "rules" / f"{code}.md").read_text(encoding="utf-8")
    body = page.split("\n\n", 1)[1]  # after the generated-file marker
    assert html.unescape(body) == get_rule(code).explain()
    for section in SECTIONS:
        assert f"## {section}\n" in page


def test_readme_table_has_one_row_per_rule_linking_to_its_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- rules:start -->")[1].split("<!-- rules:end -->")[0]
    codes = re.findall(r"^\| \[(WD\d+)\]\((docs/rules/WD\d+\.md)\)", block, flags=re.M)
    assert [code for code, _ in codes] == [rule.code for rule in iter_rules()]
    for code, link in codes:
        assert link == f"docs/rules/{code}.md" and (ROOT / link).is_file()
    assert "`<optimizer>` applies weight_decay as coupled L2" in block  # placeholders kept visible


def test_check_reports_an_edited_page_and_write_restores_it(gen_docs, checkout):
    page = checkout / "docs" / "rules" / "WD101.md"
    page.write_text(page.read_text().replace("Adam", "Adma"))
    assert gen_docs.main(["--check", "--root", str(checkout)]) == 1
    assert gen_docs.write(checkout) == [page]
    assert gen_docs.stale_files(checkout) == []


def test_check_reports_a_stale_readme_table(gen_docs, checkout, capsys):
    readme = checkout / "README.md"
    readme.write_text(readme.read_text().replace("| error |", "| warning |", 1))
    assert gen_docs.main(["--check", "--root", str(checkout)]) == 1
    assert "stale: README.md" in capsys.readouterr().out
    gen_docs.write(checkout)
    assert readme.read_text() == (ROOT / "README.md").read_text()


def test_missing_and_orphaned_pages_are_stale(gen_docs, checkout):
    (checkout / "docs" / "rules" / "WD302.md").unlink()
    orphan = checkout / "docs" / "rules" / "WD999.md"
    orphan.write_text("# WD999 retired\n")
    stale = gen_docs.stale_files(checkout)
    assert set(stale) == {checkout / "docs" / "rules" / "WD302.md", orphan}
    gen_docs.write(checkout)
    assert not orphan.exists() and gen_docs.stale_files(checkout) == []


def test_readme_without_markers_is_an_error(gen_docs, checkout):
    readme = checkout / "README.md"
    readme.write_text(readme.read_text().replace("<!-- rules:end -->", ""))
    with pytest.raises(ValueError, match="rules:end"):
        gen_docs.stale_files(checkout)


def test_markdown_safe_escapes_placeholders_outside_code_only(gen_docs):
    text = "<count> params\n`<kept>` here\n```python\nx = a < b\n```"
    assert gen_docs.markdown_safe(text) == "&lt;count&gt; params\n`<kept>` here\n```python\nx = a < b\n```"


def test_readme_code_ranges_cover_every_rule():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ranges = set(re.findall(r"^\| `(WD\d)xx` \|", readme, flags=re.M))
    assert ranges, "README.md lost its code-range table"
    assert {rule.code[:3] for rule in iter_rules()} <= ranges
