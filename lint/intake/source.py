"""Read a file's bytes and decode them as the source kind its name says, or say why that cannot
be done.

The bytes are read without following the path into a FIFO or a device; a file over
``max_file_size`` bytes or ``max_file_lines`` lines is refused with its size (the parser needs
memory and time for every line, however short: a few megabytes of one-character lines would
take gigabytes); NUL bytes mean it is not text. Python's encoding comes from the BOM or the
PEP 263 line (UTF-8 otherwise); YAML is UTF-8; a notebook is JSON whose code cells become
Python text (see ``notebook``). ``--fix`` reads the files it fixes through the same function.
"""

from __future__ import annotations

import codecs
import io
import os
import stat
import tokenize
from typing import TYPE_CHECKING, Optional

from wd_guard.lint.diagnostic import CONFIG, NOT_TEXT, NOTEBOOK, PYTHON, TOO_LARGE, UNREADABLE, Problem
from wd_guard.lint.files.settings import DEFAULT_MAX_FILE_LINES, DEFAULT_MAX_FILE_SIZE

if TYPE_CHECKING:  # pragma: no cover
    from wd_guard.lint.intake.notebook import Notebook

_BOM_CONFLICT = "cannot decode: a UTF-8 byte order mark and a coding line that names another encoding"
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)


class Unlintable(Exception):
    """Raised with the Problem that keeps a file from being linted."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.reason)
        self.problem = problem


def read_source(path: str, max_size: int = DEFAULT_MAX_FILE_SIZE, max_lines: int = DEFAULT_MAX_FILE_LINES) -> bytes:
    """The bytes of a regular file of at most ``max_size`` bytes and ``max_lines`` lines;
    raises Unlintable otherwise."""
    descriptor: Optional[int] = None
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
        _check_regular(path, os.fstat(descriptor), max_size)
        with os.fdopen(descriptor, "rb") as handle:
            descriptor = None  # the file object owns it now
            data = handle.read(max_size + 1)
    except OSError as exc:
        raise Unlintable(Problem(path, UNREADABLE, f"cannot read: {exc.strerror or exc}")) from None
    finally:
        if descriptor is not None:
            os.close(descriptor)
    if len(data) > max_size:
        raise Unlintable(_too_large(path, len(data), max_size))
    lines = count_lines(data)
    if lines > max_lines:
        reason = f"skipped: {lines:,} lines is over max-file-lines ({max_lines:,} lines); exclude it or raise the limit"
        raise Unlintable(Problem(path, TOO_LARGE, reason))
    return data


def count_lines(data: bytes) -> int:
    """How many lines Python sees in ``data`` (``\\n``, ``\\r\\n`` and a lone ``\\r`` end one)."""
    breaks = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    return breaks + (1 if data and not data.endswith((b"\n", b"\r")) else 0)


def _check_regular(path: str, info: os.stat_result, max_size: int) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise Unlintable(Problem(path, UNREADABLE, "cannot read: is a folder"))
    if not stat.S_ISREG(info.st_mode):
        raise Unlintable(Problem(path, UNREADABLE, "cannot read: not a regular file"))
    if info.st_size > max_size:
        raise Unlintable(_too_large(path, info.st_size, max_size))


def _too_large(path: str, size: int, max_size: int) -> Problem:
    reason = f"skipped: {size:,} bytes is over max-file-size ({max_size:,} bytes); exclude it or raise the limit"
    return Problem(path, TOO_LARGE, reason)


def decode_source(path: str, data: bytes) -> str:
    """Text from bytes per the BOM or PEP 263 line (UTF-8 otherwise); raises Unlintable."""
    _refuse_nul(path, data, "Python source")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        # Without a declaration the first lines must be UTF-8; decoding says where they are not.
        encoding = "utf-8" if "invalid or missing encoding" in str(exc.msg) else ""
        if not encoding:
            reason = _BOM_CONFLICT if data.startswith(codecs.BOM_UTF8) else f"cannot decode: {exc.msg}"
            raise Unlintable(Problem(path, NOT_TEXT, reason, 1)) from None
    return _decode(path, data, encoding, encoding)


def _refuse_nul(path: str, data: bytes, what: str) -> None:
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise Unlintable(Problem(path, NOT_TEXT, f"contains NUL bytes: not {what}", line))


def _decode(path: str, data: bytes, encoding: str, name: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        reason = f"cannot decode as {name}: {exc.reason} (byte 0x{data[exc.start]:02x})"
        raise Unlintable(Problem(path, NOT_TEXT, reason, line)) from None


NOTEBOOK_SUFFIXES = (".ipynb",)
CONFIG_SUFFIXES = (".yaml", ".yml")


def kind_of(path: str) -> str:
    """The kind of source a file holds, by its name: notebook, YAML config, else Python."""
    name = path.lower()
    if name.endswith(NOTEBOOK_SUFFIXES):
        return NOTEBOOK
    if name.endswith(CONFIG_SUFFIXES):
        return CONFIG
    return PYTHON


def decode_config(path: str, data: bytes) -> str:
    """The text of a YAML file (UTF-8, a BOM allowed); raises Unlintable."""
    _refuse_nul(path, data, "YAML text")
    return _decode(path, data, "utf-8-sig", "utf-8")


def read_notebook(path: str, data: bytes) -> "Notebook":
    """The code cells of a notebook as Python text; raises Unlintable."""
    from wd_guard.lint.intake.notebook import NotebookError, read

    try:
        return read(data)
    except NotebookError as exc:
        raise Unlintable(Problem(path, NOT_TEXT, str(exc), exc.line, exc.column)) from None
