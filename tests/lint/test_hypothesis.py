"""Property tests: on any input the linter gives findings or a reported problem, never an exception.

Three sources of input: programs from the Python grammar (hypothesmith), training code built
from the optimizer table and the rules' own examples and then mutated (so that every rule's
code paths run, on valid and broken variants), and raw bytes. The CI profile keeps the file
under a minute; ``WD_LINT_FUZZ=thorough`` runs thousands of programs of each kind.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import hypothesmith
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wd_guard.catalogue import iter_rules
from wd_guard.lint import diagnostic
from wd_guard.lint.analysis import workers as isolate
from wd_guard.lint.files.settings import expand
from wd_guard.lint.diagnostic import Job
from wd_guard.lint.rules import ALL_RULES
from wd_guard.lint.api import Options, lint_files
from wd_guard.optimizers import OPTIMIZERS

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much, HealthCheck.large_base_example]
settings.register_profile("wd-lint-ci", max_examples=40, deadline=None, suppress_health_check=_QUIET)
settings.register_profile("wd-lint-thorough", max_examples=3000, deadline=None, suppress_health_check=_QUIET)
PROFILE = settings.get_profile("wd-lint-" + os.environ.get("WD_LINT_FUZZ", "ci"))
ALL = expand("ALL")
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")  # hypothesmith compiles what it draws
STATIC = {rule.code for rule in iter_rules("static")}
ALLOWED_PROBLEMS = {diagnostic.SYNTAX, diagnostic.TOO_DEEP}
LINE_BREAK = re.compile(r"\r\n|\r|\n")


def check_report(report, text: str, allowed=ALLOWED_PROBLEMS) -> None:
    """Every diagnostic lies inside the text and names a static code; problems are expected kinds."""
    lines = len(LINE_BREAK.split(text))
    for d in report.diagnostics:
        assert d.code in STATIC and d.message
        assert 1 <= d.line <= d.end_line <= lines and d.column >= 1 and d.end_column >= 1
        assert (d.end_line, d.end_column) >= (d.line, d.column)
    for problem in report.problems:
        assert problem.kind in allowed, problem
        assert problem.line is None or problem.line >= 1


def lint_text(folder: Path, data: bytes):
    """The whole pipeline (read, decode, pre-filter, parse, rules, noqa) on one file, in process."""
    path = folder / "generated.py"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a rule that fails warns: make it fail here
        return lint_files([str(path)], Options(codes=ALL, processes=0, root=folder))


def analyse_text(text: str):
    """Parse and run every rule, whatever the pre-filter would say."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        outcome = isolate.call_with_deep_stack(isolate.analyse, Job("generated.py", text, ALL))
    assert outcome.problem is None or outcome.problem.kind in ALLOWED_PROBLEMS, outcome.problem
    return outcome


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@PROFILE
@given(source=hypothesmith.from_grammar())
def test_grammar_programs_never_raise(folder, source):
    outcome = analyse_text(source)
    report = lint_text(folder, source.encode("utf-8", "surrogatepass"))
    check_report(report, source, ALLOWED_PROBLEMS | {diagnostic.NOT_TEXT})
    if outcome.problem is None:
        check_report(type(report)(diagnostics=list(outcome.diagnostics)), source)


# -- training code from the optimizer table and the rules' examples, then mutated -----------------

