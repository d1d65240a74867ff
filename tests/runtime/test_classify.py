"""Parameter roles come from the module tree and parameter identity."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wd_guard.classify import Role, classify


def roles(model: nn.Module) -> dict:
    return {info.name: info.role for info in classify(model).values()}


def test_mlp_biases_and_weights(make_mlp):
    assert roles(make_mlp()) == {"0.weight": Role.WEIGHT, "0.bias": Role.BIAS, "2.weight": Role.WEIGHT, "2.bias": Role.BIAS}


def test_cnn_batchnorm_is_norm(make_cnn):
    found = roles(make_cnn())
    assert found["1.weight"] is Role.NORM and found["1.bias"] is Role.NORM
    assert found["0.weight"] is Role.WEIGHT and found["5.bias"] is Role.BIAS


@pytest.mark.parametrize(
    "layer",
    [nn.LayerNorm(4), nn.GroupNorm(2, 4), nn.InstanceNorm1d(4, affine=True), nn.RMSNorm(4), nn.LazyBatchNorm1d()],
    ids=lambda m: type(m).__name__,
)
def test_every_torch_norm_is_norm(layer):
    assert set(roles(nn.Sequential(layer)).values()) == {Role.NORM}


def test_custom_norm_class_by_name_one_dimensional_only():
    """A Norm class's 1-D parameters are norms; a 1-D parameter elsewhere is a gain."""

    class ScaleNorm(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gain = nn.Parameter(torch.ones(4))
            self.mixing = nn.Parameter(torch.ones(4, 4))

    class Normal(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gain = nn.Parameter(torch.ones(4))

    assert roles(nn.ModuleDict({"a": ScaleNorm(), "b": Normal()})) == {
        "a.gain": Role.NORM,
        "a.mixing": Role.WEIGHT,
        "b.gain": Role.GAIN,  # "Normal" is not a Norm class
    }


def test_embeddings_and_attention_biases():
    model = nn.ModuleDict({"tok": nn.Embedding(10, 4), "bag": nn.EmbeddingBag(10, 4), "attn": nn.MultiheadAttention(4, 2, add_bias_kv=True)})
    found = roles(model)
    assert found["tok.weight"] is Role.EMBEDDING and found["bag.weight"] is Role.EMBEDDING
    assert found["attn.in_proj_bias"] is Role.BIAS and found["attn.bias_k"] is Role.BIAS
    assert found["attn.in_proj_weight"] is Role.WEIGHT and found["attn.out_proj.bias"] is Role.BIAS


def test_bert_roles(bert):
    found = roles(bert)
    assert found["embeddings.word_embeddings.weight"] is Role.EMBEDDING
    assert found["embeddings.LayerNorm.weight"] is Role.NORM
    assert found["encoder.layer.0.attention.self.query.bias"] is Role.BIAS
    assert found["encoder.layer.0.attention.self.query.weight"] is Role.WEIGHT
    assert list(found) == [name for name, _ in bert.named_parameters()]


def test_tied_weights_are_one_entry(gpt2):
    infos = list(classify(gpt2).values())
    tied = [info for info in infos if info.param is gpt2.lm_head.weight]
    assert len(tied) == 1
    assert tied[0].name == "transformer.wte.weight" and tied[0].aliases == ["lm_head.weight"]
    assert tied[0].role is Role.EMBEDDING
    assert len(infos) == len(list(gpt2.parameters()))


class Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 4))
        self.cls_token = nn.Parameter(torch.zeros(1, 4))
        self.blocks = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
        self.relative_position_bias_table = nn.Parameter(torch.zeros(3, 2))
        self.head = nn.Linear(4, 2)

    def no_weight_decay(self):
        return {"pos_embed", "cls_token", "blocks.1"}

    def no_weight_decay_keywords(self):
        return ["relative_position"]


