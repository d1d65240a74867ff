from torch.optim import AdamW, SGD
from torch import optim as topt


def encoder_optimizer(params):
    return AdamW(params, 1e-3, (0.9, 0.999), 1e-8, 1e-2)


def head_optimizer(params):
    return topt.AdamW(params, lr=1e-3, weight_decay=5e-4)


def sgd(params):
    return SGD(params, lr=0.1, momentum=0.9)
