"""Rules about how an optimizer is built: coupled decay, blanket decay, excessive decay."""

from __future__ import annotations

import functools
from typing import Dict, Iterable, Iterator, List, Optional, Union

import libcst as cst

from wd_guard.optimizers import DecayKind

from wd_guard.lint.analysis.names import Names
from wd_guard.lint.intake.vocabulary import BY_CODE, DECAYING
from wd_guard.lint.rules.base import AtLine, Invalid, LintRule, Report
from wd_guard.lint.fixes import rewrites  # the module: rewrites itself imports rules.base
from wd_guard.lint.rules.choices import added_groups
from wd_guard.lint.rules.params import BlanketSearch
from wd_guard.lint.rules.sites import Group, Site, optimizer_sites


# Calls, and what values and optimizers are read from: dataclass defaults, ``self.opt = ...``.
_NODES = (cst.Call, cst.ClassDef, cst.Assign, cst.For)  # ``For``: loops that freeze parameters


class CoupledDecayAdaptive(LintRule):
    """An adaptive optimizer whose ``weight_decay`` is coupled L2 is given a non-zero decay."""

    CODE = "WD101"
    NODES = _NODES
    VOCABULARY = BY_CODE[CODE]
    VALID = (
        "import torch\nopt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)\n",
        "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3)\n",
        "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=0.0)\n",
        "import torch\nopt = torch.optim.Adam(groups, lr=1e-3, weight_decay=0.01, decoupled_weight_decay=True)\n",
        "from torch.optim import NAdam\nopt = NAdam(params, weight_decay=0.01, decoupled_weight_decay=True)\n",
        "import torch\nopt = torch.optim.Adam(params, lr=1e-3, weight_decay=cfg.wd, **kwargs)\n",
        "import torch\nopt = getattr(torch.optim, name)(params, lr=1e-3, weight_decay=0.01)\n",
        "class Adam:\n    def __init__(self, params, weight_decay):\n        pass\n\nopt = Adam(params, weight_decay=0.1)\n",
        '"""Use torch.optim.Adam(params, weight_decay=0.1) and see."""\n# torch.optim.Adam(params, weight_decay=0.1)\n',
        "import torch\nopt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)\n",
        "import torch\nopt = torch.optim.Adam([{'params': a, 'weight_decay': 0.0}, {'params': b}], lr=1e-3)\n",
        "import torch\nwd = 0.0\nopt = torch.optim.Adam(params, lr=1e-3, weight_decay=wd)\n",
        "import torch\nopt = torch.optim.Adam(params)\nopt.add_param_group({'params': extra, 'weight_decay': 0.0})\n",
        "import torch\nopt = torch.optim.Adam(params, decoupled_weight_decay=True)\nopt.add_param_group({'params': extra, 'weight_decay': 0.1})\n",
        "import torch\ncls = torch.optim.AdamW if cfg.decoupled else torch.optim.SGD\nopt = cls(params, weight_decay=5e-4)\n",
        "import torch\ncls = getattr(torch.optim, name) if cfg.x else torch.optim.Adam\nopt = cls(params, weight_decay=0.1)\n",
        "import argparse, torch\nparser = argparse.ArgumentParser()\nparser.add_argument('--wd', type=float, default=0.0)\n"
        "args = parser.parse_args()\nopt = torch.optim.Adam(model.parameters(), weight_decay=args.wd)\n",
        "from dataclasses import dataclass\nimport torch\n\n@dataclass\nclass Config:\n    weight_decay: float = 0.0\n\n"
        "def build(cfg: Config, params):\n    return torch.optim.Adam(params, weight_decay=cfg.weight_decay)\n",
        "import torch\ndef build(params, wd=0.0):\n    return torch.optim.Adam(params, weight_decay=wd)\nopt = build(model.parameters())\n",
        "import bitsandbytes as bnb\nopt = bnb.optim.Adam8bit(params, lr=1e-3, weight_decay=0.01)\n",
        "from lion_pytorch import Lion\nopt = Lion(params, lr=1e-4, weight_decay=1e-2)\n",
        "import timm.optim\nopt = timm.optim.create_optimizer_v2(model, opt='adamw', weight_decay=0.05)\n",
        "import torch_optimizer as optim\nopt = optim.Lamb(params, lr=1e-3, weight_decay=0.01)\n",
        "from torch_optimizer import AdaBelief\nopt = AdaBelief(params, weight_decay=1e-2, weight_decouple=True)\n",
        "import bitsandbytes as bnb\nopt = bnb.optim.PagedLion8bit(params, lr=1e-4, weight_decay=0.1)\n",
        "import argparse\nfrom timm.optim import create_optimizer\nparser = argparse.ArgumentParser()\nparser.add_argument('--opt', default='adamw')\n"
        "parser.add_argument('--weight-decay', type=float, default=0.05)\nargs = parser.parse_args()\nopt = create_optimizer(args, model)\n",
        "from timm.optim import create_optimizer\ndef build(args, model):\n    return create_optimizer(args, model)\n",
        "optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))\n",
        "_base_ = ['./base.py']\noptim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3))\n",
    )
    INVALID = (
        Invalid(
            "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)\n",
            line=2,
            fixed="import torch\nopt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)\n",
        ),
        Invalid(
            "from torch.optim import Adam as A\nopt = A(params, 1e-3, (0.9, 0.999), 1e-8, 1e-2)\n",
            line=2,
            fixed="from torch.optim import AdamW\nopt = AdamW(params, 1e-3, (0.9, 0.999), 1e-8, 1e-2)\n",
        ),
        Invalid(
            "from torch.optim import Adam, SGD\nfast = Adam(head, weight_decay=1e-4)\nslow = Adam(body)\n",
            line=2,
            fixed="from torch.optim import Adam, AdamW, SGD\nfast = AdamW(head, weight_decay=1e-4)\nslow = Adam(body)\n",
        ),
        Invalid(
            "from torch.optim import AdamW\nfrom torch.optim import SGD, Adam\nopt = Adam(params, weight_decay=1e-4)\n",
            fixed="from torch.optim import AdamW\nfrom torch.optim import SGD\nopt = AdamW(params, weight_decay=1e-4)\n",
        ),
        Invalid("import torch.optim as optim\nopt = optim.RMSprop(params, lr=1e-2, weight_decay=self.hparams.weight_decay)\n"),
        Invalid("from torch import optim\nopt = optim.Adagrad(params, weight_decay=cfg.wd)\n"),
        Invalid(
            "import torch\nopt = torch.optim.Adam([{'params': a, 'weight_decay': wd}, {'params': b}])\n",
            fixed="import torch\nopt = torch.optim.AdamW([{'params': a, 'weight_decay': wd}, {'params': b}], weight_decay=0.0)\n",
        ),
        Invalid(
            "import functools, torch\nmake = functools.partial(torch.optim.Adam, lr=1e-3, weight_decay=1e-4)\n",
            fixed="import functools, torch\nmake = functools.partial(torch.optim.AdamW, lr=1e-3, weight_decay=1e-4)\n",
        ),
        Invalid(
            "from functools import partial\nfrom torch.optim import Adam\nmake = partial(Adam, lr=1e-3)\nopt = make(params, weight_decay=1e-4)\n",
            line=4,
            fixed="from functools import partial\nfrom torch.optim import AdamW\nmake = partial(AdamW, lr=1e-3)\nopt = make(params, weight_decay=1e-4)\n",
        ),
        Invalid(
            "import torch\nopt = torch.optim.RAdam(params, weight_decay=0.1, decoupled_weight_decay=False)\n",
            fixed="import torch\nopt = torch.optim.RAdam(params, weight_decay=0.1, decoupled_weight_decay=True)\n",
        ),
        Invalid(
            "import torch\nopt = torch.optim.NAdam(\n    params,\n    weight_decay=1e-4,  # from the paper\n)\n",
            line=2,
            fixed="import torch\nopt = torch.optim.NAdam(\n    params,\n    weight_decay=1e-4,  # from the paper\n    decoupled_weight_decay=True,\n)\n",
        ),
        # A decay that only callers in other files give is reported like ``cfg.wd``: the same
        # helper is called with 0 in one project and 5e-4 in another, and the file cannot tell.
        Invalid("import torch\ndef build(params, wd):\n    return torch.optim.Adamax(params, weight_decay=wd, **extra)\n", line=3),
        Invalid(
            "from torch.optim import *\nopt = NAdam(params, lr=2e-3, weight_decay=1e-4)\n",
            fixed="from torch.optim import *\nopt = NAdam(params, lr=2e-3, weight_decay=1e-4, decoupled_weight_decay=True)\n",
        ),
        Invalid("import torch\nopt = torch.optim.Adam(biases, lr=1e-3)\nopt.add_param_group({'params': weights, 'weight_decay': 1e-5})\n", line=3),
        Invalid(
            "import torch\nclass Model:\n    def configure(self):\n        self.opt = torch.optim.RMSprop(self.head, lr=1e-3)\n"
            "        self.opt.add_param_group(dict(params=self.body, weight_decay=1e-4))\n",
            line=5,
        ),
        Invalid("import torch\ncls = torch.optim.Adam if cfg.adam else torch.optim.SGD\nopt = cls(params, weight_decay=5e-4)\n", line=3),
        Invalid("from torch import optim\nif cfg.adaptive:\n    make = optim.RMSprop\nelse:\n    make = optim.SGD\nopt = make(params, weight_decay=1e-5)\n", line=6),
        Invalid("import torch\nOPTIMIZERS = {'adam': torch.optim.Adam, 'sgd': torch.optim.SGD}\nopt = OPTIMIZERS[name](params, weight_decay=1e-4)\n", line=3),
        Invalid(
            "import argparse, torch\nparser = argparse.ArgumentParser()\nparser.add_argument('--wd', type=float, default=1e-4)\n"
            "args = parser.parse_args()\nopt = torch.optim.Adam(params, weight_decay=args.wd)\n",
            line=5,
            fixed="import argparse, torch\nparser = argparse.ArgumentParser()\nparser.add_argument('--wd', type=float, default=1e-4)\n"
            "args = parser.parse_args()\nopt = torch.optim.AdamW(params, weight_decay=args.wd)\n",
        ),
        Invalid(
            "import torch\ndef build(params, wd=0.0):\n    return torch.optim.Adam(params, weight_decay=wd)\nopt = build(model.parameters(), wd=1e-4)\n",
            line=3,
            fixed="import torch\ndef build(params, wd=0.0):\n    return torch.optim.AdamW(params, weight_decay=wd)\nopt = build(model.parameters(), wd=1e-4)\n",
        ),
        Invalid("from timm.optim import create_optimizer_v2\nopt = create_optimizer_v2(model, opt='adam', weight_decay=0.05)\n", line=2),
        Invalid("import timm\nopt = timm.optim.create_optimizer_v2(model, 'lookahead_rmsprop', 1e-2, 1e-5)\n", line=2),
        Invalid(
            "import argparse\nfrom timm.optim import create_optimizer\nparser = argparse.ArgumentParser()\nparser.add_argument('--opt', default='adam')\n"
            "parser.add_argument('--weight-decay', type=float, default=0.05)\nargs = parser.parse_args()\nopt = create_optimizer(args, model)\n",
            line=7,
        ),
        Invalid("import torch_optimizer as optim\nopt = optim.Yogi(params, lr=1e-2, weight_decay=1e-4)\n"),
        Invalid(
            "import torch_optimizer\nopt = torch_optimizer.AdaBelief(params, weight_decay=1e-2)\n",
            fixed="import torch_optimizer\nopt = torch_optimizer.AdaBelief(params, weight_decay=1e-2, weight_decouple=True)\n",
        ),
        Invalid("import bitsandbytes as bnb\nopt = bnb.optim.RMSprop8bit(params, lr=1e-2, weight_decay=1e-5)\n"),
        Invalid("from torch.optim import RMSprop\noptim_wrapper = dict(optimizer=dict(type=RMSprop, lr=1e-3, weight_decay=1e-5))\n", line=2),
        Invalid("optimizer = dict(type='Adam', lr=1e-3, weight_decay=1e-4)\noptimizer_config = dict(grad_clip=None)\n", line=1),
        Invalid(
            "from deepspeed.ops.adam import FusedAdam\nopt = FusedAdam(params, adam_w_mode=False, weight_decay=0.01)\n",
            fixed="from deepspeed.ops.adam import FusedAdam\nopt = FusedAdam(params, adam_w_mode=True, weight_decay=0.01)\n",
        ),
    )

    def check(self) -> Iterator[Report]:
        for call, sites in by_call(self.ctx.shared(optimizer_sites)).items():
            for site in sites:
                coupled = [group for group in site.scopes() if site.kind(group) is DecayKind.COUPLED_ADAPTIVE and site.decays(group)]
                if coupled:
                    fix = functools.partial(rewrites.decouple, site, self.ctx) if site.fixable else None
                    yield Report(call, {"optimizer": named_with_decay(site, coupled[0], self.ctx)}, fix=fix)
                    break
        for call, site, group in added_groups(self.ctx):
            if "weight_decay" in group.options and site.kind(group) is DecayKind.COUPLED_ADAPTIVE and site.decays(group):
                yield Report(call, {"optimizer": named_with_decay(site, group, self.ctx)})


