"""Decide cheaply whether a file can have a finding, before libcst parses it.

Two stages, each safe on its own: a file they let through is analysed in full, a file they
stop certainly has no finding.

1. :func:`might_matter` reads the raw bytes: every rule lists the words its findings need
   (``VOCABULARY``: each group must be matched by one of its words, such as an optimizer's
   class name), and a file without the words of any selected rule is done. This stage needs
   no parser and, given a vocabulary table, not even the rules (so not libcst either).
2. :func:`code_might_matter` reads what CPython's own parser (ten times faster than libcst)
   makes of the text: a word that names something a rule matches (an identifier, an
   attribute) must appear in the code, not only in a comment or a docstring. Words that are
   not identifiers (operators such as ``**``) are still looked for in the raw text. Files that
   mention ``Adam`` only in their documentation stop here.
"""

from __future__ import annotations

import ast
import re
import warnings
from typing import Collection, Dict, Iterable, List, Optional, Tuple, Union

__all__ = ["Checked", "Vocabulary", "code_might_matter", "code_words", "might_matter", "screen", "vocabulary"]

# What a rule needs in a text: every group must be matched by one of its words.
Groups = Tuple[Tuple[bytes, ...], ...]
# Code -> groups, for the rules that may run.
Vocabulary = Dict[str, Groups]

# Declared encodings whose bytes do not contain ASCII words as ASCII: the pre-filter cannot
# read them, so such files always go to the parser.
_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.MULTILINE)
_ASCII_SUPERSETS = re.compile(r"^(utf[-_]?8(-sig)?|ascii|us-ascii|latin[-_]?1|iso[-_]?8859[-_]?\d+|cp\d+|[a-z0-9-]*euc[-\w]*|gb\w*|big5\w*|shift[-_]?jis|koi8[-_]?\w)$", re.I)
# Separates the code words so that a vocabulary word never matches across two of them.
_SEPARATOR = b"\0"


def vocabulary(select: Optional[Collection[str]] = None) -> Vocabulary:
    """The vocabulary of the rules that run for ``select`` (None: the default rules).

    This imports the rules, and with them libcst; callers that only filter may keep the table
    (see :mod:`wd_guard.lint.cache`) to avoid that import on later runs.
    """
    from .rules import rules_for

    return {rule.CODE: tuple(tuple(group) for group in rule.VOCABULARY) for rule in rules_for(select)}


def _groups(select: Optional[Collection[str]], table: Optional[Vocabulary]) -> List[Groups]:
    if table is None:
        return list(vocabulary(select).values())
    if select is None:
        return list(table.values())
    return [table[code] for code in sorted(set(select)) if code in table]


def might_matter(source: Union[bytes, str], *, select: Optional[Collection[str]] = None, table: Optional[Vocabulary] = None) -> bool:
    """Whether any selected rule could fire on ``source``: a cheap test on the raw bytes.

    False means the file certainly has no finding (every rule needs some word, such as an
    optimizer's class name, to appear in the text); True means it must be parsed. ``table``
    is a vocabulary covering at least the selected codes (by default the rules' own).
    """
    data = source.encode("utf-8", "surrogatepass") if isinstance(source, str) else source
    if _unreadable_encoding(data):
        return True
    found: Dict[bytes, bool] = {}  # rules share words: look for each once

    def has(word: bytes) -> bool:
        known = found.get(word)
        if known is None:
            known = found[word] = word in data
        return known

    return any(all(any(map(has, group)) for group in groups) for groups in _groups(select, table))


def _unreadable_encoding(data: bytes) -> bool:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    head = b"\n".join(data.split(b"\n", 2)[:2])
    match = _CODING.search(head)
    return bool(match) and not _ASCII_SUPERSETS.match(match.group(1).decode("ascii", "replace"))


class Checked(str):
    """Text that CPython's parser has accepted: the engine need not run it again."""

    __slots__ = ()


def screen(text: str, *, select: Optional[Collection[str]] = None, table: Optional[Vocabulary] = None) -> Optional[str]:
    """The second stage: None when no selected rule can fire on ``text`` (the words are only
    in comments or docstrings), else the text to analyse, as :class:`Checked` when CPython's
    parser read it. Whatever CPython cannot read goes on (the full analysis decides)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and the like: not wd-lint's business
            tree = ast.parse(text)
    except Exception:  # noqa: BLE001 - SyntaxError, null bytes, nesting, memory: the full analysis decides
        return text
    names, strings = code_words(tree)
    if not names.isascii():
        # CPython normalises identifiers (NFKC) and libcst does not: only ASCII names are
        # certain to be the same for both.
        return Checked(text)
    raw = text.encode("utf-8", "surrogatepass")
    words = names + _SEPARATOR + strings
    return Checked(text) if any(_matches_code(groups, words, raw) for groups in _groups(select, table)) else None


def code_might_matter(text: str, *, select: Optional[Collection[str]] = None, table: Optional[Vocabulary] = None) -> bool:
    """Whether any selected rule could fire on ``text`` once comments and docstrings are set
    aside; True whenever CPython's parser cannot read the text (the full analysis decides)."""
    return screen(text, select=select, table=table) is not None


def _matches_code(groups: Groups, words: bytes, raw: bytes) -> bool:
    return all(any(_word_in(word, words, raw) for word in group) for group in groups)


def _word_in(word: bytes, words: bytes, raw: bytes) -> bool:
    # An identifier-like word must be in the code; any other word (an operator) in the text.
    return word in (words if word.isascii() and word.decode("ascii").isidentifier() else raw)


def code_words(tree: ast.AST) -> Tuple[bytes, bytes]:
    """The identifiers, and the string literals except docstrings, of ``tree``; each
    ``\\0``-separated so that no word matches across two of them.

    Identifiers are every name the parser keeps: variables, attributes, imported modules and
    aliases, parameters, keywords of calls, definitions. A docstring is any statement that is
    a bare string: it does nothing, so no rule can find anything in it.
    """
    names: List[str] = []
    strings: List[str] = []
    blobs: List[bytes] = []
    stack: List[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is ast.Constant:
            _constant(node.value, strings, blobs)
            continue
        if kind is ast.Expr and type(node.value) is ast.Constant and isinstance(node.value.value, (str, bytes)):
            continue
        for name in _fields(kind):
            value = getattr(node, name, None)
            if isinstance(value, ast.AST):
                stack.append(value)
            elif isinstance(value, str):
                names.append(value)
            elif isinstance(value, list):
                _extend(value, stack, names)
    text = "\0".join(strings).encode("utf-8", "surrogatepass")
    return "\0".join(names).encode("utf-8", "surrogatepass"), _SEPARATOR.join([text, *blobs])


_FIELDS: Dict[type, Tuple[str, ...]] = {}
_NO_WORDS = frozenset({"ctx", "op", "ops"})  # load/store markers and operators: no names in them


def _fields(kind: type) -> Tuple[str, ...]:
    fields = _FIELDS.get(kind)
    if fields is None:
        fields = _FIELDS[kind] = tuple(name for name in kind._fields if name not in _NO_WORDS)  # type: ignore[attr-defined]
    return fields


def _constant(value: object, strings: List[str], blobs: List[bytes]) -> None:
    if isinstance(value, str):
        strings.append(value)
    elif isinstance(value, bytes):
        blobs.append(value)


def _extend(items: Iterable[object], stack: List[ast.AST], names: List[str]) -> None:
    for item in items:
        if isinstance(item, ast.AST):
            stack.append(item)
        elif isinstance(item, str):
            names.append(item)
