"""Each rule page's *Example* triggers its rule and its *Use instead* does not.

Static rules are checked by linting the snippets, runtime rules by running them on a real
model and auditing the optimizer they build; ``wd-lint --explain`` prints the page's text.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List

import pytest
import torch
from torch import nn

import wd_guard
from wd_guard import audit
from wd_guard.catalogue import get_rule, iter_rules
from wd_guard.lint.command import cli
from wd_guard.lint.analysis.engine import lint_source

IMPORTS = "import torch\nfrom torch import nn\nimport wd_guard\n"
RUNTIME_ONLY_STEPS = 10_000  # the run length WD301's example speaks of


def snippet(code: str, section: str) -> str:
    return re.search(r"```python\n(.*?)```", get_rule(code).sections()[section], flags=re.S).group(1)


@pytest.mark.parametrize("code", [rule.code for rule in iter_rules()])
def test_explain_prints_the_rule_page_text(code, capsys):
    assert cli.main(["--explain", code]) == 0
    assert capsys.readouterr().out == get_rule(code).explain()


@pytest.mark.parametrize("code", [rule.code for rule in iter_rules("static")])
def test_static_example_is_reported_and_its_fix_is_not(code):
    def codes(section: str) -> List[str]:
        return [d.code for d in lint_source(IMPORTS + snippet(code, section), select={code})]

    assert codes("Example") == [code]
    assert codes("Use instead") == []


def user_namespace() -> Dict[str, Any]:
    """What a rule's snippet assumes a user has: a model with every kind of parameter."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    matrices = [p for name, p in model.named_parameters() if name in ("1.weight", "3.weight")]
    others = [p for name, p in model.named_parameters() if name not in ("1.weight", "3.weight")]
    return {
        "torch": torch,
        "nn": nn,
        "wd_guard": wd_guard,
        "model": model,
        "params": list(model.parameters()),
        "groups": [{"params": matrices}, {"params": others, "weight_decay": 0.0}],
    }


def runtime_codes(source: str, namespace: Dict[str, Any]) -> List[str]:
    """Run a snippet, then audit the optimizer it built on the module it trains."""
    exec(compile(source, "<rule snippet>", "exec"), namespace)
    if "block" in namespace:
        module, example = namespace["block"], torch.randn(2, 64, 8, 8)
    else:
        module, example = namespace["model"], torch.randint(0, 10, (2, 3))
    # The optimizer the snippet built, or every optimizer it built (WD206 needs two).
    built = [value for value in namespace.values() if isinstance(value, torch.optim.Optimizer)]
    optimizers = namespace["optimizer"] if "optimizer" in namespace else built
    findings = audit(module, optimizers, example_input=example, total_steps=RUNTIME_ONLY_STEPS)
    return [finding.code for finding in findings]


@pytest.mark.parametrize("code", [rule.code for rule in iter_rules("runtime")])
def test_runtime_example_is_found_and_its_fix_is_not(code):
    example = user_namespace()
    assert code in runtime_codes(snippet(code, "Example"), example)
    # A fresh namespace (the example's optimizer filled in the groups' defaults), keeping
    # what the example defined for its fix to use (WD204's block).
    fixed = {**user_namespace(), **{name: example[name] for name in ("block",) if name in example}}
    assert code not in runtime_codes(snippet(code, "Use instead"), fixed)


@pytest.mark.parametrize("code", [rule.code for rule in iter_rules()])
def test_every_use_instead_snippet_passes_wd_lint_itself(code, tmp_path, capsys):
    """The fixes the docs recommend are clean under every rule wd-lint runs by default."""
    path = tmp_path / f"{code}_fixed.py"
    path.write_text(IMPORTS + snippet(code, "Use instead"))
    assert cli.main(["--no-cache", "--jobs", "0", str(path)]) == 0, capsys.readouterr().out


def test_wd101_explains_the_retune_with_its_rule_of_thumb(capsys):
    from wd_guard.catalogue import RETUNE_WEIGHT_DECAY

    assert cli.main(["--explain", "WD101"]) == 0
    out = capsys.readouterr().out
    assert RETUNE_WEIGHT_DECAY in out and "retune weight_decay" in get_rule("WD101").fix
