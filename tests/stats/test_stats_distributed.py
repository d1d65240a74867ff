"""Weight stats under DDP, FSDP2 (DTensor), FSDP1 and a Lightning DDP fit, with two CPU processes (gloo).

Norms and effective decay must equal those of the unsharded model, on every rank; the
monitor logs once, from rank zero. All cases share one spawn of two processes.
"""

from __future__ import annotations

import json
import socket

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
mp = pytest.importorskip("torch.multiprocessing")
pytest.importorskip("lightning")

import stats_workers  # noqa: E402

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo"),
]

NAMES = ["0.weight", "0.bias", "2.weight", "2.bias"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("distributed")
    mp.spawn(stats_workers.all_cases, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def _assert_matches(stats, expected, rel):
    assert set(stats) == set(expected)
    for key, value in expected.items():
        assert stats[key] == pytest.approx(value, rel=rel, abs=1e-12), key


@pytest.mark.parametrize("kind", ["adam", "adamw"])
def test_ddp_identical_on_every_rank_and_equal_to_unsharded(ranks, kind):
    first, second = (r[f"ddp_{kind}"] for r in ranks)
    assert first["stats"] == second["stats"]
    # Through the DDP wrapper the names carry its 'module.' prefix.
    assert {k.replace("module.", "") for k in first["wrapped"]} == set(first["stats"])
    _assert_matches(first["stats"], stats_workers.reference(kind), rel=1e-4)


def test_fsdp2_whole_parameter_norms_and_decay(ranks):
    cases = [r["fsdp2"] for r in ranks]
    assert cases[0]["local_shapes"]["0.weight"] != cases[1]["local_shapes"]["0.weight"]  # really sharded
    for case in cases:
        stats = case["stats"]
        assert sorted(k.split("/", 1)[1] for k in stats if k.startswith("weight_norm/")) == sorted(NAMES)
        for name in NAMES:
            assert stats[f"weight_norm/{name}"] == pytest.approx(case["full_norms"][name], rel=1e-6)
            assert stats[f"effective_decay/{name}"] == pytest.approx(case["exact_decay"][name], rel=1e-6)
    assert cases[0]["stats"] == cases[1]["stats"]
    _assert_matches(cases[0]["stats"], stats_workers.reference("adam"), rel=1e-4)


def test_fsdp2_monitor_computes_on_every_rank_and_logs_on_rank_zero(ranks):
    zero, other = (r["fsdp2"]["monitor"] for r in ranks)
    assert other == []
    assert [step for step, _ in zero] == [1, 2]
    metrics = zero[-1][1]
    for name in NAMES:
        assert metrics[f"weight_norm/{name}"] == pytest.approx(ranks[0]["fsdp2"]["full_norms"][name], rel=1e-6)
    assert "weight_norm/group_0_0" in metrics and "weight_norm/total" in metrics


@pytest.mark.parametrize("case", ["fsdp1_orig", "fsdp1_flat"])
def test_fsdp1_maps_flat_parameters_back_to_names(ranks, case):
    for rank in ranks:
        for name in NAMES:
            assert rank[case]["stats"][f"weight_norm/{name}"] == pytest.approx(rank[case]["full_norms"][name], rel=1e-6)
    assert ranks[0][case]["stats"] == ranks[1][case]["stats"]
    _assert_matches(ranks[0][case]["stats"], stats_workers.reference("adam"), rel=1e-4)


def test_lightning_ddp_fit_logs_once_from_rank_zero(ranks):
    zero, other = (r["lightning_ddp"] for r in ranks)
    assert other["calls"] == []
    assert [step for step, _ in zero["calls"]] == [1, 3]  # Lightning's own step axis
    logged = zero["calls"][-1][1]
    assert {k for k in zero["final"] if k.startswith("weight_norm/")} <= set(logged)
    for key in set(zero["final"]) & set(logged):
        assert logged[key] == pytest.approx(zero["final"][key], rel=1e-6)
    assert zero["final"] == other["final"]  # DDP keeps the replicas identical
    # Every rank's callbacks see the same totals (EarlyStopping decides on every rank).
    assert zero["callback_total"] == pytest.approx(other["callback_total"], rel=1e-6)
    assert zero["callback_total"] == pytest.approx(logged["weight_norm/total"], rel=1e-6)