class BlanketDecay(LintRule):
    """Every parameter of a module handed to an optimizer whose decay is non-zero."""

    CODE = "WD210"
    NODES = _NODES
    VOCABULARY = BY_CODE[CODE]
    VALID = (
        "import torch\nopt = torch.optim.Adam(model.parameters(), lr=1e-3)\n",
        "import torch\nopt = torch.optim.AdamW(model.parameters(), weight_decay=0.0)\n",
        "import torch\nopt = torch.optim.AdamW(groups, lr=3e-4)\n",
        "import torch\nopt = torch.optim.SGD([p for p in model.parameters() if p.ndim >= 2], lr=0.1, weight_decay=5e-4)\n",
        "import torch\ndecay = [p for n, p in model.named_parameters() if not n.endswith('bias')]\nopt = torch.optim.AdamW(decay)\n",
        "import torch\nparams = list(model.parameters())\nparams = [p for p in params if p.ndim >= 2]\nopt = torch.optim.AdamW(params)\n",
        "import torch\nparams = [p for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters()]\nopt = torch.optim.AdamW(params)\n",
        "import argparse, torch\np = argparse.ArgumentParser()\np.add_argument('--weight-decay', type=float, default=0)\n"
        "args = p.parse_args()\nopt = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=args.weight_decay)\n",
        "from timm.optim import create_optimizer_v2\nopt = create_optimizer_v2(model, 'adamw', weight_decay=0.05)\n",
        "import argparse\nfrom timm.optim import create_optimizer\nparser = argparse.ArgumentParser()\nparser.add_argument('--opt', default='sgd')\n"
        "parser.add_argument('--weight-decay', type=float, default=1e-4)\nargs = parser.parse_args()\nopt = create_optimizer(args, model)\n",
        "import argparse\nfrom timm.optim import create_optimizer\nparser = argparse.ArgumentParser()\nparser.add_argument('--opt', default='sgd')\n"
        "parser.add_argument('--weight-decay', type=float, default=1e-4)\nparser.add_argument('--layer-decay', type=float, default=0.75)\n"
        "args = parser.parse_args()\nopt = create_optimizer(args, model, filter_bias_and_bn=False)\n",
        "optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05), paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))\n",
        "_base_ = ['./base.py']\noptim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05))\n",
        "import torch\nopt = torch.optim.AdamW(model.parameters(), lr=3e-4, **cfg)\n",
        "import torch\nopt = torch.optim.Rprop(model.parameters())\n",
        "import torch\nopt = torch.optim.SGD(model.named_parameters(), lr=0.1, weight_decay=5e-4)\n",
        # LoRA: the base model is frozen and adapters added; only the adapter matrices train.
        "import torch\nunet.requires_grad_(False)\nunet.add_adapter(lora_config)\n"
        "lora_layers = filter(lambda p: p.requires_grad, unet.parameters())\nopt = torch.optim.AdamW(lora_layers, lr=1e-4)\n",
        "import torch\nfor p in model.parameters():\n    p.requires_grad = False\n"
        "opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)\n",
        "import torch\nfrom peft import get_peft_model\nself.model = get_peft_model(self.model, config)\n"
        "opt = torch.optim.AdamW(self.model.parameters(), lr=1e-4)\n",
        # A peft wrapper's result, and the attention processors (LoRA layers) installed in a
        # frozen UNet.
        "import torch\nfrom peft import LoraModel\nunet = LoraModel(config, unet)\nopt = torch.optim.AdamW(unet.parameters(), lr=1e-4)\n",
        "import torch\nfrom peft import get_peft_model\npeft_model = get_peft_model(model, config)\nopt = torch.optim.AdamW(peft_model.parameters(), lr=1e-4)\n",
        "import torch\nfrom diffusers.loaders import AttnProcsLayers\nunet.requires_grad_(False)\nunet.set_attn_processor(lora_procs)\n"
        "lora_layers = AttnProcsLayers(unet.attn_processors)\nopt = torch.optim.AdamW(lora_layers.parameters(), lr=1e-4)\n",
    )
    INVALID = (
        Invalid(
            "import torch\nopt = torch.optim.AdamW(model.parameters(), lr=3e-4)\n",
            line=2,
            fixed="import torch\nimport wd_guard\nopt = torch.optim.AdamW(wd_guard.param_groups(model, weight_decay=0.01), lr=3e-4)\n",
        ),
        Invalid(
            '"""Train."""\nfrom torch import optim\n\n\ndef build(self):\n    return optim.SGD(self.parameters(), lr=0.1, weight_decay=5e-4)\n',
            line=6,
            fixed='"""Train."""\nimport wd_guard\nfrom torch import optim\n\n\ndef build(self):\n'
            "    return optim.SGD(wd_guard.param_groups(self, weight_decay=5e-4), lr=0.1)\n",
        ),
        Invalid(
            "import torch\nopt = torch.optim.AdamW(\n    self.model.parameters(),\n    lr=3e-4,\n)\n",
            line=3,
            fixed="import torch\nimport wd_guard\nopt = torch.optim.AdamW(\n    wd_guard.param_groups(self.model, weight_decay=0.01),\n    lr=3e-4,\n)\n",
        ),
        Invalid(
            "import torch\nimport wd_guard\nopt = torch.optim.AdamW(filter(lambda p: p.requires_grad, net.parameters()), lr=1e-4)\n",
            fixed="import torch\nimport wd_guard\nopt = torch.optim.AdamW(wd_guard.param_groups(net, weight_decay=0.01), lr=1e-4)\n",
        ),
        Invalid(
            "from wd_guard import param_groups\nimport torch\nopt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], 0.1, 0.9, 0, 1e-4)\n",
            fixed="from wd_guard import param_groups\nimport torch\nopt = torch.optim.SGD(param_groups(net, weight_decay=1e-4), 0.1, 0.9, 0)\n",
        ),
        Invalid("import torch\nparams = list(model.parameters())\nopt = torch.optim.SGD(params, 0.1, 0.9, 0, 1e-4)\n", line=3),
        Invalid("import torch\nopt = torch.optim.AdamW([{'params': model.backbone.parameters(), 'lr': 1e-5}], lr=1e-3)\n"),
        Invalid("import torch\nopt = torch.optim.AdamW([{'params': model.parameters(), 'weight_decay': 0.05}])\n"),
        Invalid("import torch\nopt = torch.optim.AdamW([{'params': [p for _, p in model.named_parameters() if p.requires_grad], 'weight_decay': 0.05}])\n"),
        Invalid("import torch\nparams = list(self.model.parameters())\nparams = params + [self.logvar]\nopt = torch.optim.AdamW(params, lr=lr)\n", line=4),
        Invalid("import torch\nparams = list(model.parameters())\nparams += [extra]\nopt = torch.optim.AdamW(params)\n", line=4),
        Invalid("import torch\nparams = []\nparams.extend(encoder.parameters())\nparams.append(scale)\nopt = torch.optim.SGD(params, lr=0.1, weight_decay=1e-4)\n", line=5),
        Invalid("import itertools, torch\nopt = torch.optim.Adam(itertools.chain(g.parameters(), e.parameters()), weight_decay=2.5e-5)\n"),
        Invalid("import torch\nopt = torch.optim.AdamW([*g.parameters(), *e.parameters()], lr=1e-4)\n"),
        # Freezing one module says nothing about another: the UNet trains whole.
        Invalid(
            "import torch\ntext_encoder.requires_grad_(False)\nopt = torch.optim.AdamW(list(unet.parameters()), lr=1e-4)\n",
            line=3,
            fixed="import torch\nimport wd_guard\ntext_encoder.requires_grad_(False)\nopt = torch.optim.AdamW(wd_guard.param_groups(unet, weight_decay=0.01), lr=1e-4)\n",
        ),
        Invalid(
            "import itertools, torch\nfor p in vae.parameters():\n    p.requires_grad_(False)\n"
            "opt = torch.optim.AdamW(itertools.chain(vae.parameters(), unet.parameters()), lr=1e-4)\n",
            line=4,
        ),
        # A new head sized after a frozen backbone, or a ControlNet initialised from a frozen
        # UNet's weights, trains whole.
        Invalid(
            "import torch\nbackbone.requires_grad_(False)\nhead = torch.nn.Linear(backbone.num_features, 10)\nopt = torch.optim.AdamW(head.parameters())\n",
            line=4,
            fixed="import torch\nimport wd_guard\nbackbone.requires_grad_(False)\nhead = torch.nn.Linear(backbone.num_features, 10)\n"
            "opt = torch.optim.AdamW(wd_guard.param_groups(head, weight_decay=0.01))\n",
        ),
        Invalid(
            "import torch\nunet.requires_grad_(False)\ncontrolnet = ControlNetModel.from_unet(unet)\nopt = torch.optim.AdamW(controlnet.parameters())\n",
            line=4,
            fixed="import torch\nimport wd_guard\nunet.requires_grad_(False)\ncontrolnet = ControlNetModel.from_unet(unet)\n"
            "opt = torch.optim.AdamW(wd_guard.param_groups(controlnet, weight_decay=0.01))\n",
        ),
        Invalid("from timm.optim import create_optimizer_v2\nopt = create_optimizer_v2(model, 'sgd', lr=0.1, weight_decay=1e-4, filter_bias_and_bn=False)\n"),
        Invalid(
            "import argparse\nfrom timm.optim import create_optimizer\nparser = argparse.ArgumentParser()\nparser.add_argument('--opt', default='momentum')\n"
            "parser.add_argument('--weight-decay', type=float, default=1e-4)\nargs = parser.parse_args()\nopt = create_optimizer(args, model, False)\n",
            line=7,
        ),
        Invalid("optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05))\n"),
    )

    def check(self) -> Iterator[Report]:
        search = BlanketSearch(self.ctx)
        for sites in by_call(self.ctx.shared(optimizer_sites)).values():
            for report in self._reports(sites, search):
                yield report
                break  # one report per call, whichever candidate class it names

    def _reports(self, sites: List[Site], search: BlanketSearch) -> Iterator[Report]:
        for site in sites:
            if site.built is not None:
                if site.split is False and site.everything is not None and site.decays(None):
                    what = "the optimizer config, without a paramwise_cfg," if site.built == "config" else self.ctx.code(site.everything)
                    yield Report(site.everything, {"call": what, "optimizer": site.name, "weight_decay": site.decay_text(None, self.ctx)})
                continue
            for group, params in _params_of(site):
                source = search.source(params, site.names)
                if source is not None and site.decays(group):
                    values = {"call": self.ctx.code(source), "optimizer": site.name, "weight_decay": site.decay_text(group, self.ctx)}
                    inline = group is None and site.fixable and _inline(params, source, site.names) and source.func.attr.value == "parameters"  # type: ignore[attr-defined]
                    fix = functools.partial(rewrites.use_param_groups, site, source, self.ctx) if inline else None
                    yield Report(params, values, fix)


