from torch.optim import (
    Adam,
    SGD,
)


def coupled(params):
    return Adam(params, weight_decay=1e-4)


def plain(params):
    return Adam(params, lr=3e-4)


def also_coupled(params):
    return Adam(params, weight_decay=1e-3)
