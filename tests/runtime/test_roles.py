"""Parameter roles on models written to mirror timm, torchvision, transformers, CLIP and Mamba.

Each model below copies the parameter layout (attribute names, shapes, module classes and
declarations) of the real one, so the tests pin what the audit and ``param_groups`` do with
it without the real libraries installed.
"""

from __future__ import annotations

from typing import Dict, List

import pytest
import torch
from torch import nn

from wd_guard import audit, param_groups
from wd_guard.auditing import audit_report
from wd_guard.catalogue import get_rule
from wd_guard.classify import NO_DECAY_ROLES, Role, classify


def roles(model: nn.Module) -> Dict[str, Role]:
    return {info.name: info.role for info in classify(model).values()}


def no_decay_names(model: nn.Module) -> List[str]:
    groups = param_groups(model, weight_decay=0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    return sorted(names[id(p)] for g in groups if g["weight_decay"] == 0.0 for p in g["params"])


def findings_by_code(model: nn.Module, optimizer) -> Dict[str, tuple]:
    return {f.code: f.params for f in audit(model, optimizer)}


# -- 1-D and 0-d gains ---------------------------------------------------------------------------


class LayerScale(nn.Module):
    """timm's LayerScale: ``ls1.gamma``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-5))


class ConvNeXtBlock(nn.Module):
    """timm / torchvision ConvNeXt: a ``gamma`` (timm) or ``layer_scale`` (torchvision) vector."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pwconv = nn.Linear(dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim))
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1))  # torchvision's shape


class CaiTBlock(nn.Module):
    """timm CaiT: ``gamma_1`` / ``gamma1`` gains next to attention and MLP."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.attn = nn.Linear(dim, dim)
        self.gamma1 = nn.Parameter(torch.ones(dim))
        self.ls1 = LayerScale(dim)


class ClipHead(nn.Module):
    """transformers CLIPModel: a 0-d ``logit_scale`` next to the projections."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.visual_projection = nn.Linear(dim, dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(2.6592))


class MambaMixer(nn.Module):
    """mamba_ssm's Mamba: ``D`` skip gains and ``A_log`` marked ``_no_weight_decay``."""

    def __init__(self, dim: int, state: int = 4) -> None:
        super().__init__()
        self.in_proj = nn.Linear(dim, 2 * dim, bias=False)
        self.A_log = nn.Parameter(torch.zeros(dim, state))
        self.A_log._no_weight_decay = True
        self.D = nn.Parameter(torch.ones(dim))
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(dim, dim, bias=False)


def gains_model() -> nn.Module:
    return nn.ModuleDict({"convnext": ConvNeXtBlock(4), "cait": CaiTBlock(4), "clip": ClipHead(4)})


def test_one_dimensional_and_scalar_gains_are_gains():
    found = roles(gains_model())
    gains = {"convnext.gamma", "convnext.layer_scale", "cait.gamma1", "cait.ls1.gamma", "clip.logit_scale"}
    assert {name for name, role in found.items() if role is Role.GAIN} == gains
    assert found["convnext.pwconv.weight"] is Role.WEIGHT and found["convnext.dwconv.weight"] is Role.WEIGHT
    assert found["clip.visual_projection.weight"] is Role.WEIGHT


def test_a_scalar_gain_is_treated_like_a_vector_gain():
    """A 0-d parameter gets exactly what a 1-D one gets: its role, its group and its finding."""
    model = nn.ModuleDict({"vector": ClipHead(4), "scalar": ClipHead(4)})
    model["vector"].logit_scale = nn.Parameter(torch.ones(1))
    assert model["scalar"].logit_scale.dim() == 0 and model["vector"].logit_scale.dim() == 1
    found = roles(model)
    assert found["scalar.logit_scale"] is found["vector.logit_scale"] is Role.GAIN
    assert {"scalar.logit_scale", "vector.logit_scale"} <= set(no_decay_names(model))
    (wd202,) = [f for f in audit(model, torch.optim.AdamW(model.parameters())) if f.code == "WD202"]
    assert wd202.params == ("vector.logit_scale", "scalar.logit_scale")


