"""weight_stats: which parameters, their names, norms of any dtype, wrappers and per-module series."""

from __future__ import annotations

import copy
import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from wd_guard import _sources  # noqa: E402
from wd_guard.stats import weight_stats  # noqa: E402


def _stepped(model, optimizer):
    model(torch.randn(3, model[0].in_features)).sum().backward()
    optimizer.step()
    return model


def test_norms_match_each_parameter_and_frozen_ones_are_left_out():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    model[2].bias.requires_grad_(False)
    optimizer = torch.optim.SGD([model[0].weight, model[0].bias, model[2].weight], lr=0.1, weight_decay=0.01)
    stats = weight_stats(_stepped(model, optimizer), optimizer)
    assert set(stats) == {f"{kind}/{n}" for kind in ("weight_norm", "effective_decay") for n in ("0.weight", "0.bias", "2.weight")}
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert stats[f"weight_norm/{name}"] == pytest.approx(param.norm().item(), rel=1e-6)


def test_frozen_parameter_held_by_an_optimizer_counts():
    model = nn.Sequential(nn.Linear(3, 3))
    model[0].bias.requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    assert weight_stats(model, optimizer)["effective_decay/0.bias"] == pytest.approx(0.01)


def test_tied_weights_appear_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.head = nn.Linear(4, 10, bias=False)
            self.head.weight = self.embed.weight

    model = Tied()
    stats = weight_stats(model, torch.optim.AdamW(model.parameters()))
    assert set(stats) == {"weight_norm/embed.weight", "effective_decay/embed.weight"}


def test_low_precision_norms_are_accumulated_in_float32():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 256)).to(torch.bfloat16)
    stats = weight_stats(model, torch.optim.AdamW(model.parameters()))
    exact = model[0].weight.double().norm().item()
    assert stats["weight_norm/0.weight"] == pytest.approx(exact, rel=1e-5)
    assert abs(model[0].weight.norm().float().item() - exact) / exact > 1e-5  # a bf16 result would not pass


def test_large_float32_norm_is_close_to_the_float64_norm():
    # One float32 running sum per vector lane over the whole tensor (torch's CPU norm) is
    # 3e-4 off here; norms per row, combined in float64, are about 1e-10 off.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4096, 4096))
    with torch.no_grad():
        model[0].weight.mul_(0.5).add_(0.01)
    stats = weight_stats(model, torch.optim.AdamW(model.parameters()))
    exact = model[0].weight.double().norm().item()
    assert stats["weight_norm/0.weight"] == pytest.approx(exact, rel=1e-5)


def test_norms_of_mixed_dtypes_and_layouts():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Linear(5, 7), nn.Linear(7, 2))
    model[0].to(memory_format=torch.channels_last)
    model[1].double()
    model[2].to(torch.bfloat16)
    model[2].weight.data = model[2].weight.data.t().contiguous().t()  # transposed: not row-major
    stats = weight_stats(model, torch.optim.AdamW(model.parameters()))
    for name, param in model.named_parameters():
        assert stats[f"weight_norm/{name}"] == pytest.approx(param.double().norm().item(), rel=1e-6), name


def test_compiled_and_checkpoint_wrapper_prefixes_are_removed():
    model = torch.compile(nn.Sequential(nn.Linear(2, 2)))
    stats = weight_stats(model, torch.optim.AdamW(model.parameters()))
    assert "weight_norm/0.weight" in stats
    assert _sources.clean_name("_fsdp_wrapped_module.layer._checkpoint_wrapped_module.weight") == "layer.weight"


def test_per_module_series():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    model.register_parameter("scale", nn.Parameter(torch.full((2,), 3.0)))
    optimizer = torch.optim.SGD(
        [{"params": [model[0].weight], "weight_decay": 0.1}, {"params": [model[0].bias, model[1].weight, model[1].bias, model.scale]}],
        lr=0.5,
    )
    stats = weight_stats(model, optimizer, per_module=True)
    assert set(stats) == {f"{k}/{m}" for k in ("weight_norm", "effective_decay") for m in ("0", "1", "scale")}
    w2, b2 = model[0].weight.norm().item() ** 2, model[0].bias.norm().item() ** 2
    assert stats["weight_norm/0"] == pytest.approx(math.sqrt(w2 + b2), rel=1e-6)
    assert stats["effective_decay/0"] == pytest.approx(0.05 * w2 / (w2 + b2), rel=1e-6)
    assert stats["weight_norm/scale"] == pytest.approx(math.sqrt(18))
    assert stats["effective_decay/1"] == 0.0


