"""Hostile and unusual input: linted like any file when it is Python, reported when it is not.

Valid Python in unusual clothes (every syntax feature from 3.8 to 3.14, BOM, CRLF, PEP 263,
deep nesting, 100,000 lines) must give its findings. What cannot be read or parsed is reported
with its path and a reason, exit status 2, and every other file is still linted.
"""

from __future__ import annotations

import ctypes
import faulthandler
import multiprocessing
import os
import random

import pytest

from wd_guard.lint.analysis import engine
from wd_guard.lint.analysis import workers as isolate
from wd_guard.lint import api as runner
from wd_guard.lint.intake import source as source_module
from wd_guard.lint.command.cli import main

MISTAKE = "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)\n"
MISTAKE_LINE = "opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)"
GOOD = "import torch\nopt = torch.optim.Adam(groups, lr=1e-3, weight_decay=1e-2)\n"  # WD101 only

FEATURES = {
    "py38_walrus": "if (n := len(data)) > 10:\n    pass\n",
    "py38_positional_only": "def f(a, b, /, c, *, d):\n    return a\n",
    "py38_fstring_equals": "x = 1\nprint(f'{x=}')\n",
    "py39_decorator_expression": "buttons = [lambda f: f]\n@buttons[0]\ndef g():\n    pass\n",
    "py39_dict_union": "a = {'x': 1} | {'y': 2}\n",
    "py310_match": (
        "match command:\n    case [x, y, *rest] if x:\n        pass\n    case {'k': v, **kw}:\n        pass\n"
        "    case Point(x=0) | None:\n        pass\n    case _:\n        pass\n"
    ),
    "py310_parenthesized_with": "with (\n    open('a') as f,\n    open('b') as g,\n):\n    pass\n",
    "py311_except_star": "try:\n    pass\nexcept* ValueError as eg:\n    pass\n",
    "py311_star_annotation": "def f(*args: *Ts):\n    pass\n",
    "py312_type_alias": "type Point = tuple[float, float]\n",
    "py312_generics": "def first[T](xs: list[T]) -> T:\n    return xs[0]\nclass Box[T: int, *Ts, **P]:\n    pass\n",
    "py312_fstring_quotes": "names = ['a']\ns = f\"{', '.join(f'{n!r}' for n in names)}\"\nu = f\"{\"nested\"}\"\n",
    "py313_type_param_default": "def f[T = int]():\n    pass\nclass C[T = str]:\n    pass\n",
    "py314_except_without_parentheses": "try:\n    pass\nexcept ValueError, TypeError:\n    pass\n",
    "py314_template_string": "name = 'x'\ntemplate = t'hello {name}'\n",
    "async_comprehension": "async def f():\n    return [x async for x in aiter() if await x]\n",
    "star_unpacking": "a, *b = [*range(3), *range(2)]\nprint(*a, **{'sep': ''})\n",
    "numeric_literals": "x = 1_000_000 + 0x_FF + 0o7_7 + 0b1_0 + 1e1_0 + 1j + 1.5J\n",
    "unicode_identifiers": "café = 1\nπ = 3.14\n",
    "line_continuation": "x = 1 + \\\n    2\n",
    "semicolons_and_tabs": "if True:\n\ta = 1; b = 2\n",
}


def lint(capsys, *argv):
    code = main(["--isolated", "--no-cache", *argv])  # some tests make the engine fail on purpose
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def found(out):
    return [(line.split(":")[0].rsplit(os.sep, 1)[-1], int(line.split(":")[1]), line.split(": ")[1].split()[0]) for line in out.splitlines()]


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.py"
    path.write_text(GOOD)
    return path


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_every_syntax_feature_is_linted(tmp_path, capsys, feature):
    source = FEATURES[feature] + MISTAKE
    (tmp_path / "f.py").write_text(source, encoding="utf-8")
    code, out, err = lint(capsys, "-j", "0", "--select", "WD101", str(tmp_path / "f.py"))
    assert (code, found(out)) == (1, [("f.py", source.count("\n"), "WD101")]), err