def test_gains_are_not_decayed_by_param_groups_and_reported_when_decayed():
    model = gains_model()
    assert no_decay_names(model) == sorted(n for n, p in model.named_parameters() if p.dim() <= 1 or n == "convnext.layer_scale")
    found = findings_by_code(model, torch.optim.AdamW(model.parameters(), weight_decay=0.05))
    assert set(found["WD202"]) == {"convnext.norm.weight", "convnext.norm.bias", "convnext.gamma", "convnext.layer_scale", "cait.gamma1", "cait.ls1.gamma", "clip.logit_scale"}
    assert audit(model, torch.optim.AdamW(param_groups(model, 0.05))) == []


def test_mamba_declares_its_parameters_on_the_parameter_itself():
    model = MambaMixer(4)
    found = roles(model)
    assert found["A_log"] is Role.DECLARED and found["D"] is Role.DECLARED  # A_log is 2-D: declared only
    assert no_decay_names(model) == ["A_log", "D"]
    (wd203,) = [f for f in audit(model, torch.optim.AdamW(model.parameters())) if f.code == "WD203"]
    assert wd203.params == ("A_log", "D")
    assert "declared no-decay by its _no_weight_decay attribute (A_log, D)" in wd203.message


# -- tokens and position tables held as nn.Parameter ---------------------------------------------


class TorchvisionViT(nn.Module):
    """torchvision's VisionTransformer: ``class_token`` and ``encoder.pos_embedding``."""

    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.conv_proj = nn.Conv2d(3, dim, 2, 2)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.encoder = nn.Module()
        self.encoder.pos_embedding = nn.Parameter(torch.zeros(1, 5, dim))
        self.encoder.ln = nn.LayerNorm(dim)
        self.heads = nn.Linear(dim, 2)


class HFViTEmbeddings(nn.Module):
    """transformers ViTEmbeddings: ``cls_token`` and ``position_embeddings``."""

    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position_embeddings = nn.Parameter(torch.zeros(1, 5, dim))
        self.patch_embeddings = nn.Conv2d(3, dim, 2, 2)


class ClipVisionEmbeddings(nn.Module):
    """transformers CLIPVisionEmbeddings: ``class_embedding`` and an nn.Embedding for positions."""

    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.class_embedding = nn.Parameter(torch.zeros(dim))
        self.patch_embedding = nn.Conv2d(3, dim, 2, 2, bias=False)
        self.position_embedding = nn.Embedding(5, dim)


class SwinAttention(nn.Module):
    """Swin (torchvision and transformers): ``relative_position_bias_table``."""

    def __init__(self, dim: int = 4, heads: int = 2) -> None:
        super().__init__()
        self.relative_position_bias_table = nn.Parameter(torch.zeros(9, heads))
        self.qkv = nn.Linear(dim, 3 * dim)


def tokens_model() -> nn.Module:
    return nn.ModuleDict({"tv": TorchvisionViT(), "hf": HFViTEmbeddings(), "clip": ClipVisionEmbeddings(), "swin": SwinAttention()})


def test_tokens_and_position_tables_are_reported_like_embeddings():
    model = tokens_model()
    found = roles(model)
    tokens = {
        "tv.class_token", "tv.encoder.pos_embedding", "hf.cls_token", "hf.mask_token",
        "hf.position_embeddings", "clip.class_embedding", "swin.relative_position_bias_table",
    }
    assert {name for name, role in found.items() if role is Role.TOKEN} == tokens
    assert found["clip.position_embedding.weight"] is Role.EMBEDDING
    assert found["hf.patch_embeddings.weight"] is Role.WEIGHT and found["swin.qkv.weight"] is Role.WEIGHT
    wd203 = findings_by_code(model, torch.optim.AdamW(model.parameters()))["WD203"]
    assert set(wd203) == tokens | {"clip.position_embedding.weight"}
    assert set(no_decay_names(model)) >= tokens
    assert audit(model, torch.optim.AdamW(param_groups(model, 0.05))) == []


TOKEN_NAMES = ["dist_token", "register_tokens", "rel_pos_h", "absolute_pos_embed", "positional_embedding", "cls_embed"]


