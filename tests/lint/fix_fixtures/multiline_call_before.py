"""A multi-line optimizer call with comments inside: they survive the rewrite."""

import torch


def build(model, cfg):
    optimizer = torch.optim.Adam(
        model.parameters(),  # every parameter
        lr=cfg.lr,  # peak learning rate
        betas=(0.9, 0.999),
        # decay as in the paper
        weight_decay=cfg.weight_decay,
    )
    return optimizer
