"""Audit real timm, torchvision and transformers models with the optimizer recipe each project recommends.

Not part of CI: it needs timm, torchvision and transformers, which the test environment does not
install. Every model is randomly initialised (nothing is downloaded: ``pretrained=False``,
``weights=None``, transformers configs built in code). For each model and recipe it prints, as
Markdown, the audit's findings and whether ``wd_guard.param_groups`` leaves the same parameters
undecayed as the recipe does, naming the parameters where they differ.

    python scripts/audit_real_models.py > docs/real-models.md
    python scripts/audit_real_models.py --only timm      # one library
    python scripts/audit_real_models.py --only resnet50  # models whose name contains this

The recipes are taken from the libraries themselves wherever they expose them:

- timm: ``timm.optim.create_optimizer_v2(model, "adamw", weight_decay=0.05)``, which puts 1-D
  parameters, biases and the model's ``no_weight_decay()`` names in a no-decay group.
- torchvision: the reference classification recipe (``references/classification``): the
  library's ``torchvision.ops._utils.split_normalization_params`` gives the norm no-decay group
  (``--norm-weight-decay 0.0``); SGD with momentum for the CNNs, AdamW for the transformers,
  and for Swin also ``--bias-weight-decay 0.0 --transformer-embedding-decay 0.0``.
- transformers: the Trainer's split, ``Trainer.get_decay_parameter_names``, with AdamW; GPT-2
  also with nanoGPT's split (every parameter of 2 or more dimensions decayed).
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import torch
from torch import nn

from wd_guard import audit, param_groups

Recipe = Callable[[nn.Module], torch.optim.Optimizer]
SHOWN = 4  # parameter names shown per difference


# -- recipes ---------------------------------------------------------------------------------------


def timm_recipe(model: nn.Module) -> torch.optim.Optimizer:
    import timm.optim

    return timm.optim.create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05)


def _split(decayed: Iterable[nn.Parameter], model: nn.Module, weight_decay: float) -> List[Dict[str, Any]]:
    ids = {id(p) for p in decayed}
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if id(p) in ids], "weight_decay": weight_decay},
        {"params": [p for p in params if id(p) not in ids], "weight_decay": 0.0},
    ]


def torchvision_recipe(kind: str) -> Recipe:
    """The reference recipe: norms undecayed; Swin also biases and embedding tables undecayed."""

    def build(model: nn.Module) -> torch.optim.Optimizer:
        from torchvision.ops._utils import split_normalization_params

        norm, other = split_normalization_params(model)
        norm_ids = {id(p) for p in norm}
        decayed = [p for p in other if id(p) not in norm_ids]
        if kind == "swin":  # --bias-weight-decay 0.0 --transformer-embedding-decay 0.0
            keys = ("class_token", "position_embedding", "relative_position_bias_table")
            skip = {id(p) for n, p in model.named_parameters() if n.endswith(".bias") or any(k in n for k in keys)}
            decayed = [p for p in decayed if id(p) not in skip]
        if kind == "cnn":  # ResNet's new recipe: --lr 0.5 --wd 2e-05 --norm-weight-decay 0.0
            return torch.optim.SGD(_split(decayed, model, 2e-5), lr=0.5, momentum=0.9)
        return torch.optim.AdamW(_split(decayed, model, 0.05), lr=1e-3)

    return build


def transformers_recipe(model: nn.Module) -> torch.optim.Optimizer:
    from transformers import Trainer

    names = set(Trainer.get_decay_parameter_names(None, model))  # the method reads no state
    return torch.optim.AdamW(_split((p for n, p in model.named_parameters() if n in names), model, 0.01), lr=5e-5)


def nanogpt_recipe(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(_split((p for p in model.parameters() if p.dim() >= 2), model, 0.1), lr=6e-4)


# -- models ----------------------------------------------------------------------------------------


def timm_model(name: str, **kwargs: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False, **kwargs)

    return build


def torchvision_model(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(weights=None)

    return build


def hf_model(model_class: str, config_class: str, **config: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import transformers

        return getattr(transformers, model_class)(getattr(transformers, config_class)(**config))

    return build


IMAGE = ("image", (1, 3, 224, 224))
SMALL_LM = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, vocab_size=1000)

# (library, model name, builder, recipes, example input)
MODELS: List[Tuple[str, str, Callable[[], nn.Module], Sequence[Tuple[str, Recipe]], Any]] = [
    *(
        ("timm", name, timm_model(name), [("create_optimizer_v2(adamw, wd=0.05)", timm_recipe)], IMAGE)
        for name in (
            "resnet50", "efficientnet_b0", "mobilenetv3_large_100", "regnety_016", "convnext_tiny",
            "vit_small_patch16_224", "deit_small_distilled_patch16_224", "swin_tiny_patch4_window7_224",
            "xcit_tiny_12_p16_224", "cait_xxs24_224", "resmlp_12_224", "eva02_tiny_patch14_224",
            "nfnet_l0", "regnetz_b16_evos", "levit_128", "convit_tiny", "pvt_v2_b0",
        )
    ),
    *(
        ("torchvision", name, torchvision_model(name), [(f"reference ({kind})", torchvision_recipe(kind))], IMAGE)
        for name, kind in (
            ("resnet50", "cnn"), ("mobilenet_v3_large", "cnn"), ("efficientnet_b0", "cnn"), ("regnet_y_400mf", "cnn"),
            ("densenet121", "cnn"), ("shufflenet_v2_x1_0", "cnn"), ("convnext_tiny", "transformer"),
            ("vit_b_16", "transformer"), ("swin_t", "swin"), ("maxvit_t", "transformer"),
        )
    ),
    ("transformers", "BertModel", hf_model("BertModel", "BertConfig"), [("Trainer", transformers_recipe)], None),
    ("transformers", "GPT2LMHeadModel", hf_model("GPT2LMHeadModel", "GPT2Config"), [("Trainer", transformers_recipe), ("nanoGPT", nanogpt_recipe)], None),
    ("transformers", "ViTModel", hf_model("ViTModel", "ViTConfig"), [("Trainer", transformers_recipe)], None),
    ("transformers", "CLIPModel", hf_model("CLIPModel", "CLIPConfig"), [("Trainer", transformers_recipe)], None),
    ("transformers", "SwinModel", hf_model("SwinModel", "SwinConfig"), [("Trainer", transformers_recipe)], None),
    ("transformers", "ConvNextModel", hf_model("ConvNextModel", "ConvNextConfig"), [("Trainer", transformers_recipe)], None),
    ("transformers", "Dinov2Model", hf_model("Dinov2Model", "Dinov2Config", num_hidden_layers=4), [("Trainer", transformers_recipe)], None),
    ("transformers", "LlamaForCausalLM", hf_model("LlamaForCausalLM", "LlamaConfig", **SMALL_LM), [("Trainer", transformers_recipe)], None),
    ("transformers", "MambaModel", hf_model("MambaModel", "MambaConfig", hidden_size=128, num_hidden_layers=2, vocab_size=1000), [("Trainer", transformers_recipe)], None),
    ("transformers", "T5Model", hf_model("T5Model", "T5Config", d_model=128, d_ff=256, num_layers=2, num_heads=4, vocab_size=1000), [("Trainer", transformers_recipe)], None),
]


# -- the audit -------------------------------------------------------------------------------------


def undecayed(model: nn.Module, groups: Iterable[Dict[str, Any]]) -> Set[str]:
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)] for g in groups if not float(g.get("weight_decay", 0.0)) > 0 for p in g["params"] if id(p) in names}


def shown(names: Iterable[str]) -> str:
    ordered = sorted(names)
    text = ", ".join(f"`{n}`" for n in ordered[:SHOWN])
    return text + (f" (+{len(ordered) - SHOWN} more)" if len(ordered) > SHOWN else "")


def agreement(model: nn.Module, optimizer: torch.optim.Optimizer) -> str:
    """Whether param_groups leaves the same parameters undecayed as the recipe, and where not."""
    recipe = undecayed(model, optimizer.param_groups)
    ours = undecayed(model, param_groups(model, weight_decay=0.05))
    if recipe == ours:
        return f"agrees ({len(ours)} undecayed)"
    parts = []
    if ours - recipe:
        parts.append(f"param_groups also leaves undecayed {shown(ours - recipe)}")
    if recipe - ours:
        parts.append(f"the recipe also leaves undecayed {shown(recipe - ours)}")
    return "differs: " + "; ".join(parts)


def example_for(spec: Any) -> Optional[torch.Tensor]:
    return torch.randn(*spec[1]) if spec else None


def row(library: str, name: str, build: Callable[[], nn.Module], recipe_name: str, recipe: Recipe, example: Any) -> List[str]:
    torch.manual_seed(0)
    model = build()
    optimizer = recipe(model)
    findings = audit(model, optimizer, example_input=example_for(example))
    found = "<br>".join(f"{f.code} {f.severity}: {shown(f.params)}" for f in findings) or "none"
    return [library, f"`{name}`", recipe_name, found, agreement(model, optimizer)]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run the models whose library or name contains this text")
    args = parser.parse_args(argv)
    import timm
    import torchvision
    import transformers

    print("# The audit on real models\n")
    print("Generated by `scripts/audit_real_models.py` (randomly initialised models, nothing downloaded) with")
    print(f"torch {torch.__version__}, timm {timm.__version__}, torchvision {torchvision.__version__}, "
          f"transformers {transformers.__version__}, Python {platform.python_version()}. Each row is one model")
    print("with the optimizer recipe its library recommends; *findings* is what `audit` reports (with one")
    print("image as `example_input` for the vision models, so WD204 is checked), *param_groups* whether")
    print("`wd_guard.param_groups` leaves the same parameters undecayed as the recipe. See")
    print("[parameter-roles.md](parameter-roles.md) for why wd-guard decides as it does.\n")
    print("| library | model | recipe | findings | param_groups |")
    print("|---|---|---|---|---|")
    started = time.perf_counter()
    count = 0
    for library, name, build, recipes, example in MODELS:
        if args.only and args.only not in library and args.only not in name:
            continue
        for recipe_name, recipe in recipes:
            try:
                cells = row(library, name, build, recipe_name, recipe, example)
            except Exception as exc:  # one broken model must not hide the others
                cells = [library, f"`{name}`", recipe_name, f"could not run: {type(exc).__name__}: {exc}", "-"]
            print("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |", flush=True)
            count += 1
            gc.collect()
    print(f"\n{count} model and recipe pairs in {time.perf_counter() - started:.0f} s.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