def test_lightning_optimizer_wrapper_is_unwrapped():
    lightning = pytest.importorskip("lightning")
    model = nn.Sequential(nn.Linear(2, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.1)
    wrapped = lightning.pytorch.core.optimizer.LightningOptimizer(optimizer)
    assert weight_stats(model, wrapped)["effective_decay/0.weight"] == pytest.approx(0.01)


def test_unknown_optimizer_logs_norms_only():
    class Sign(torch.optim.Optimizer):
        def __init__(self, params):
            super().__init__(params, {"lr": 0.1, "weight_decay": 0.1})

        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    p.data.add_(p.grad.sign(), alpha=-group["lr"])

    model = nn.Sequential(nn.Linear(2, 2))
    stats = weight_stats(model, Sign(model.parameters()))
    assert set(stats) == {"weight_norm/0.weight", "weight_norm/0.bias"}


def test_flat_parameter_without_shard_metadata_logs_its_total_and_says_so():
    flat = nn.Parameter(torch.ones(6))
    handle = _sources._Handle(flat_param=flat, group=None, prefix="", orig_params=False)
    notes = []
    (source,) = _sources._fsdp1_sources("_fsdp_wrapped_module._flat_param", flat, handle, notes)
    assert source.name == "_flat_param" and (source.piece.start, source.piece.stop) == (0, 6)
    assert len(notes) == 1 and "total norm only" in notes[0]


def test_stats_module_loads_no_lightning():
    code = "import sys, wd_guard.stats, wd_guard.monitor; print([m for m in ('lightning', 'pytorch_lightning') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("bias", [True, False], ids=["a-padded-sample-row", "full-rows-sorted-in-place"])
def test_a_reused_plan_follows_steps_and_restored_state(bias):
    from wd_guard._plan import StatsPlan

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 40, bias=bias))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=0.1)
    _stepped(model, optimizer)
    saved = copy.deepcopy(optimizer.state_dict())  # state_dict() shares the live tensors
    plan = StatsPlan(model, [optimizer])
    first = plan.compute()
    for _ in range(3):
        _stepped(model, optimizer)
    assert plan.compute() == weight_stats(model, optimizer) != first
    optimizer.load_state_dict(saved)  # replaces the state tensors (and the state dict)
    assert plan.compute()["effective_decay/0.weight"] == pytest.approx(first["effective_decay/0.weight"], rel=1e-6)


def test_a_reused_plan_follows_parameters_updated_cast_and_reassigned():
    # The plan keeps each parameter's flat view between steps: it must see in-place updates,
    # and make new views when .data is re-assigned, cast or given another shape.
    from wd_guard._plan import StatsPlan

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 30), nn.Linear(30, 3))
    plan = StatsPlan(model, [torch.optim.AdamW(model.parameters())])

    def check():
        stats = plan.compute()
        for name, param in model.named_parameters():
            assert stats[f"weight_norm/{name}"] == pytest.approx(param.double().norm().item(), rel=1e-6), name

    check()
    with torch.no_grad():
        model[0].weight.mul_(3.0)  # in place: the kept view sees it
    check()
    model[0].weight.data = torch.randn(30, 40)  # a new tensor at a new address
    check()
    model[1].weight.data = model[1].weight.data[:, :20]  # same address, fewer elements, not dense
    check()
    model[1].double()  # cast: new storage
    check()
    model[1].weight.data = torch.randn(3, 30, dtype=torch.float64)
    check()


def test_deepspeed_partitioned_parameter_is_left_out_and_said():
    model = nn.Sequential(nn.Linear(3, 3))
    model[0].weight.ds_tensor = torch.zeros(5)  # what ZeRO-3 attaches to a partitioned parameter
    model[0].weight.data = torch.empty(0)
    with pytest.warns(UserWarning, match="0.weight: DeepSpeed ZeRO-3 partitioned parameter; not logged"):
        stats = weight_stats(model, torch.optim.AdamW(model.parameters()))
    assert set(stats) == {"weight_norm/0.bias", "effective_decay/0.bias"}


def test_model_without_trainable_parameters_gives_no_stats():
    model = nn.Linear(2, 2).requires_grad_(False)
    assert weight_stats(model, torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)) == {}
