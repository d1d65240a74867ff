"""Every script in examples/ runs, with few steps, and shows what its docstring promises."""

from __future__ import annotations

import os
import re
import runpy
import struct
import warnings
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import torch

from wd_guard import WeightDecayWarning

from docs_helpers import EXAMPLES, ROOT


@pytest.fixture()
def in_examples(tmp_path, monkeypatch):
    """Run an example as ``python examples/NAME.py`` would, from an empty working directory."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WD_GUARD_EXAMPLE_STEPS", "12")

    def run(name: str, *argv: str) -> None:
        monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), *argv])
        runpy.run_path(str(EXAMPLES / name), run_name="__main__")

    threads = torch.get_num_threads()  # the examples pin one thread; give the worker its own back
    yield run
    torch.set_num_threads(threads)


def codes(caught: List[warnings.WarningMessage]) -> List[str]:
    return [str(w.message).split()[0] for w in caught if issubclass(w.category, WeightDecayWarning)]


def test_bad_optimizers_audit_agrees_with_the_marked_mistakes(in_examples, capsys):
    in_examples("bad_optimizers.py")
    report = dict(re.findall(r"^(\w+): (.*)$", capsys.readouterr().out, flags=re.M))
    assert "WD101" in report["coupled_adam"] and "WD101" in report["coupled_rmsprop_positional"]
    assert {"WD201", "WD202"} <= set(report["adamw_defaults"].split(", "))
    assert "WD302" in report["sgd_excessive"]
    assert "WD204" in report["sgd_blanket"]  # the first Linear feeds BatchNorm, seen from data flow


def test_plain_pytorch_audits_fixes_and_reports_stats(in_examples, capsys):
    in_examples("plain_pytorch.py", "--steps", "5")
    out = capsys.readouterr().out
    mistakes, fixed = out.split("audit of AdamW")
    assert {"WD101", "WD201", "WD202", "WD203"} <= set(re.findall(r"WD\d{3}", mistakes))
    assert "no findings" in fixed.splitlines()[0]
    stats = re.findall(r"step\s+(\d+)\s+(\S+/\S+)\s+(\S+)", fixed)
    assert {key.split("/")[0] for _, key, _ in stats} == {"weight_norm", "effective_decay"}
    assert {step for step, _, _ in stats} >= {"0", "4"}


def test_lightning_classifier_warns_on_the_mistaken_run_only(in_examples, capsys, tmp_path):
    with pytest.warns(WeightDecayWarning) as caught:
        in_examples("lightning_classifier.py", "--out", str(tmp_path / "runs"))
    found = codes(caught.list)
    assert {"WD101", "WD201", "WD202", "WD203"} <= set(found)
    # Each mistake is warned once; the fixed run adds at most WD301 (12 steps decay little).
    assert set(found) - {"WD101", "WD201", "WD202", "WD203"} <= {"WD301"}
    assert len(found) == len(set(found))
    out = capsys.readouterr().out
    assert re.search(r"^mistaken: validation accuracy \d\.\d{3}$", out, flags=re.M)
    assert re.search(r"^fixed: validation accuracy \d\.\d{3}$", out, flags=re.M)
    for run in ("mistaken", "fixed"):
        columns = (tmp_path / "runs" / run / "metrics.csv").read_text().splitlines()[0].split(",")
        for key in readme_logged_keys():
            assert any(re.fullmatch(key, column) for column in columns), (key, columns)


def readme_logged_keys() -> List[str]:
    """The keys README.md's "Logged keys" table promises, as regular expressions."""
    section = (ROOT / "README.md").read_text().split("### Logged keys")[1].split("\n#")[0]
    keys = re.findall(r"`((?:weight_norm|effective_decay)/[^`]*)`", section)
    assert len(keys) >= 6, section
    placeholders = {re.escape("<name>"): r"[\w.]+", re.escape("<i>"): r"\d+", re.escape("<j>"): r"\d+"}
    patterns = []
    for key in keys:
        pattern = re.escape(key)
        for placeholder, regex in placeholders.items():
            pattern = pattern.replace(placeholder, regex)
        patterns.append(pattern)
    return patterns


def test_lightning_cli_builds_the_callback_from_yaml(in_examples, tmp_path):
    config = str(EXAMPLES / "lightning_cli.yaml")
    overrides = ["--trainer.max_steps=3", "--trainer.log_every_n_steps=1", f"--trainer.logger.init_args.save_dir={tmp_path}"]
    with pytest.warns(WeightDecayWarning) as caught:
        in_examples("lightning_cli.py", "fit", "--config", config, *overrides)
    assert "WD101" in codes(caught.list)
    assert list(tmp_path.glob("lightning_logs/version_*/metrics.csv"))


def png_size(path: Path) -> tuple:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_demo_prints_findings_lints_and_draws(tmp_path):
    env = {**os.environ, "WD_GUARD_EXAMPLE_STEPS": "20"}
    command = [sys.executable, str(EXAMPLES / "demo.py"), "--out", str(tmp_path / "out")]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=290)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    mistaken, fixed = out.split("fixed run:")
    assert re.search(r"^wd-guard: 4 findings \(1 error, 3 warnings\)\n  code +severity", mistaken, flags=re.M)
    assert re.search(r"^  WD203 +warning +0 +0 +1 +decayed-embedding$", mistaken, flags=re.M)
    assert re.search(r"^  WD101 ", mistaken, flags=re.M) and re.search(r"^  WD203 ", mistaken, flags=re.M)
    assert not re.search(r"^  WD[12]\d\d ", fixed, flags=re.M)
    assert re.search(r"^examples/bad_optimizers\.py:\d+:\d+: WD302 ", out, flags=re.M)
    (summary,) = re.findall(r"^```text\n(.*?)^```", (ROOT / "README.md").read_text(), flags=re.M | re.S)
    assert summary in mistaken  # the README shows the demo's real output
    picture = Path(re.search(r"^picture: (.+)$", out, flags=re.M).group(1))
    assert picture == (tmp_path / "out" / "weight_norms.png").resolve()
    width, height = png_size(picture)
    assert width > 1000 and height > 500
