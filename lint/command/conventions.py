"""wd-lint's command line next to ruff's (``ruff check``), flag by flag.

The source of ``docs/conventions.md`` (written by ``scripts/gen_docs.py``). A test checks that
every option of ``wd-lint`` appears here and every wd-lint flag named here exists, so the
table cannot drift from the command.
"""

from __future__ import annotations

from typing import Tuple

# (ruff check, wd-lint, how wd-lint behaves); "-" where a tool has no such flag.
FLAGS: Tuple[Tuple[str, str, str], ...] = (
    ("`PATH ...`", "`PATH ...`", "same; the current folder by default"),
    ("`-` / `--stdin-filename PATH`", "`-` / `--stdin-filename PATH`", "same: the settings and per-file ignores of PATH apply; an excluded PATH has no findings"),
    ("`--fix`", "`--fix`", "same; every wd-lint fix changes behaviour, so it also needs `--unsafe-fixes`"),
    ("`--unsafe-fixes`", "`--unsafe-fixes`", "same"),
    ("`--diff`", "`--diff`", "same; headed by one `# CODE title` line per fix, and says how many fixes need `--unsafe-fixes` when it shows none"),
    ("`--fix-only`", "`--fix-only`", "same"),
    ("`--fix` on stdin", "`--fix` on stdin", "same: the fixed source on stdout, remaining findings on stderr"),
    ("`--select`", "`--select`", "same: codes, prefixes (`WD2`) or `ALL`"),
    ("`--extend-select`", "`--extend-select`", "same; the way to turn on opt-in rules (WD204)"),
    ("`--ignore`", "`--ignore`", "same"),
    ("`--exclude`", "`--exclude`", "same: replaces the configured and the default excludes"),
    ("`--extend-exclude`", "`--extend-exclude`", "same: adds to them"),
    ("`--respect-gitignore` / `--no-respect-gitignore`", "`--respect-gitignore` / `--no-respect-gitignore`", "same: `.gitignore`, `.ignore`, `.git/info/exclude` and git's global excludes, in folder walks"),
    ("`--force-exclude`", "-", "always on: excludes also apply to paths named on the command line (pre-commit names every file)"),
    ("`--config FILE`", "`--config FILE`", "same: a `pyproject.toml` with `[tool.wd-lint]` or a `wd-lint.toml`; a pyproject.toml without the table is an error (exit 2)"),
    ("`--isolated`", "`--isolated`", "same"),
    ("`--show-settings`", "`--show-settings`", "same idea: the settings that apply to the one PATH given, and the file they come from"),
    ("`--output-format`", "`--output-format` / `--format`", "`text`, `json`, `sarif`, `github`"),
    ("`-o` / `--output-file`", "`-o` / `--output-file`", "same: the report goes to the file, the summary to stderr"),
    ("`--exit-zero`", "`--exit-zero`", "same: 0 even with findings; 2 (a file could not be linted) stays"),
    ("`-q` / `--quiet`", "`-q` / `--quiet`", "same: findings only, no summary or hints"),
    ("`--statistics`", "`--statistics`", "same: counts per code (text or json)"),
    ("`--line-length`", "`--line-length`", "the length fixes keep their lines within (wd-lint has no line-length rule)"),
    ("`--no-cache` / `--cache-dir`", "`--no-cache` / `--cache-dir`", "same; `WD_LINT_CACHE_DIR` as ruff's `RUFF_CACHE_DIR`"),
    ("`ruff rule CODE`", "`--explain CODE` / `wd-lint rule CODE`", "the rule's page"),
    ("`--version`", "`--version`", "same"),
    ("`-h` / `--help`", "`-h` / `--help`", "same"),
    ("-", "`--max-file-size SIZE`", "wd-lint only: larger files are skipped and reported"),
    ("-", "`--timeout SECONDS`", "wd-lint only: a file whose analysis takes longer is skipped and reported"),
    ("-", "`-j` / `--jobs N`", "wd-lint only: worker processes"),
)

# Conventions that are not flags.
CONVENTIONS: Tuple[Tuple[str, str, str], ...] = (
    ("closest `pyproject.toml` / `ruff.toml` above each file", "closest `pyproject.toml` with `[tool.wd-lint]` / `wd-lint.toml` above each file", "same; in one folder the tool's own file wins"),
    ("`exclude` / `extend-exclude`", "`exclude` / `extend-exclude`", "same: `exclude` replaces the defaults"),
    ("`per-file-ignores`", "`per-file-ignores`", "same"),
    ("`line-length`", "`line-length`", "fixes keep to it; read from `[tool.ruff]` or `[tool.black]` when `[tool.wd-lint]` has none"),
    ("`# noqa` / `# noqa: F401`", "`# noqa` / `# noqa: WD101`", "same"),
    ("`# ruff: noqa` / `# ruff: noqa: F401`", "`# wd-lint: noqa` / `# wd-lint: noqa: WD101`", "same, for the whole file; a bare `# flake8: noqa` counts too, as in ruff"),
    ("exit 0 / 1 / 2", "exit 0 / 1 / 2", "same: clean / findings / a usage error or a file that could not be linted"),
    ("JSON `code`, `message`, `filename`, `location`, `end_location`", "JSON `code`, `message`, `path`, `line`, `column`, `end_line`, `end_column`", "wd-lint's own names for positions (1-based), and `severity`"),
    ("JSON `url`, `fix`, `noqa_row`", "JSON `name`, `url`, `fix`, `noqa_row`", "same shape: `fix` is null or `applicability`, `message` and `edits` with `location` / `end_location`"),
    ("SARIF `helpUri`", "SARIF `helpUri`", "same: the rule's page"),
)


def table(rows: Tuple[Tuple[str, str, str], ...]) -> str:
    """A Markdown table of (ruff, wd-lint, note) rows."""
    lines = ["| ruff | wd-lint | wd-lint's behaviour |", "|---|---|---|"]
    lines.extend("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def page() -> str:
    """``docs/conventions.md`` without its generated-file marker."""
    return (
        "# wd-lint and ruff\n\n"
        "wd-lint follows ruff's conventions where both tools have the same thing, so that a user of\n"
        "ruff finds the flags, settings and comments where they expect them. Ruff users: add\n"
        '`lint.external = ["WD"]` to `[tool.ruff]`, or ruff\'s unused-noqa fix (RUF100) strips\n'
        "`# noqa: WD...` comments as unknown codes.\n\n"
        "## Flags\n\n" + table(FLAGS) + "\n\n## Settings, comments and output\n\n" + table(CONVENTIONS) + "\n"
    )