@pytest.mark.parametrize(
    "name, data, line, column",
    [
        ("bom.py", b"\xef\xbb\xbf" + MISTAKE.encode(), 2, 7),
        ("crlf.py", MISTAKE.replace("\n", "\r\n").encode(), 2, 7),
        ("cr.py", MISTAKE.replace("\n", "\r").encode(), 2, 7),
        ("latin1.py", b"# -*- coding: latin-1 -*-\nname = '\xe9t\xe9'\n" + MISTAKE.encode(), 4, 7),
        ("latin1_column.py", b"# coding: latin-1\nimport torch\ns = '\xe9\xe9'; opt = torch.optim.Adam(p, weight_decay=1e-2)\n", 3, 17),
        ("utf8_column.py", "import torch\ns = '\u6a21\u578b'; opt = torch.optim.Adam(p, weight_decay=1e-2)\n".encode(), 2, 17),
        ("formfeed.py", b"\x0c\nimport torch\n\x0c\nopt = torch.optim.Adam(p, weight_decay=1e-2)\n", 4, 7),
        ("no_final_newline.py", MISTAKE.rstrip("\n").encode(), 2, 7),
    ],
)
def test_unusual_encodings_and_newlines_are_linted(tmp_path, capsys, name, data, line, column):
    (tmp_path / name).write_bytes(data)
    code, out, err = lint(capsys, "-j", "0", "--select", "WD101", "--format", "json", str(tmp_path / name))
    assert code == 1, err
    [item] = __import__("json").loads(out)
    assert (item["line"], item["column"]) == (line, column)


def test_noqa_on_a_crlf_line(tmp_path, capsys):
    (tmp_path / "n.py").write_bytes(MISTAKE.replace(MISTAKE_LINE, MISTAKE_LINE + "  # noqa: WD101").replace("\n", "\r\n").encode())
    assert lint(capsys, "-j", "0", "--select", "WD101", str(tmp_path))[0] == 0


def nested(expression: str) -> str:
    return f"import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay={expression})\n"


@pytest.mark.parametrize(
    "name, expression",
    [
        ("parentheses_199", "(" * 199 + "1e-2" + ")" * 199),
        ("sum_of_1000_terms", " + ".join(["1e-5"] * 1000)),
        ("unary_1000", "+" * 1000 + "1e-2"),
        ("calls_190", "float(" * 190 + "1e-2" + ")" * 190),
        ("subscripts_150", "[" * 150 + "1e-2" + "]" * 150 + "[0]" * 150),
        ("attributes_2000", "cfg" + ".sub" * 2000),
    ],
)
def test_deeply_nested_expressions_are_linted(tmp_path, capsys, name, expression):
    (tmp_path / f"{name}.py").write_text(nested(expression))
    code, out, err = lint(capsys, "-j", "1", "--select", "WD101", str(tmp_path))
    assert (code, found(out)) == (1, [(f"{name}.py", 2, "WD101")]), err


@pytest.mark.parametrize(
    "expression, reason",
    [("(" * 5000 + "1e-2" + ")" * 5000, "too many nested parentheses"), ("-" * 100_000 + "1e-2", "too deeply nested")],
)
def test_nesting_beyond_python_is_reported_not_crashed(tmp_path, capsys, good, expression, reason):
    (tmp_path / "bomb.py").write_text(nested(expression))
    code, out, err = lint(capsys, "-j", "1", str(tmp_path))
    assert code == 2 and ("good.py", 2, "WD101") in found(out)
    assert "bomb.py:" in err and reason in err


def test_analysis_that_takes_too_long_is_skipped_and_reported(tmp_path, capsys, good):
    # libcst parses long operator chains in quadratic time: 20,000 terms take minutes.
    (tmp_path / "slow.py").write_text(nested(" + ".join(["1e-5"] * 20_000)))
    code, out, err = lint(capsys, "-j", "1", "--timeout", "2", str(tmp_path))
    assert code == 2 and ("good.py", 2, "WD101") in found(out)
    assert "slow.py: error: analysis took longer than 2 s; skipped" in err


@pytest.fixture
def forked(monkeypatch):
    # Monkeypatches reach worker processes only through fork; pytest-xdist runs threads.
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs fork")
    monkeypatch.setattr(isolate, "_context", lambda: multiprocessing.get_context("fork"))


