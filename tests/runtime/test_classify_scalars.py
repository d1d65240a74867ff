"""A 0-d parameter (a scalar gain such as CLIP's ``logit_scale``) is classified like a
one-element 1-D parameter of the same module: its number of dimensions alone never changes
its role, nor the param group it lands in."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wd_guard import audit, param_groups
from wd_guard.classify import Role, classify


def _owner(class_name: str) -> nn.Module:
    """A module of class ``class_name`` holding a scalar gain and a one-element gain."""
    module = type(class_name, (nn.Module,), {})()
    module.scalar = nn.Parameter(torch.tensor(2.0))
    module.vector = nn.Parameter(torch.tensor([2.0]))
    return module


def _decay_of(groups: list, param: torch.Tensor) -> float:
    (decay,) = [g["weight_decay"] for g in groups for p in g["params"] if p is param]
    return decay


@pytest.mark.parametrize("class_name", ["ScaleNorm", "Temperature"])
def test_scalar_and_one_element_gains_share_role_and_group(class_name):
    model = nn.ModuleDict({"gains": _owner(class_name), "proj": nn.Linear(4, 4)})
    roles = {info.name: info.role for info in classify(model).values()}
    assert roles["gains.scalar"] is roles["gains.vector"]
    groups = param_groups(model, weight_decay=0.1)
    assert _decay_of(groups, model.gains.scalar) == _decay_of(groups, model.gains.vector)
    findings = audit(model, torch.optim.AdamW(model.parameters(), weight_decay=0.1))  # noqa: WD210
    flagged = {name for f in findings for name in f.params}
    assert ("gains.scalar" in flagged) == ("gains.vector" in flagged)


def test_scalar_gain_of_a_norm_class_is_not_decayed():
    model = nn.ModuleDict({"norm": _owner("ScaleNorm"), "proj": nn.Linear(4, 4)})
    assert classify(model)[id(model.norm.scalar)].role is Role.NORM
    groups = param_groups(model, weight_decay=0.1)
    assert _decay_of(groups, model.norm.scalar) == 0.0
    assert _decay_of(groups, model.proj.weight) == 0.1
    findings = audit(model, torch.optim.AdamW(model.parameters(), weight_decay=0.1))  # noqa: WD210
    assert [f.params for f in findings if f.code == "WD202"] == [("norm.scalar", "norm.vector")]


def test_uninitialised_parameter_of_a_custom_norm_is_a_norm():
    """A lazy parameter has no shape yet: in a ``*Norm`` class it counts as the layer's gain."""
    module = type("LazyScaleNorm", (nn.Module,), {})()
    module.weight = nn.UninitializedParameter()
    other = type("LazyProjection", (nn.Module,), {})()
    other.weight = nn.UninitializedParameter()
    model = nn.ModuleDict({"norm": module, "proj": other})
    assert {info.name: info.role for info in classify(model).values()} == {"norm.weight": Role.NORM, "proj.weight": Role.WEIGHT}


class FlatParameter(nn.Parameter):
    """Named like FSDP's flat parameter, without the marker attribute (older torch)."""


def test_flat_parameters_are_unmapped_by_marker_or_by_class_name():
    marked = nn.Parameter(torch.zeros(4))
    marked._is_flat_param = True
    model = nn.Module()
    model.register_parameter("marked", marked)
    model.register_parameter("named", FlatParameter(torch.zeros(4)))
    model.register_parameter("plain", nn.Parameter(torch.zeros(4)))
    roles = {info.name: info.role for info in classify(model).values()}
    assert roles == {"marked": Role.UNMAPPED, "named": Role.UNMAPPED, "plain": Role.GAIN}  # a 1-D gain