@pytest.mark.parametrize("name", [*TOKEN_NAMES, "positions", "repos", "tokenizer_proj", "compose"])
def test_token_names_are_whole_words(name):
    module = nn.Module()
    module.register_parameter(name, nn.Parameter(torch.zeros(2, 2)))
    assert roles(module)[name] is (Role.TOKEN if name in TOKEN_NAMES else Role.WEIGHT)


def test_a_broadcast_vector_is_a_gain_but_a_torch_layer_matrix_is_not():
    model = nn.ModuleDict({"block": ConvNeXtBlock(4), "head": nn.Linear(4, 1), "conv": nn.Conv2d(4, 1, 1)})
    found = roles(model)
    assert found["block.layer_scale"] is Role.GAIN  # (4, 1, 1)
    assert found["head.weight"] is Role.WEIGHT and found["conv.weight"] is Role.WEIGHT  # (1, 4), (1, 4, 1, 1)


# -- declarations --------------------------------------------------------------------------------


class XCA(nn.Module):
    """timm XCiT's cross-covariance attention: declares its 3-D ``temperature``."""

    def __init__(self, dim: int = 4, heads: int = 2) -> None:
        super().__init__()
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Linear(dim, 3 * dim)

    def no_weight_decay(self):
        return {"temperature"}


class PosEmbed(nn.Module):
    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(5, dim))
        self.proj = nn.Linear(dim, dim, bias=False)


class XCiT(nn.Module):
    """A timm-style model that declares names with wildcards, as ``fnmatch`` patterns."""

    def __init__(self) -> None:
        super().__init__()
        self.pos_embed = PosEmbed()
        self.blocks = nn.ModuleList([nn.ModuleDict({"attn": XCA(), "mlp": nn.Linear(4, 4)}) for _ in range(2)])
        self.cls_attn_blocks = nn.ModuleList([nn.ModuleDict({"q": nn.Linear(4, 4)})])
        self.head = nn.Linear(4, 2)

    def no_weight_decay(self):
        return ["pos_embed.*", "cls_attn_blocks.*.q.weight"]


def test_wildcard_declarations_match_like_timm():
    found = {info.name: info for info in classify(XCiT()).values()}
    assert found["pos_embed.table"].role is Role.DECLARED and found["pos_embed.proj.weight"].role is Role.DECLARED
    assert found["cls_attn_blocks.0.q.weight"].role is Role.DECLARED
    assert found["cls_attn_blocks.0.q.bias"].role is Role.BIAS
    assert found["head.weight"].role is Role.WEIGHT and found["blocks.0.mlp.weight"].role is Role.WEIGHT
    assert found["pos_embed.table"].declared_by == "XCiT.no_weight_decay()"


def test_declarations_on_submodules_say_who_declared_them():
    model = XCiT()
    found = {info.name: info for info in classify(model).values()}
    assert found["blocks.1.attn.temperature"].role is Role.DECLARED
    assert found["blocks.1.attn.temperature"].declared_by == "XCA.no_weight_decay() of blocks.1.attn"
    (wd203,) = [f for f in audit(model, torch.optim.AdamW(model.parameters())) if f.code == "WD203"]
    assert "declared no-decay by XCiT.no_weight_decay() (pos_embed.table, pos_embed.proj.weight, cls_attn_blocks.0.q.weight)" in wd203.message
    assert "XCA.no_weight_decay() of blocks.0.attn (blocks.0.attn.temperature)" in wd203.message
    assert "XCA.no_weight_decay() of blocks.1.attn (blocks.1.attn.temperature)" in wd203.message
    assert audit(model, torch.optim.AdamW(param_groups(model, 0.05))) == []