def segfault() -> None:
    """A real memory fault in the calling thread, as a native parser's stack overflow causes."""
    faulthandler.disable()
    ctypes.string_at(0)


def test_parser_crash_costs_one_file_not_the_run(tmp_path, capsys, monkeypatch, forked):
    real = engine.lint_source
    attempts = tmp_path / "attempts"
    attempts.mkdir()

    def crash_on(source, path="<string>", *, select=None):
        if path.endswith("crash.py"):
            (attempts / str(os.getpid())).touch()
            segfault()
        return real(source, path, select=select)

    monkeypatch.setattr(engine, "lint_source", crash_on)
    for name in ("a.py", "crash.py", "z.py"):
        (tmp_path / name).write_text(MISTAKE)
    code, out, err = lint(capsys, "-j", "1", "--select", "WD101", str(tmp_path))
    assert code == 2 and found(out) == [("a.py", 2, "WD101"), ("z.py", 2, "WD101")], (out, err)
    assert "crash.py: error: the parser crashed (killed by SIGSEGV; the file is probably nested too deeply)" in err
    assert len(list(attempts.iterdir())) == 2  # tried once more, in a fresh worker


def test_worker_that_dies_once_does_not_cost_its_file(tmp_path, capsys, monkeypatch, forked):
    real = engine.lint_source
    marker = tmp_path / "died-once"

    def die_once(source, path="<string>", *, select=None):
        if path.endswith("b.py") and not marker.exists():
            marker.touch()
            os._exit(137)  # as if the OOM killer had struck
        return real(source, path, select=select)

    monkeypatch.setattr(engine, "lint_source", die_once)
    for name in ("a.py", "b.py", "c.py"):
        (tmp_path / name).write_text(MISTAKE)
    code, out, err = lint(capsys, "-j", "2", "--select", "WD101", str(tmp_path))
    assert code == 1 and err.startswith("Found 3 findings in 3 files.")
    assert found(out) == [("a.py", 2, "WD101"), ("b.py", 2, "WD101"), ("c.py", 2, "WD101")]


def test_internal_error_is_reported_per_file(tmp_path, capsys, good, monkeypatch):
    real = engine.lint_source

    def fail_on(source, path="<string>", *, select=None):
        if path.endswith("odd.py"):
            raise KeyError("surprise")
        return real(source, path, select=select)

    monkeypatch.setattr(engine, "lint_source", fail_on)
    (tmp_path / "odd.py").write_text(MISTAKE)
    code, out, err = lint(capsys, "-j", "0", str(tmp_path))
    assert code == 2 and ("good.py", 2, "WD101") in found(out)
    assert "odd.py: error: internal error while analysing: KeyError: 'surprise'" in err


def test_failure_while_reading_is_reported_per_file(tmp_path, capsys, good, monkeypatch):
    real = runner.decode_source

    def fail_on(path, data):
        if path.endswith("odd.py"):
            raise MemoryError("no room")
        return real(path, data)

    monkeypatch.setattr(runner, "decode_source", fail_on)
    (tmp_path / "odd.py").write_text(MISTAKE)
    code, out, err = lint(capsys, "-j", "0", str(tmp_path))
    assert code == 2 and found(out) == [("good.py", 2, "WD101")]
    assert "odd.py: error: internal error while reading: MemoryError: no room" in err


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_file_of_100000_lines(tmp_path, capsys):
    block = 'def layer_{i}(x, scale={i}):\n    """Scale and shift."""\n    y = x * scale + {i}\n    return y\n\n'
    lines = ["import torch\n", "\n"]
    index = 0
    while len(lines) + 5 <= 99_998:
        lines.extend(block.format(i=index).splitlines(keepends=True))
        index += 1
    lines += ["\n"] * (99_998 - len(lines)) + ["model = torch.nn.Linear(4, 4)\n", MISTAKE_LINE + "\n"]
    (tmp_path / "big.py").write_text("".join(lines))
    assert len(lines) == 100_000
    code, out, err = lint(capsys, "-j", "1", "--select", "WD101", str(tmp_path))
    assert (code, found(out)) == (1, [("big.py", 100_000, "WD101")]), err