def _params_of(site: Site) -> Iterator[tuple]:
    """``(group, parameters expression)`` pairs: the call's parameters, or each group's that
    takes the call's decay; a single group also when it sets its own (several groups that
    each set a decay are a deliberate choice per module)."""
    if site.groups is None:
        arg = site.arguments.get("params")
        if arg is not None:
            yield None, arg.value
        return
    for group in site.groups:
        own = "weight_decay" in group.options and len(site.groups) > 1
        if not group.open and group.params is not None and not own:
            yield group, group.params


def _inline(params: cst.BaseExpression, source: cst.Call, names: Names) -> bool:
    """Whether the call's parameters are written in the call itself and are exactly the
    trainable ones of ``source`` (the call, ``list(...)``, a ``requires_grad`` filter), so
    that replacing them by groups of the same module keeps the same parameters."""
    if params is source:
        return True
    if isinstance(params, (cst.ListComp, cst.GeneratorExp)):
        return params.for_in.iter is source
    if isinstance(params, cst.Call) and params.args and any(names.is_builtin(params.func, name) for name in ("list", "tuple", "filter")):
        return _inline(params.args[-1].value, source, names)
    return False


def by_call(sites: Iterable[Site]) -> Dict[cst.Call, List[Site]]:
    """Sites by the call that builds them (a call that chooses among classes has several)."""
    found: Dict[cst.Call, List[Site]] = {}
    for site in sites:
        found.setdefault(site.call, []).append(site)
    return found


