"""``# noqa`` comments: which findings a line, or a whole file, silences.

``# noqa`` silences every finding reported on its line, ``# noqa: WD101,WD2`` the listed codes
and prefixes. A comment ``# wd-lint: noqa`` anywhere in a file silences the whole file,
``# wd-lint: noqa: WD101`` the listed codes in it (ruff's ``# ruff: noqa`` convention; like
ruff, a bare ``# flake8: noqa`` silences the file too). Only a real comment counts (Python's
tokenizer says which text is one); where the text cannot be tokenized, the raw line stands in.
"""

from __future__ import annotations

import io
import re
import tokenize
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from wd_guard.lint.diagnostic import Diagnostic

_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
_FILE_NOQA = re.compile(
    r"#\s*(?:wd-lint\s*:\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?|flake8\s*:\s*noqa)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def apply_noqa(diagnostics: Sequence[Diagnostic], text: str) -> List[Diagnostic]:
    """Diagnostics not silenced by ``# noqa`` or ``# noqa: CODE,...`` on their first line."""
    if not diagnostics or "noqa" not in text.lower():
        return list(diagnostics)
    lines = _LINE_BREAK.split(text)
    comments: Optional[Dict[int, str]] = None
    tokenized = False
    if ":" in text and _FILE_NOQA.search(text) is not None:
        comments, tokenized = _comments(text), True
        silenced = file_noqa(comments.values() if comments is not None else lines)
        if silenced is not None:
            diagnostics = [d for d in diagnostics if not _listed(d.code, silenced)]
    kept = []
    for diagnostic in diagnostics:
        raw = lines[diagnostic.line - 1] if 0 < diagnostic.line <= len(lines) else ""
        if "noqa" in raw.lower():
            if not tokenized:
                comments, tokenized = _comments(text), True
            # Only a real comment counts; the raw line is the fallback when tokenizing failed.
            comment = raw if comments is None else comments.get(diagnostic.line, "")
            if _silences(comment, diagnostic.code):
                continue
        kept.append(diagnostic)
    return kept


def file_noqa(comments: Iterable[str]) -> Optional[Tuple[str, ...]]:
    """What file-level comments silence: ``()`` for everything, else the listed codes and
    prefixes; None when no comment is one."""
    listed: List[str] = []
    found = False
    for comment in comments:
        match = _FILE_NOQA.search(comment.strip())
        if match is None or match.start() != 0:
            continue
        found = True
        if match.group("codes") is None:
            return ()
        listed.extend(code for code in re.split(r"[\s,]+", match.group("codes")) if code)
    return tuple(listed) if found else None


def _listed(code: str, silenced: Tuple[str, ...]) -> bool:
    return not silenced or any(code.startswith(listed.upper()) for listed in silenced)


def _silences(comment: str, code: str) -> bool:
    match = _NOQA.search(comment)
    if match is None:
        return False
    codes = match.group("codes")
    if codes is None:
        return True
    return any(code.startswith(listed.upper()) for listed in re.split(r"[\s,]+", codes) if listed)


def _comments(text: str) -> Optional[Dict[int, str]]:
    """Comment text by line, from Python's tokenizer; None when it cannot tokenize the text."""
    found: Dict[int, str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text, newline=None).readline):
            if token.type == tokenize.COMMENT:
                found[token.start[0]] = token.string
    except (tokenize.TokenError, SyntaxError):
        return None
    return found
