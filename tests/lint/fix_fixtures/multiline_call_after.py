"""A multi-line optimizer call with comments inside: they survive the rewrite."""

import torch
import wd_guard


def build(model, cfg):
    optimizer = torch.optim.AdamW(
        wd_guard.param_groups(model, weight_decay=cfg.weight_decay),  # every parameter
        lr=cfg.lr,  # peak learning rate
        betas=(0.9, 0.999),
        # decay as in the paper
    )
    return optimizer
