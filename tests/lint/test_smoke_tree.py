"""A generated repository of a few hundred files, linted end to end with worker processes.

The tree mixes the shapes of a real research repository: packages of plain modules (which the
pre-filter skips), training scripts and Lightning modules in several styles with known
mistakes, odd but valid files (BOM, CRLF, latin-1, deep nesting, a long generated module),
and folders that must be skipped (.git, a virtual environment, build output, a link loop).
Each mistake carries ``# expect: CODE`` on its line, so the test knows every finding that must
appear and that nothing else may. It records how many findings and how long the run took.
"""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path
from typing import Dict, Set, Tuple

import pytest

from wd_guard.lint.command.cli import main

EXPECT = re.compile(r"#\s*expect:\s*([A-Z0-9, ]+)$")

TEMPLATES = [
    """\
import torch
from torch import nn

model = nn.Sequential(nn.Linear({n}, {n}), nn.ReLU(), nn.Linear({n}, 1))
optimizer = torch.optim.Adam(model.parameters(), lr={lr}, weight_decay={wd})  # expect: WD101, WD210
""",
    """\
import torch.optim as optim


def build(model, cfg):
    return optim.AdamW(model.parameters(), lr=cfg.lr)  # expect: WD210
""",
    """\
import lightning as L
import torch


class LitModel(L.LightningModule):
    def __init__(self, weight_decay={wd}):
        super().__init__()
        self.save_hyperparameters()

    def configure_optimizers(self):
        optimizer = torch.optim.RMSprop(  # expect: WD101
            [{{"params": self.decay, "weight_decay": self.hparams.weight_decay}}, {{"params": self.rest, "weight_decay": 0.0}}],
            lr={lr},
        )
        return {{"optimizer": optimizer, "monitor": "val_loss"}}
""",
    """\
import torch

groups = [{{"params": decay, "weight_decay": 0.5}}, {{"params": no_decay, "weight_decay": 0.0}}]
optimizer = torch.optim.SGD(groups, lr=1.0, momentum=0.9)  # expect: WD302
""",
    """\
from torch.optim import AdamW


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{{"params": decay, "weight_decay": weight_decay}}, {{"params": no_decay, "weight_decay": 0.0}}]


optimizer = AdamW(param_groups(model, {wd}), lr={lr})
""",
    """\
import torch
import torch.nn.functional as F


def train_step(model, batch, optimizer):
    x, y = batch
    loss = F.cross_entropy(model(x), y)
    loss = loss + {wd} * sum(p.pow(2).sum() for p in model.parameters())  # expect: WD401
    loss.backward()
    optimizer.step()


optimizer = torch.optim.SGD([{{"params": weights, "weight_decay": 5e-4}}], lr=0.1)
""",
]
PLAIN = [
    '''"""Utilities for {name}."""

from dataclasses import dataclass


@dataclass
class {cls}Config:
    width: int = {n}
    depth: int = 4

    def scaled(self, factor: float) -> "{cls}Config":
        return {cls}Config(int(self.width * factor), self.depth)


def {name}(values):
    return [v * {n} for v in values if v]
''',
    '''import os
import sys


def main(argv=None):
    """Entry point for {name}."""
    argv = sys.argv[1:] if argv is None else argv
    for path in argv:
        if os.path.exists(path):
            print(path, {n})
    return 0
''',
]
MISTAKE = "import torch\nopt = torch.optim.Adam(groups, lr=1e-3, weight_decay=1e-2)  # expect: WD101\n"


def render(template: str, rng: random.Random) -> str:
    name = f"fn_{rng.randrange(10**6)}"
    return template.format(n=rng.choice([8, 64, 512]), lr=rng.choice(["1e-3", "3e-4"]), wd=rng.choice(["1e-2", "0.05"]), name=name, cls=name.title().replace("_", ""))


def odd_files() -> Dict[str, bytes]:
    body = MISTAKE.encode()
    generated = "".join(f"TABLE_{i} = ({i}, {i * 2}, 'row {i}')\n" for i in range(5000)) + MISTAKE
    return {
        "odd/bom.py": b"\xef\xbb\xbf" + body,
        "odd/crlf.py": body.replace(b"\n", b"\r\n"),
        "odd/latin1.py": b"# -*- coding: latin-1 -*-\nNAME = '\xe9t\xe9'\n" + body,
        "odd/nested.py": ("import torch\nopt = torch.optim.Adam(groups, weight_decay=" + "(" * 150 + "1e-2" + ")" * 150 + ")  # expect: WD101\n").encode(),
        "odd/generated_table.py": generated.encode(),
        "odd/empty.py": b"",
        "odd/__init__.py": b"",
    }


def build_tree(root: Path, seed: int = 1234) -> Tuple[int, Set[Tuple[str, int, str]]]:
    rng = random.Random(seed)
    files: Dict[str, bytes] = {}
    for package in range(12):
        base = "/".join(f"pkg{package}_{level}" for level in range(1 + package % 4))
        files[f"{base}/__init__.py"] = b""
        for index in range(22):
            pool = TEMPLATES if index % 3 == 0 else PLAIN
            files[f"{base}/module_{index}.py"] = render(rng.choice(pool), rng).encode()
    files.update(odd_files())
    for hidden in (".git/hooks/train.py", "venv/lib/train.py", "build/lib/train.py", "pkg0_0/__pycache__/x.py"):
        files[hidden] = MISTAKE.encode()
    files["myenv/pyvenv.cfg"] = b"home = /usr/bin\n"
    files["myenv/lib/train.py"] = MISTAKE.encode()
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "pkg0_0" / "loop").symlink_to(root, target_is_directory=True)
    skipped = (".git/", "venv/", "build/", "__pycache__/", "myenv/")
    expected = {
        (rel, number, code.strip())
        for rel, data in files.items()
        if not any(part in rel for part in skipped)
        for number, line in enumerate(data.decode("latin-1").splitlines(), 1)
        for match in [EXPECT.search(line)]
        if match
        for code in match.group(1).split(",")
    }
    linted = sum(1 for rel in files if rel.endswith(".py") and not any(part in rel for part in skipped))
    return linted, expected


@pytest.mark.timeout(300)
def test_generated_tree(tmp_path, monkeypatch, capsys, record_property):
    linted, expected = build_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    code = main(["--isolated", "--format", "json", "--jobs", "2"])
    seconds = time.perf_counter() - start
    captured = capsys.readouterr()
    found = {(d["path"].replace("\\", "/"), d["line"], d["code"]) for d in json.loads(captured.out)}
    assert captured.err == "", captured.err  # no file could fail to lint: no crash, no problem
    assert code == 1
    assert found == expected
    record_property("files", linted)
    record_property("findings", len(found))
    record_property("seconds", round(seconds, 2))
    print(f"smoke tree: {linted} files, {len(found)} findings, {seconds:.2f} s")


def test_tree_counts_are_what_the_generator_says(tmp_path):
    linted, expected = build_tree(tmp_path)
    assert linted == 12 * 23 + 7  # each package: 22 modules and an __init__; 7 odd files
    assert {code for _, _, code in expected} == {"WD101", "WD210", "WD302", "WD401"}
    assert len(expected) > 80