def named_with_decay(site: Site, group: Optional[Group], ctx) -> Union[str, AtLine]:
    """The optimizer's name, with its weight decay when the file resolves it from elsewhere."""
    text = site.decay_text(group, ctx)
    return AtLine(f"{site.name} with weight_decay {text.text}", text.node) if isinstance(text, AtLine) else site.name


class ExcessiveDecay(LintRule):
    """``lr * weight_decay`` of 0.1 or more, both written as literals (defaults fill gaps)."""

    CODE = "WD302"
    NODES = _NODES
    VOCABULARY = BY_CODE[CODE]
    THRESHOLD = 0.1
    VALID = (
        "import torch\nopt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)\n",
        "import torch\nopt = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.1)\n",
        "import torch\nopt = torch.optim.SGD(params, lr=args.lr, weight_decay=0.5)\n",
        "import torch\nopt = torch.optim.SGD([{'params': a, 'weight_decay': 0.0}], lr=1.0, weight_decay=0.5)\n",
        "import torch\nopt = torch.optim.Rprop(params, lr=10.0)\n",
    )
    INVALID = (
        Invalid("import torch\nopt = torch.optim.SGD(model.parameters(), lr=1.0, weight_decay=0.5)\n", line=2),
        Invalid("import torch\nopt = torch.optim.AdamW(params, lr=10.0)\n"),
        Invalid("import torch\nopt = torch.optim.SGD(params, 0.5, 0.9, 0, 0.2)\n"),
        Invalid("import torch\nLR = 1.0\nopt = torch.optim.SGD([{'params': a, 'weight_decay': 0.1 * 2}], lr=LR)\n"),
        Invalid("import torch\nopt = torch.optim.Adam(params, weight_decay=100)\n"),
    )

    def check(self) -> Iterator[Report]:
        for call, sites in by_call(self.ctx.shared(optimizer_sites)).items():
            products = [p for site in sites if site.fact.decay in DECAYING for p in map(functools.partial(_product, site), site.scopes()) if p is not None]
            worst = max(products, default=0.0)
            if worst >= self.THRESHOLD:
                yield Report(call, {"product": f"{worst:.3g}"})


def _product(site: Site, group: Optional[Group]) -> Optional[float]:
    lr, wd = site.number("lr", group), site.number("weight_decay", group)
    return None if lr is None or wd is None else lr * wd