def test_file_over_the_size_limit_is_skipped_with_its_size(tmp_path, capsys, good):
    (tmp_path / "large.py").write_text(MISTAKE + "x = 1\n" * 500)
    size = (tmp_path / "large.py").stat().st_size
    code, out, err = lint(capsys, "-j", "0", "--max-file-size", "2KB", str(tmp_path))
    assert code == 2 and ("good.py", 2, "WD101") in found(out)
    assert f"large.py: error: skipped: {size:,} bytes is over max-file-size (2,000 bytes)" in err


def test_default_size_limit_skips_without_reading(tmp_path, capsys, good, monkeypatch):
    with open(tmp_path / "sparse.py", "wb") as handle:
        handle.truncate(6 * 1024 * 1024)  # 6 MiB of holes: over the 5 MiB default
    reads = []
    real_fdopen = source_module.os.fdopen
    monkeypatch.setattr(source_module.os, "fdopen", lambda *a, **k: reads.append(a) or real_fdopen(*a, **k))
    code, out, err = lint(capsys, "-j", "0", str(tmp_path))
    assert code == 2 and "sparse.py: error: skipped: 6,291,456 bytes is over max-file-size (5,242,880 bytes)" in err
    assert len(reads) == 1  # good.py: sparse.py is only looked at with fstat, never read


@pytest.mark.parametrize(
    "name, data, where, reason",
    [
        ("syntax.py", b"import torch\n\nopt = torch.optim.Adam(lr=1 weight_decay=2)\n", "syntax.py:3:", "syntax error: "),
        ("python2.py", b"import torch\nprint 'adam'\nopt = torch.optim.Adam(p)\n", "python2.py:2:", "syntax error: "),
        ("indent.py", b"import torch\n  opt = torch.optim.Adam(p)\n", "indent.py:2:", "syntax error: unexpected indent"),
        ("undecodable.py", b"import torch\n\n\ns = '\xff\xfe'\n", "undecodable.py:4", "cannot decode as utf-8: invalid start byte (byte 0xff)"),
        ("nul.py", b"import torch\nx = 1\n\x00\n", "nul.py:3", "contains NUL bytes: not Python source"),
        ("cookie.py", b"# coding: klingon\nimport torch\n", "cookie.py:1", "cannot decode: unknown encoding: klingon"),
        ("bom_cookie.py", b"\xef\xbb\xbf# coding: latin-1\nx = 1\n", "bom_cookie.py:1", "cannot decode: a UTF-8 byte order mark and a coding line"),
        ("bad_ascii.py", b"# coding: ascii\ns = '\xe9'\n", "bad_ascii.py:2", "cannot decode as ascii: ordinal not in range(128) (byte 0xe9)"),
    ],
)
def test_unparsable_files_are_reported_with_a_reason(tmp_path, capsys, good, name, data, where, reason):
    (tmp_path / name).write_bytes(data)
    code, out, err = lint(capsys, "-j", "0", str(tmp_path))
    assert code == 2 and found(out) == [("good.py", 2, "WD101")]
    [error] = [line for line in err.splitlines() if ": error: " in line]
    assert error.startswith(os.path.join(str(tmp_path), where)) and error.split(": error: ", 1)[1].startswith(reason)


def test_syntax_errors_in_files_without_vocabulary_are_left_to_other_tools(tmp_path, capsys):
    # The pre-filter skips a file that cannot hold a finding before any parse.
    (tmp_path / "legacy.py").write_bytes(b"print 'hello'\n")
    assert lint(capsys, "-j", "0", str(tmp_path)) == (0, "", "No findings in 1 file.\n")


@pytest.mark.parametrize("seed", range(4))
def test_random_binary_is_reported(tmp_path, capsys, good, seed):
    data = random.Random(seed).randbytes(4096)
    if seed % 2:
        data = data.replace(b"\x00", b"\x01")  # no NUL: the decoder or the parser must refuse it
    (tmp_path / "blob.py").write_bytes(b"import torch\n" + data)
    code, out, err = lint(capsys, "-j", "0", str(tmp_path))
    assert code == 2 and found(out) == [("good.py", 2, "WD101")]
    assert "blob.py:" in err and ": error: " in err


