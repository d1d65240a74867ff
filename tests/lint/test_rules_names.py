"""The name table: import styles, scopes, shadowing and constant values, as the rules see them."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from wd_guard.lint.analysis.collect import build_context
from wd_guard.lint.analysis.engine import parse
from wd_guard.lint.rules.base import LintRule


class _Calls(LintRule):
    """Collects calls so that the tests can ask how their callee resolves."""

    CODE = "WD101"
    NODES = (cst.Call,)

    def check(self):
        return iter(())


def _last_call(source: str):
    ctx = build_context(parse(textwrap.dedent(source)), "<test>", [_Calls])
    calls = ctx.nodes(cst.Call)
    assert calls, "the snippet must contain a call"
    call = calls[-1]
    return call, ctx.names.at(call)


def qualified(source: str):
    call, names = _last_call(source)
    return names.qualified(call.func)


def first_argument_number(source: str):
    call, names = _last_call(source)
    return names.number(call.args[0].value)


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.optim.Adam()",
        "import torch.optim\ntorch.optim.Adam()",
        "import torch.optim as optim\noptim.Adam()",
        "from torch import optim\noptim.Adam()",
        "from torch import optim as o\no.Adam()",
        "from torch.optim import Adam\nAdam()",
        "from torch.optim import Adam as A\nA()",
        "import torch\nopt_cls = torch.optim.Adam\nopt_cls()",
        "import torch\ndef f():\n    import torch.optim as optim\n    optim.Adam()",
        "from torch.optim import Adam\ndef f():\n    def g():\n        Adam()",
    ],
)
def test_import_styles_resolve(source):
    assert qualified(source) == "torch.optim.Adam"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("class Adam:\n    pass\nAdam()", None),
        ("from torch.optim import Adam\nAdam = make()\nAdam()", None),
        ("from torch.optim import Adam\nfrom mylib import Adam\nAdam()", None),
        ("try:\n    from apex import FusedAdam\nexcept ImportError:\n    FusedAdam = None\nFusedAdam()", None),
        ("from torch.optim import Adam\ndef f(Adam):\n    Adam()", None),
        ("from .optim import Adam\nAdam()", ".optim.Adam"),
        ("from .. import optim\noptim.Adam()", "...optim.Adam"),
        ("filter()", "builtins.filter"),
        ("def filter(*a):\n    pass\nfilter()", None),
        ("import torch\nx = torch.optim.Adam if c else torch.optim.SGD\nx()", None),
        ("import torch\ncls = getattr(torch.optim, name)\ncls()", None),
        ("a = b\nb = a\na()", None),
    ],
)
def test_what_cannot_be_followed_does_not_resolve(source, expected):
    assert qualified(source) == expected


def test_class_attributes_are_not_seen_from_methods():
    source = """
        from torch.optim import Adam
        class Wrapper:
            Adam = object
            def make(self):
                Adam()
    """
    assert qualified(source) == "torch.optim.Adam"
    assert qualified("from torch.optim import Adam\nclass C:\n    Adam = object\n    Adam()") == "builtins.object"


def test_locals_of_other_functions_do_not_interfere():
    source = """
        import torch
        def a():
            cls = torch.optim.SGD
        def b():
            cls = torch.optim.Adam
            cls()
    """
    assert qualified(source) == "torch.optim.Adam"


def test_global_and_nonlocal_rebinding_make_a_name_unknown():
    assert qualified("import torch\ncls = torch.optim.Adam\ndef f():\n    global cls\n    cls = other\ncls()") is None
    source = """
        import torch
        def outer():
            cls = torch.optim.Adam
            def inner():
                nonlocal cls
                cls = other
            cls()
    """
    assert qualified(source) is None


def test_star_imports_offer_candidates_without_hiding_builtins():
    call, names = _last_call("from torch.optim import *\nNAdam()")
    assert names.qualified(call.func) == "builtins.NAdam"
    assert names.star_candidates(call.func) == ("torch.optim.NAdam",)


@pytest.mark.parametrize(
    "source, value",
    [
        ("f(1e-2)", 0.01),
        ("f(-0.5)", -0.5),
        ("f(5e-4 * 2)", 1e-3),
        ("f(1_000)", 1000),
        ("f(0x10)", 16),
        ("f(2 ** -2)", 0.25),
        ("WD = 0.05\nf(WD)", 0.05),
        ("WD = 0.05\ndef g():\n    f(WD)", 0.05),
        ("def g():\n    wd = 0.1\n    f(wd)", 0.1),
        ("f(x)", None),
        ("f(1 / 0)", None),
        ("f(10.0 ** 400)", None),
        ("wd = 0.1\nwd = 0.2\nf(wd)", None),
        ("def g(wd=0.1):\n    f(wd)", None),
        ("a = b\nb = a\nf(a)", None),
        ("f(True)", None),
    ],
)
def test_numbers_are_folded_only_when_certain(source, value):
    result = first_argument_number(source)
    assert result == (pytest.approx(value) if value is not None else None)


@pytest.mark.parametrize(
    "source, zero",
    [("f(0)", True), ("f(0.0)", True), ("f(-0.0)", True), ("f(None)", True), ("f(0 if a else 0.0)", True),
     ("f(0 if a else 1e-4)", False), ("f(cfg.wd)", False), ("Z = 0\nf(Z)", True), ("f(1e-300 * 0)", True)],
)
def test_zero_means_provably_zero(source, zero):
    call, names = _last_call(source)
    assert names.is_zero(call.args[0].value) is zero


@pytest.mark.parametrize(
    "source, truth",
    [("f(True)", True), ("f(False)", False), ("f(1)", True), ("F = True\nf(F)", True), ("f(flag)", None), ("f(a or b)", None)],
)
def test_truth_of_flags(source, truth):
    call, names = _last_call(source)
    assert names.truth(call.args[0].value) is truth
