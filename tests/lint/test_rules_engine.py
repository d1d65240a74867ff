"""The engine's contract: API, positions, pre-filter, parse errors, never importing torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from libcst.metadata import MetadataWrapper, PositionProvider

from wd_guard.lint.analysis.engine import build_context, lint_source, might_matter, parse
from wd_guard.lint.analysis.positions import node_spans
from wd_guard.lint.rules import ALL_RULES
from wd_guard.lint.analysis.walk import iter_nodes

FIXTURES = Path(__file__).parent / "fixtures"

ADAM = "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)\n"


def test_lines_and_columns_are_one_based():
    (diagnostic,) = lint_source(ADAM, "train.py", select={"WD101"})
    assert (diagnostic.line, diagnostic.column) == (2, 7)
    assert (diagnostic.end_line, diagnostic.end_column) == (2, len("opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)") + 1)
    assert diagnostic.path == "train.py"
    assert diagnostic.severity == "error"


def test_bytes_and_text_give_the_same_findings():
    assert lint_source(ADAM.encode()) == lint_source(ADAM)
    latin = "# -*- coding: latin-1 -*-\n# caf\xe9\n" + ADAM
    assert [d.line for d in lint_source(latin.encode("latin-1"))] == [4, 4]


def test_findings_are_sorted_and_distinct():
    source = ADAM + "opt2 = torch.optim.Adam(model.parameters(), weight_decay=0.1)\n"
    found = lint_source(source)
    assert found == sorted(found, key=lambda d: d.sort_key())
    assert len({(d.code, d.line, d.column) for d in found}) == len(found)


@pytest.mark.parametrize(
    "source",
    ["x = (\n", "def f(:\n    pass\n", b"x = '\xff\xfe'\n", b"# coding: nonsense\nx = 1\n", "a" + ".b" * 3000, "(" * 3000 + ")" * 3000],
    ids=["unclosed", "bad-def", "not-utf8", "unknown-coding", "deep-attribute", "deep-parens"],
)
def test_unparsable_source_raises_parser_syntax_error(source):
    with pytest.raises(cst.ParserSyntaxError):
        lint_source(source)


@pytest.mark.parametrize("source", ["", "\n", "# only a comment\n", "\ufeffx = 1\n", "x = 1"])
def test_trivial_sources_have_no_findings(source):
    assert lint_source(source) == []


def test_prefilter_skips_files_without_vocabulary():
    assert not might_matter(b"import os\nprint(os.getcwd())\n")
    assert not might_matter(b"from torch import nn\nlayer = nn.Linear(3, 4)\n")
    assert might_matter(ADAM.encode())
    sequential = b"from torch import nn\nm = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))\n"
    assert not might_matter(sequential)
    # WD204 needs a decaying optimizer in the file too.
    assert not might_matter(sequential, select={"WD204"})
    assert might_matter(sequential + b"opt = torch.optim.SGD(m.parameters(), lr=0.1, weight_decay=1e-4)\n", select={"WD204"})


def test_words_only_in_strings_and_comments_skip_the_libcst_parse(monkeypatch):
    from wd_guard.lint.analysis import parse as analysis

    def refuse(source):
        raise AssertionError("libcst should not parse this file")

    monkeypatch.setattr(analysis, "_libcst_module", refuse)
    source = '"""Use torch.optim.Adam(model.parameters(), weight_decay=0.1)."""\n# Adam, SGD\nAdamWrapper = 1\n'
    assert might_matter(source)  # the bytes hold the words ...
    assert lint_source(source) == []  # ... the identifiers do not


def test_prefilter_reads_files_it_cannot_decode_as_ascii():
    utf16 = ADAM.encode("utf-16")
    assert might_matter(utf16)
    assert might_matter(b"# -*- coding: utf-16 -*-\nx = 1\n")
    assert not might_matter(b"# -*- coding: latin-1 -*-\nx = 1\n")


def _wanted_nodes(module):
    kinds = (cst.Call, cst.Arg, cst.BinaryOperation, cst.Attribute, cst.Dict, cst.AugAssign, cst.Name, cst.Element,
             cst.SimpleStatementLine, cst.ImportFrom, cst.FunctionDef, cst.ClassDef, cst.Decorator, cst.For)
    return [node for node in iter_nodes(module) if isinstance(node, kinds)]


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.py"))[:8], ids=lambda p: p.name)
def test_positions_equal_libcst_position_provider(path):
    module = parse(path.read_bytes())
    nodes = _wanted_nodes(module)
    ours = node_spans(module, nodes)
    theirs = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    for node in nodes:
        expected = theirs[node]
        assert ours[node] == ((expected.start.line, expected.start.column), (expected.end.line, expected.end.column))


def test_walk_sees_every_node_libcst_visits():
    source = (FIXTURES / "nanogpt_style.py").read_text()
    module = parse(source)

    class Collect(cst.CSTVisitor):
        def __init__(self):
            self.calls = []

        def visit_Call(self, node):
            self.calls.append(node)

    visitor = Collect()
    module.visit(visitor)
    ours = [node for node in iter_nodes(module) if isinstance(node, cst.Call)]
    assert {id(node) for node in ours} == {id(node) for node in visitor.calls}


def test_walk_meets_nodes_in_source_order():
    module = parse("a(1)\nb(2)\nif x:\n    c(3)\nd(e(4))\n")
    calls = [node.func.value for node in iter_nodes(module) if isinstance(node, cst.Call)]
    assert calls == ["a", "b", "c", "d", "e"]


def test_rules_share_one_walk():
    module = parse(ADAM)
    ctx = build_context(module, "x.py", ALL_RULES)
    assert len(ctx.nodes(cst.Call)) == 2  # torch.optim.Adam(...) and model.parameters()


def test_a_failing_rule_warns_and_the_others_still_report(monkeypatch):
    from wd_guard.lint.rules.optimizers import ExcessiveDecay

    def broken(self):
        raise ValueError("boom")
        yield

    monkeypatch.setattr(ExcessiveDecay, "check", broken)
    with pytest.warns(RuntimeWarning, match="WD302"):
        found = lint_source(ADAM)
    assert {d.code for d in found} == {"WD101", "WD210"}


def test_linting_imports_neither_torch_nor_lightning():
    code = f"""
        import sys
        from wd_guard.lint.analysis.engine import lint_source, might_matter
        assert lint_source({ADAM!r}) and might_matter(b"Adam")
        print([m for m in ("torch", "lightning", "pytorch_lightning") if m in sys.modules])
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_prefilter_loads_neither_the_parser_nor_the_rules():
    code = """
        import sys
        from wd_guard.lint.analysis.engine import might_matter
        assert might_matter(b"opt = torch.optim.Adam(params, weight_decay=0.1)")
        print(sorted(m for m in ("libcst", "wd_guard.lint.rules", "torch") if m in sys.modules))
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


hypothesmith = pytest.importorskip("hypothesmith")


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(source=hypothesmith.from_grammar())
def test_never_crashes_on_valid_python(source):
    selected = {rule.CODE for rule in ALL_RULES}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a rule that fails warns
        try:
            found = lint_source(source, select=selected)
        except cst.ParserSyntaxError:
            return  # a grammar corner libcst does not parse is reported, not a crash
    assert all(d.line >= 1 and d.column >= 1 for d in found)