@pytest.mark.parametrize("text", ["", "\n\n\n", "   ", "# just a comment", "\ufeff"])
def test_empty_files_are_fine(tmp_path, capsys, text):
    (tmp_path / "empty.py").write_text(text, encoding="utf-8")
    assert lint(capsys, "-j", "0", str(tmp_path))[0] == 0


def discovered_then(monkeypatch, action):
    """Run ``action`` on the discovered files after discovery, before they are read."""
    real = runner.discover

    def discover_and_act(*args, **kwargs):
        found = real(*args, **kwargs)
        action(found.files)
        return found

    monkeypatch.setattr(runner, "discover", discover_and_act)


def test_file_that_vanishes_mid_run(tmp_path, capsys, good, monkeypatch):
    (tmp_path / "gone.py").write_text(MISTAKE)
    discovered_then(monkeypatch, lambda files: os.remove(next(f for f in files if f.endswith("gone.py"))))
    code, out, err = lint(capsys, "-j", "0", str(tmp_path))
    assert code == 2 and found(out) == [("good.py", 2, "WD101")]
    assert "gone.py: error: cannot read: No such file or directory" in err


def test_file_that_loses_read_permission_mid_run(tmp_path, capsys, good, monkeypatch):
    (tmp_path / "locked.py").write_text(MISTAKE)
    real_open = source_module.os.open

    def guarded_open(path, flags, *args):
        if os.fspath(path).endswith("locked.py"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args)

    discovered_then(monkeypatch, lambda files: monkeypatch.setattr(source_module.os, "open", guarded_open))
    code, out, err = lint(capsys, "-j", "0", str(tmp_path))
    assert code == 2 and found(out) == [("good.py", 2, "WD101")]
    assert "locked.py: error: cannot read: Permission denied" in err


def test_file_replaced_by_a_folder_mid_run(tmp_path, capsys, good, monkeypatch):
    (tmp_path / "shape.py").write_text(MISTAKE)

    def swap(files):
        target = next(f for f in files if f.endswith("shape.py"))
        os.remove(target)
        os.mkdir(target)

    discovered_then(monkeypatch, swap)
    code, out, err = lint(capsys, "-j", "0", str(tmp_path))
    assert code == 2 and "shape.py: error: cannot read: is a folder" in err


def test_folder_named_like_a_python_file_is_walked(tmp_path, capsys):
    (tmp_path / "package.py").mkdir()
    (tmp_path / "package.py" / "inner.py").write_text(MISTAKE)
    code, out, _ = lint(capsys, "-j", "0", str(tmp_path))
    assert (code, found(out)) == (1, [("inner.py", 2, "WD101"), ("inner.py", 2, "WD210")])


@pytest.mark.timeout(60)
def test_fifo_and_dangling_links_are_reported_without_hanging(tmp_path, capsys, good):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "dangling.py").symlink_to(tmp_path / "nowhere.py")
    code, out, err = lint(capsys, "-j", "0", str(tmp_path))
    assert code == 2 and found(out) == [("good.py", 2, "WD101")]
    assert "pipe.py: error: cannot read: not a regular file" in err
    assert "dangling.py: error: cannot read: No such file or directory" in err


def test_symlink_loops_terminate(tmp_path, capsys, good):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "back").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "loop_a").symlink_to(tmp_path / "loop_b")
    (tmp_path / "loop_b").symlink_to(tmp_path / "loop_a")
    code, out, _ = lint(capsys, "-j", "0", "--select", "WD101", str(tmp_path))
    assert (code, found(out)) == (1, [("good.py", 2, "WD101")])


def test_one_run_over_every_kind_of_bad_file(tmp_path, capsys, good):
    bad = {
        "syntax.py": b"import torch\nopt = torch.optim.Adam(\n",
        "binary.py": b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)),
        "latin.py": b"s = '\xe9'\n",
        "nested.py": nested("(" * 1000 + "0.1" + ")" * 1000).encode(),
    }
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "also_good.py").write_text(GOOD)
    code, out, err = lint(capsys, "-j", "2", "--select", "WD101", str(tmp_path))
    assert code == 2
    assert found(out) == [("also_good.py", 2, "WD101"), ("good.py", 2, "WD101")]
    reported = sorted(line.split(":")[0].rsplit(os.sep, 1)[-1] for line in err.splitlines() if ": error: " in line)
    assert reported == sorted(bad)
