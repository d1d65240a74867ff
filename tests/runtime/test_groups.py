"""param_groups covers each trainable parameter once and passes every check."""

from __future__ import annotations

import pytest
import torch
from runtime_models import cnn, mlp, tiny_bert, tiny_gpt2
from torch import nn

from wd_guard import audit, param_groups


@pytest.fixture(params=["mlp", "cnn", "bert", "gpt2", "transformer_layer"])
def model(request) -> nn.Module:
    factories = {
        "mlp": mlp,
        "cnn": cnn,
        "bert": tiny_bert,
        "gpt2": tiny_gpt2,
        "transformer_layer": lambda: nn.TransformerEncoderLayer(8, 2, 16),
    }
    return factories[request.param]()


def test_each_trainable_parameter_exactly_once(model):
    groups = param_groups(model, weight_decay=0.05)
    held = [id(p) for g in groups for p in g["params"]]
    assert sorted(held) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    assert len(held) == len(set(held))
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]


@pytest.mark.parametrize("cls", [torch.optim.AdamW, torch.optim.SGD])
def test_groups_pass_every_check(model, cls):
    findings = audit(model, cls(param_groups(model, weight_decay=0.05), lr=1e-3), total_steps=10_000)
    assert findings == []


def test_frozen_left_out_and_extra_names_excluded(make_mlp):
    net = make_mlp()
    net[0].requires_grad_(False)
    groups = param_groups(net, 0.1, no_decay=["2.weight"])
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.0
    assert [id(p) for p in groups[0]["params"]] == [id(net[2].weight), id(net[2].bias)]


def test_module_names_exclude_everything_under_them(make_cnn):
    net = make_cnn()
    decay, keep = param_groups(net, 5e-4, no_decay=["0"])
    assert [id(p) for p in decay["params"]] == [id(net[5].weight)]
    assert id(net[0].weight) in {id(p) for p in keep["params"]}


def test_bad_arguments():
    with pytest.raises(TypeError, match="list of names"):
        param_groups(mlp(), 0.1, no_decay="bias")
    with pytest.raises(ValueError, match="non-negative"):
        param_groups(mlp(), -1.0)
    with pytest.raises(ValueError, match="non-negative"):
        param_groups(mlp(), float("nan"))
