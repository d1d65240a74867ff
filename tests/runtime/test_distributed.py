"""WeightDecayGuard under DDP and FSDP2 with two CPU processes (gloo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("distributed_fit.py")
pytestmark = [pytest.mark.multiprocess, pytest.mark.timeout(300)]


def run(tmp_path: Path, mode: str) -> list:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # A hang (a collective one rank makes and the other skips) ends here as a failure.
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), mode], capture_output=True, text=True, timeout=240, env=env)
    records = sorted((json.loads(p.read_text()) for p in tmp_path.glob("rank*.json")), key=lambda r: r["rank"])
    assert [r["rank"] for r in records] == [0, 1], done.stdout[-3000:] + done.stderr[-3000:]
    return records


def test_ddp_warns_once_with_identical_audits(tmp_path):
    zero, one = run(tmp_path, "ddp")
    assert zero["steps"] == one["steps"] == 2
    assert zero["findings"] == one["findings"]
    assert [f[0] for f in zero["findings"]] == ["WD201", "WD202", "WD204"]
    # WD204 is info: logged below the data-flow table, not warned; only rank zero says anything.
    assert [w.split()[0] for w in zero["warnings"]] == ["WD201", "WD202"]
    assert zero["logged"] == ["WD204"]
    assert one["warnings"] == [] and one["logged"] == []


def test_ddp_strict_stops_every_rank(tmp_path):
    zero, one = run(tmp_path, "ddp-strict-error")
    assert zero["error"] and one["error"] and "WD101" in zero["error"]
    assert zero["steps"] == one["steps"] == 0


def test_fsdp2_classifies_sharded_parameters(tmp_path):
    zero, one = run(tmp_path, "fsdp2")
    assert zero["param_types"] == ["DTensor"]
    assert zero["findings"] == one["findings"]
    assert [(f[0], f[2]) for f in zero["findings"]] == [
        ("WD201", ["net.2.bias", "net.4.bias"]),
        ("WD202", ["net.1.weight", "net.1.bias", "net.3.weight", "net.3.bias"]),
        ("WD204", ["net.0.weight"]),
    ]
    assert len(zero["warnings"]) == 2 and one["warnings"] == []
