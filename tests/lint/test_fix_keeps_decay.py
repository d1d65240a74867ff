"""The Adam-to-AdamW fix never adds decay: code run before and after it builds real torch
optimizers whose every param group has the same ``weight_decay``.

AdamW's default decay is 0.01 and Adam's is 0. A call that relied on Adam's default, directly
or through ``functools.partial``, must get ``weight_decay=0.0`` from the fix.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import pytest

from wd_guard.lint.fixes.apply import fix_text

torch = pytest.importorskip("torch")

PARAMS = "import torch\np1 = [torch.nn.Parameter(torch.zeros(2))]\np2 = [torch.nn.Parameter(torch.zeros(2))]\n"

CASES = {
    "partial_one_call_with_decay_one_without": (
        "from functools import partial\nfrom torch.optim import Adam\n" + PARAMS
        + "make = partial(Adam, lr=1e-3)\no1 = make(p1, weight_decay=1e-4)\no2 = make(p2)\n"
    ),
    "partial_through_the_module": (
        "import functools\n" + PARAMS
        + "make = functools.partial(torch.optim.Adam, lr=1e-3)\no1 = make(p1, weight_decay=1e-4)\no2 = make(p2, lr=1e-2)\n"
    ),
    "partial_groups_one_without_decay": (
        "from functools import partial\nfrom torch.optim import Adam\n" + PARAMS
        + "make = partial(Adam, lr=1e-3)\no1 = make([{'params': p1, 'weight_decay': 1e-4}, {'params': p2}])\n"
    ),
    "partial_used_before_its_calls_are_seen": (
        "from functools import partial\nfrom torch.optim import Adam\n" + PARAMS
        + "make = partial(Adam, lr=1e-3)\nfactories = {'adam': make}\no1 = make(p1, weight_decay=1e-4)\no2 = factories['adam'](p2)\n"
    ),
    "partial_every_call_passes_decay": (
        "from functools import partial\nfrom torch.optim import Adam\n" + PARAMS
        + "make = partial(Adam, lr=1e-3)\no1 = make(p1, weight_decay=1e-4)\no2 = make(p2, weight_decay=0.0)\n"
    ),
    "partial_with_its_own_decay": (
        "from functools import partial\nfrom torch.optim import Adam\n" + PARAMS
        + "make = partial(Adam, lr=1e-3, weight_decay=1e-4)\no1 = make(p1)\no2 = make(p2, weight_decay=0)\n"
    ),
    "call_with_groups_one_without_decay": (
        PARAMS + "o1 = torch.optim.Adam([{'params': p1, 'weight_decay': 1e-4}, {'params': p2}], lr=1e-3)\n"
    ),
    "call_with_decay": PARAMS + "o1 = torch.optim.Adam(p1, lr=1e-3, weight_decay=1e-4)\n",
    "partial_call_passing_decay_by_position": (
        "from functools import partial\nfrom torch.optim import Adam\n" + PARAMS
        + "make = partial(Adam)\no1 = make(p1, 1e-3, (0.9, 0.999), 1e-8, 1e-4)\no2 = make(p2)\n"
    ),
}


def optimizers(source: str) -> Dict[str, Tuple[str, List[float]]]:
    """Run ``source``; each optimizer it binds, by name: its class and each group's decay."""
    namespace: Dict[str, object] = {}
    exec(compile(source, "<fixed>", "exec"), namespace)
    return {
        name: (type(value).__name__, [group["weight_decay"] for group in value.param_groups])
        for name, value in sorted(namespace.items())
        if isinstance(value, torch.optim.Optimizer)
    }


@pytest.mark.parametrize("source", CASES.values(), ids=CASES.keys())
def test_the_fix_keeps_every_groups_decay(source):
    before = optimizers(source)
    fixed = fix_text(source, select={"WD101"}, unsafe=True).text
    after = optimizers(fixed)
    assert {name: decays for name, (_, decays) in after.items()} == {name: decays for name, (_, decays) in before.items()}, fixed


ADAMW = {"AdamW"}
EXPECTED_CLASSES = {
    "partial_one_call_with_decay_one_without": ADAMW,
    "partial_through_the_module": ADAMW,
    "partial_groups_one_without_decay": ADAMW,
    "partial_used_before_its_calls_are_seen": ADAMW,
    "partial_every_call_passes_decay": ADAMW,
    "partial_with_its_own_decay": ADAMW,
    "call_with_groups_one_without_decay": ADAMW,
    "call_with_decay": ADAMW,
    # A call may pass the decay by position: a decay in the partial would be passed twice,
    # so the call gets the decoupling flag instead of a new class.
    "partial_call_passing_decay_by_position": {"Adam"},
}


@pytest.mark.parametrize("case", EXPECTED_CLASSES)
def test_the_fix_is_made(case):
    fixed = fix_text(CASES[case], select={"WD101"}, unsafe=True)
    assert fixed.applied and {kind for kind, _ in optimizers(fixed.text).values()} == EXPECTED_CLASSES[case]


def test_the_partial_gets_adams_default_and_calls_keep_theirs():
    fixed = fix_text(CASES["partial_one_call_with_decay_one_without"], select={"WD101"}, unsafe=True).text
    assert "make = partial(AdamW, lr=1e-3, weight_decay=0.0)\no1 = make(p1, weight_decay=1e-4)\no2 = make(p2)\n" in fixed
    fixed = fix_text(CASES["partial_every_call_passes_decay"], select={"WD101"}, unsafe=True).text
    assert "make = partial(AdamW, lr=1e-3)\n" in fixed  # nothing relies on the default: nothing added
