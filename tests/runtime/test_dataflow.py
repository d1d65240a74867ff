"""The WD204 forward pass finds weights feeding BatchNorm and leaves the model as it found it."""

from __future__ import annotations

import torch
from runtime_models import inputs_for
from torch import nn

from wd_guard.dataflow import scale_invariant_weights


def test_conv_feeding_batchnorm(make_cnn):
    net = make_cnn()
    assert scale_invariant_weights(net, inputs_for(net)) == {id(net[0].weight)}


def test_linear_feeding_batchnorm1d_directly_only():
    direct = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 4), nn.ReLU(), nn.BatchNorm1d(4))
    assert scale_invariant_weights(direct, torch.randn(3, 4)) == {id(direct[0].weight)}


def test_routing_in_forward_is_followed():
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 4)
            self.norm = nn.BatchNorm1d(4)

        def forward(self, x):
            return self.norm(self.b(x)) + self.a(x)  # b feeds the norm although a is declared first

    net = Residual()
    assert scale_invariant_weights(net, torch.randn(3, 4)) == {id(net.b.weight)}


def test_model_state_is_restored(make_cnn):
    net = make_cnn()
    net.train()
    net[1].eval()  # mixed modes survive
    for p in net.parameters():
        p.grad = torch.full_like(p, 7.0)
    grads = {id(p): p.grad for p in net.parameters()}
    running = net[1].running_mean.clone()
    net[1].train()
    scale_invariant_weights(net, inputs_for(net))
    assert [m.training for m in net.modules()] == [True] * len(list(net.modules()))
    assert all(p.grad is grads[id(p)] for p in net.parameters())
    assert torch.equal(net[1].running_mean, running)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


def test_hooks_are_removed_when_forward_fails(make_cnn):
    net = make_cnn()
    try:
        scale_invariant_weights(net, torch.randn(2, 5))  # wrong shape
    except RuntimeError:
        pass
    else:
        raise AssertionError("a forward pass with a wrong input shape should fail")
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert net.training


def test_compiled_module_runs_eagerly(make_cnn):
    net = make_cnn()
    compiled = torch.compile(net, backend="eager")
    assert scale_invariant_weights(compiled, inputs_for(net)) == {id(net[0].weight)}


def test_keyword_input_for_transformers(bert):
    ids = torch.randint(0, 32, (2, 5))
    assert scale_invariant_weights(bert, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}) == set()


def test_meta_device_and_lazy_modules():
    with torch.device("meta"):
        meta = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    assert scale_invariant_weights(meta, torch.randn(2, 4, device="meta")) == {id(meta[0].weight)}
    lazy = nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d())
    weight = lazy[0].weight
    assert scale_invariant_weights(lazy, torch.randn(2, 3, 6, 6)) == {id(weight)}