SHORT_NAMES = sorted({fact.short_name for fact in OPTIMIZERS})
QUALIFIED = sorted({fact.name for fact in OPTIMIZERS})
EXAMPLES = [example for rule in ALL_RULES for example in rule.VALID] + [e.code for rule in ALL_RULES for e in rule.INVALID]
IMPORTS = [
    "import torch",
    "import torch.optim as optim",
    "from torch import optim, nn",
    "from torch.optim import *",
    "import functools",
    "from functools import partial",
    "import lightning as L",
    "from torch.optim import {name} as Opt",
    "from torch.optim import {name}",
]
identifiers = st.sampled_from(["model", "self", "self.model", "net", "cfg", "hparams", "self.hparams", "wd", "lr", "groups", "p"])
literals = st.one_of(
    st.sampled_from(["0", "0.0", "-0.0", "1e-2", "5e-4", "0.5", "1.0", "10", "1e300", "float('nan')", "float('inf')", "True", "None", "'0.1'", "0x10", "1_0.0_1"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-10, 10**6).map(str),
)
values = st.one_of(
    literals,
    identifiers,
    st.builds("{}.{}".format, identifiers, st.sampled_from(["weight_decay", "wd", "lr", "decay"])),
    st.builds("{} * {}".format, literals, literals),
    st.builds("-({})".format, literals),
    st.builds("getattr({}, 'wd', {})".format, identifiers, literals),
)
params = st.one_of(
    st.builds("{}.parameters()".format, identifiers),
    st.builds("filter(lambda q: q.requires_grad, {}.parameters())".format, identifiers),
    st.builds("[q for q in {}.parameters() if q.requires_grad]".format, identifiers),
    st.builds("list({}.named_parameters())".format, identifiers),
    st.builds("[{{'params': {}.parameters(), 'weight_decay': {}}}, {{'params': [], 'lr': {}}}]".format, identifiers, values, values),
    st.builds("({{'params': {}, 'weight_decay': {}}},)".format, identifiers, values),
    identifiers,
    st.just("*args"),
)
keywords = st.lists(
    st.tuples(st.sampled_from(["lr", "weight_decay", "momentum", "betas", "eps", "decoupled_weight_decay", "amsgrad", "nesterov"]), values),
    max_size=4,
).map(lambda pairs: [f"{k}={v}" for k, v in dict(pairs).items()])
callee = st.one_of(
    st.sampled_from(SHORT_NAMES),
    st.sampled_from(QUALIFIED),
    st.builds("optim.{}".format, st.sampled_from(SHORT_NAMES)),
    st.just("Opt"),
    st.sampled_from(["MyOptimizer", "getattr(torch.optim, name)", "registry['adam']"]),
)


@st.composite
def optimizer_calls(draw):
    name = draw(callee)
    arguments = [draw(params)] + draw(st.lists(values, max_size=5)) if draw(st.booleans()) else [draw(params)]
    arguments += draw(keywords) + (["**kwargs"] if draw(st.booleans()) else [])
    call = f"{name}({', '.join(arguments)})"
    if draw(st.integers(0, 5)) == 0:
        call = f"functools.partial({name}, {', '.join(draw(keywords)) or 'lr=1e-3'})({draw(params)})"
    return call


penalties = st.one_of(
    st.builds("loss = loss + {} * sum(q.pow(2).sum() for q in {}.parameters())".format, literals, identifiers),
    st.builds("loss += {} * torch.norm({}, 2) ** 2".format, literals, identifiers),
    st.builds("loss = criterion(out, y) + {} * ({} ** 2).sum()".format, literals, identifiers),
    st.builds("reg = torch.linalg.norm({}) ; loss = loss + reg".format, identifiers),
)
sequential = st.lists(
    st.sampled_from(["nn.Linear(4, 4)", "nn.Conv2d(3, 8, 3)", "nn.BatchNorm1d(4)", "nn.BatchNorm2d(8)", "nn.ReLU()", "nn.Identity()"]),
    max_size=5,
).map(lambda layers: f"block = nn.Sequential({', '.join(layers)})")


@st.composite
def statements(draw):
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(penalties)
    if kind == 1:
        return draw(sequential)
    if kind == 2:
        return f"{draw(st.sampled_from(['wd', 'lr', 'decay']))} = {draw(values)}"
    return f"opt = {draw(optimizer_calls())}"


def indent(lines, prefix="    "):
    return [prefix + line for line in lines] or [prefix + "pass"]


@st.composite
def training_code(draw):
    name = draw(st.sampled_from(SHORT_NAMES))
    header = [line.format(name=name) for line in draw(st.lists(st.sampled_from(IMPORTS), min_size=1, max_size=4))]
    body = draw(st.lists(statements(), min_size=1, max_size=6))
    wrapper = draw(st.integers(0, 3))
    if wrapper == 1:
        body = ["def build(model, wd, lr=1e-3, **kwargs):", *indent(body), "    return opt"]
    elif wrapper == 2:
        returned = draw(st.sampled_from(["opt", "[opt]", "(opt,)", "{'optimizer': opt, 'lr_scheduler': None}"]))
        body = ["class Module(L.LightningModule):", "    def configure_optimizers(self):", *indent(body, "        "), f"        return {returned}"]
    elif wrapper == 3:
        body = [draw(st.sampled_from(EXAMPLES)).rstrip("\n"), *body]
    return "\n".join(header + body) + "\n"


@st.composite
def mutated(draw, sources):
    """A source with a few random edits: most break the syntax somewhere, some only the values."""
    text = draw(sources)
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["delete", "insert", "duplicate-line"]))
        if edit == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 5)):]
        elif edit == "insert":
            token = draw(st.sampled_from(["(", ")", "[", "]", ":", ",", "=", "**", " lambda ", "\n", "\t", "#", "'", '"""', "\\", "\r\n", "é", "\x0c", "  # noqa"]))
            text = text[:position] + token + text[position:]
        else:
            lines = text.splitlines(keepends=True) or [""]
            index = draw(st.integers(0, len(lines) - 1))
            text = "".join(lines[: index + 1] + lines[index:])
    return text


@PROFILE
@given(source=st.one_of(training_code(), st.sampled_from(EXAMPLES)))
def test_training_code_gives_findings_or_a_syntax_error(folder, source):
    outcome = analyse_text(source)
    assert outcome.problem is None, outcome.problem  # built to be valid Python: it must parse
    check_report(lint_text(folder, source.encode()), source)


@settings(PROFILE, max_examples=PROFILE.max_examples * 3)
@given(source=mutated(st.one_of(training_code(), st.sampled_from(EXAMPLES))))
def test_mutated_training_code_never_raises(folder, source):
    analyse_text(source)
    check_report(lint_text(folder, source.encode("utf-8", "surrogatepass")), source, ALLOWED_PROBLEMS | {diagnostic.NOT_TEXT})


@settings(PROFILE, max_examples=PROFILE.max_examples * 3)
@given(tail=st.binary(max_size=512), head=st.sampled_from([b"", b"import torch\nopt = torch.optim.Adam(", b"\xef\xbb\xbf", b"# coding: latin-1\n"]))
def test_raw_bytes_never_raise(folder, head, tail):
    data = head + tail
    report = lint_text(folder, data)
    check_report(report, data.decode("latin-1"), ALLOWED_PROBLEMS | {diagnostic.NOT_TEXT})