def test_keyword_declarations_say_who_declared_them():
    class Swin(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList([SwinAttention()])
            self.layers[0].relative_coords_gain = nn.Parameter(torch.zeros(3, 3))

        def no_weight_decay_keywords(self):
            return {"relative_coords"}

    found = {info.name: info for info in classify(Swin()).values()}
    assert found["layers.0.relative_coords_gain"].role is Role.DECLARED
    assert found["layers.0.relative_coords_gain"].declared_by == "Swin.no_weight_decay_keywords()"


def test_a_raising_declaration_is_a_note_in_the_audit_and_an_error_in_param_groups():
    class Broken(XCiT):
        def no_weight_decay(self):
            raise KeyError("pos_embed")

    model = Broken()
    report = audit_report(model, torch.optim.AdamW(model.parameters()))
    (note,) = report.notes
    assert note.startswith("wd-guard: Broken.no_weight_decay() raised KeyError('pos_embed')")
    assert {f.code for f in report.findings} == {"WD201", "WD203"}  # XCA's declarations still count
    with pytest.raises(RuntimeError, match=r"Broken.no_weight_decay\(\) failed"):
        param_groups(model, 0.05)


# -- norms by role ------------------------------------------------------------------------------


class RMSNormGated(nn.Module):
    """mamba_ssm / transformers' gated RMSNorm: the class name contains Norm but ends otherwise."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))


class EvoNorm2dB0(nn.Module):
    """timm's EvoNorm: ``weight``, ``bias`` and ``v``, all 1-D."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.v = nn.Parameter(torch.ones(dim))


class Normalizer(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim, dim))


def test_norms_by_class_name_containing_norm():
    model = nn.ModuleDict({"gated": RMSNormGated(4), "evo": EvoNorm2dB0(4), "other": Normalizer(4)})
    found = roles(model)
    assert found == {
        "gated.weight": Role.NORM,
        "evo.weight": Role.NORM,
        "evo.bias": Role.NORM,
        "evo.v": Role.NORM,
        "other.weight": Role.WEIGHT,
    }
    wd202 = findings_by_code(model, torch.optim.AdamW(model.parameters()))["WD202"]
    assert wd202 == ("gated.weight", "evo.weight", "evo.bias", "evo.v")


def test_every_no_decay_role_leaves_param_groups_undecayed():
    model = nn.ModuleDict({"g": gains_model(), "t": tokens_model(), "x": XCiT(), "m": MambaMixer(4), "n": EvoNorm2dB0(4)})
    infos = classify(model).values()
    assert {info.role for info in infos} == NO_DECAY_ROLES | {Role.WEIGHT}
    kept = set(no_decay_names(model))
    assert kept == {info.name for info in infos if info.role in NO_DECAY_ROLES}


# -- findings people act on ---------------------------------------------------------------------


def nanogpt_groups(model: nn.Module, weight_decay: float = 0.1) -> list:
    """nanoGPT's configure_optimizers: every parameter with 2 or more dimensions is decayed."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


def transformers_groups(model: nn.Module, weight_decay: float = 0.01) -> list:
    """The transformers Trainer's split: no decay for biases and LayerNorm weights."""
    layer_norm = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.LayerNorm)}
    decay = [p for n, p in model.named_parameters() if "bias" not in n and n not in layer_norm]
    rest = [p for n, p in model.named_parameters() if "bias" in n or n in layer_norm]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def test_embeddings_beside_a_no_decay_group_are_info(gpt2, bert):
    for model, groups in ((gpt2, nanogpt_groups(gpt2)), (bert, transformers_groups(bert))):
        (finding,) = audit(model, torch.optim.AdamW(groups))
        assert finding.code == "WD203" and finding.severity == "info"
        assert finding.message.startswith(get_rule("WD203").deliberate + " [optimizer 0 (AdamW), group 0")
        assert "transformer.wte.weight" in finding.params or "embeddings.word_embeddings.weight" in finding.params


def test_embeddings_without_a_no_decay_group_stay_warnings(bert):
    found = [f for f in audit(bert, torch.optim.AdamW(bert.parameters())) if f.code == "WD203"]
    assert [f.severity for f in found] == ["warning"]
    assert found[0].message.startswith(get_rule("WD203").format())


def test_declared_names_beside_a_no_decay_group_stay_warnings():
    model = XCiT()
    groups = nanogpt_groups(model)  # decays the declared 2-D and 3-D tables
    (finding,) = [f for f in audit(model, torch.optim.AdamW(groups)) if f.code == "WD203"]
    assert finding.severity == "warning"