def test_declared_names_prefixes_and_keywords():
    found = roles(Backbone())
    assert found["pos_embed"] is Role.DECLARED and found["cls_token"] is Role.DECLARED
    assert found["blocks.1.weight"] is Role.DECLARED  # a module name covers its parameters
    assert found["blocks.1.bias"] is Role.BIAS  # the more specific role wins
    assert found["relative_position_bias_table"] is Role.DECLARED
    assert found["blocks.0.weight"] is Role.WEIGHT and found["head.weight"] is Role.WEIGHT


def test_declarations_on_a_submodule_are_scoped():
    model = nn.ModuleDict({"backbone": Backbone(), "other": nn.Linear(4, 4)})
    model.other.relative_positions = nn.Parameter(torch.zeros(2, 2))
    found = roles(model)
    assert found["backbone.pos_embed"] is Role.DECLARED
    assert found["backbone.relative_position_bias_table"] is Role.DECLARED
    assert found["other.relative_positions"] is Role.WEIGHT


def test_failing_declaration_names_the_class():
    class Broken(nn.Linear):
        def no_weight_decay(self):
            raise KeyError("oops")

    with pytest.raises(RuntimeError, match=r"Broken.no_weight_decay\(\) failed"):
        classify(Broken(2, 2))


def test_compile_and_data_parallel_prefixes_are_removed(make_mlp):
    net = make_mlp()
    plain = roles(net)
    assert roles(torch.compile(net, backend="eager")) == plain
    assert roles(nn.DataParallel(net)) == plain
    assert roles(nn.Sequential(torch.compile(net, backend="eager"))) == {f"0.{k}": v for k, v in plain.items()}


def test_a_user_attribute_called_module_is_kept():
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.module = nn.Linear(2, 2)

    assert set(roles(Holder())) == {"module.weight", "module.bias"}


def test_lazy_and_meta_modules_classify_without_values():
    lazy = nn.Sequential(nn.LazyLinear(3), nn.LazyBatchNorm1d())
    assert roles(lazy) == {"0.weight": Role.WEIGHT, "0.bias": Role.BIAS, "1.weight": Role.NORM, "1.bias": Role.NORM}
    with torch.device("meta"):
        meta = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
    assert roles(meta) == {"0.weight": Role.WEIGHT, "0.bias": Role.BIAS, "1.weight": Role.NORM, "1.bias": Role.NORM}


def test_frozen_parameters_are_classified_but_not_trainable(make_mlp):
    net = make_mlp()
    net[0].requires_grad_(False)
    trainable = {info.name: info.trainable for info in classify(net).values()}
    assert trainable == {"0.weight": False, "0.bias": False, "2.weight": True, "2.bias": True}


def test_only_a_declared_parameter_names_who_declared_it():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(4, 3)
            self.norm = nn.LayerNorm(3)
            self.proj = nn.Linear(3, 3)
            self.gain = nn.Parameter(torch.ones(3, 3))
            self.flat = nn.Parameter(torch.zeros(6))
            self.flat._is_flat_param = True  # FSDP's marker of a flattened parameter

        def no_weight_decay(self):
            return ["gain"]

    infos = {info.name: info for info in classify(Net()).values()}
    assert infos["gain"].role is Role.DECLARED and infos["gain"].declared_by == "Net.no_weight_decay()"
    for name, role in (
        ("embed.weight", Role.EMBEDDING),
        ("norm.weight", Role.NORM),
        ("proj.bias", Role.BIAS),
        ("proj.weight", Role.WEIGHT),
        ("flat", Role.UNMAPPED),
    ):
        assert infos[name].role is role and infos[name].declared_by == "", name


def test_a_deepspeed_zero3_placeholder_classifies_by_its_ds_shape():
    # ZeRO-3 leaves an empty placeholder in the module and keeps the real shape in ds_shape.
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mix = nn.Parameter(torch.empty(0))
            self.mix.ds_shape = torch.Size([4, 4])
            self.scale = nn.Parameter(torch.empty(0))
            self.scale.ds_shape = torch.Size([4])

    roles = {info.name: info.role for info in classify(Block()).values()}
    assert roles == {"mix": Role.WEIGHT, "scale": Role.GAIN}
