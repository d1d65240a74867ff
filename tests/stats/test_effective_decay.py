"""Effective decay per optimizer family against values computed by hand from the optimizer's state.

Tensors have an odd number of elements (35 and 5) and fewer than the sample size, so the
median is exact and unambiguous.
"""

from __future__ import annotations

import math
import warnings

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from wd_guard._plan import StatsPlan  # noqa: E402
from wd_guard.stats import weight_stats  # noqa: E402

LR, WD = 0.01, 0.1


def _trained(make_optimizer, steps=4, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    model = nn.Linear(7, 5).to(dtype)
    optimizer = make_optimizer(model.parameters())
    for _ in range(steps):
        optimizer.zero_grad()
        x = torch.randn(16, 7, dtype=dtype)
        nn.functional.mse_loss(model(x), x[:, :5].sin()).backward()
        optimizer.step()
    return model, optimizer


def _median(values):
    flat = values.detach().flatten().double()
    assert flat.numel() % 2 == 1
    return flat.median().item()


def _check(model, optimizer, expected_for):
    stats = weight_stats(model, optimizer)
    for name, param in model.named_parameters():
        state = optimizer.state[param]
        expected = expected_for(state, optimizer.param_groups[0])
        assert stats[f"effective_decay/{name}"] == pytest.approx(expected, rel=1e-5), name
        assert stats[f"weight_norm/{name}"] == pytest.approx(param.norm().item(), rel=1e-6)


def _step(state):
    return float(state["step"])


@pytest.mark.parametrize(
    "make",
    [
        lambda p: torch.optim.AdamW(p, lr=LR, weight_decay=WD),
        lambda p: torch.optim.Adam(p, lr=LR, weight_decay=WD, decoupled_weight_decay=True),
        lambda p: torch.optim.NAdam(p, lr=LR, weight_decay=WD, decoupled_weight_decay=True),
        lambda p: torch.optim.RAdam(p, lr=LR, weight_decay=WD, decoupled_weight_decay=True),
        lambda p: torch.optim.SGD(p, lr=LR, weight_decay=WD),
    ],
    ids=["AdamW", "Adam-decoupled", "NAdam-decoupled", "RAdam-decoupled", "SGD"],
)
def test_decoupled_and_plain_sgd_is_lr_times_wd(make):
    model, optimizer = _trained(make)
    _check(model, optimizer, lambda state, group: LR * WD)


@pytest.mark.parametrize(
    "momentum, dampening, nesterov, factor",
    [
        (0.9, 0.0, False, 1 / 0.1),
        (0.9, 0.1, False, 0.9 / 0.1),
        (0.8, 0.0, True, 1 + 0.8 / 0.2),
        (0.0, 0.5, False, 1.0),  # without momentum torch ignores dampening
    ],
)
def test_sgd_momentum_steady_state(momentum, dampening, nesterov, factor):
    model, optimizer = _trained(
        lambda p: torch.optim.SGD(p, lr=LR, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=WD)
    )
    _check(model, optimizer, lambda state, group: LR * WD * factor)


def test_asgd_uses_its_current_eta():
    model, optimizer = _trained(lambda p: torch.optim.ASGD(p, lr=LR, lambd=1e-2, alpha=0.75, weight_decay=WD))

    def expected(state, group):
        eta = LR / (1 + 1e-2 * LR * _step(state)) ** 0.75
        return eta * WD

    _check(model, optimizer, expected)


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_adam_coupled(amsgrad, dtype):
    # A float64 state is converted into the float32 sample buffer, a float32 one selected into it.
    make = lambda p: torch.optim.Adam(p, lr=LR, betas=(0.8, 0.99), eps=1e-6, weight_decay=WD, amsgrad=amsgrad)  # noqa: E731
    model, optimizer = _trained(make, dtype=dtype)

    def expected(state, group):
        v = state["max_exp_avg_sq" if amsgrad else "exp_avg_sq"]
        v_hat = v / (1 - 0.99 ** _step(state))
        return _median(LR * WD / (v_hat.sqrt() + 1e-6))

    _check(model, optimizer, expected)


@pytest.mark.parametrize("cls", [torch.optim.Adam, torch.optim.AdamW])
def test_a_learning_rate_held_as_a_tensor(cls):
    make = lambda p: cls(p, lr=torch.tensor(LR), eps=1e-6, weight_decay=WD, foreach=False)  # noqa: E731
    model, optimizer = _trained(make)

    def expected(state, group):
        if cls is torch.optim.AdamW:
            return LR * WD
        return _median(LR * WD / ((state["exp_avg_sq"] / (1 - 0.999 ** _step(state))).sqrt() + 1e-6))

    _check(model, optimizer, expected)


def test_adamax():
    model, optimizer = _trained(lambda p: torch.optim.Adamax(p, lr=LR, eps=1e-6, weight_decay=WD))
    _check(model, optimizer, lambda state, group: _median(LR * WD / state["exp_inf"]))


@pytest.mark.parametrize("centered, momentum", [(False, 0.0), (True, 0.5)])
def test_rmsprop(centered, momentum):
    model, optimizer = _trained(
        lambda p: torch.optim.RMSprop(p, lr=LR, alpha=0.9, eps=1e-6, centered=centered, momentum=momentum, weight_decay=WD)
    )

    def expected(state, group):
        v = state["square_avg"]
        if centered:
            v = v - state["grad_avg"] ** 2
        return _median(LR * WD / (v.sqrt() + 1e-6)) / (1 - momentum)

    _check(model, optimizer, expected)


@pytest.mark.parametrize("eps", [1e-8, 0.3])  # 0.3: as large as sqrt(sum), so it counts
def test_adagrad_with_lr_decay(eps):
    model, optimizer = _trained(lambda p: torch.optim.Adagrad(p, lr=LR, lr_decay=0.05, eps=eps, weight_decay=WD))

    def expected(state, group):
        clr = LR / (1 + (_step(state) - 1) * 0.05)
        return _median(clr * WD / (state["sum"].sqrt() + eps))

    _check(model, optimizer, expected)


def test_adadelta():
    model, optimizer = _trained(lambda p: torch.optim.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6, weight_decay=WD))

    def expected(state, group):
        ratio = (state["acc_delta"] + 1e-6).sqrt() / (state["square_avg"] + 1e-6).sqrt()
        return _median(1.0 * WD * ratio)

    _check(model, optimizer, expected)


def test_nadam_momentum_cache():
    model, optimizer = _trained(lambda p: torch.optim.NAdam(p, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=WD, momentum_decay=4e-3))

    def expected(state, group):
        t, prod = _step(state), float(state["mu_product"])
        mu = 0.9 * (1 - 0.5 * 0.96 ** (t * 4e-3))
        mu_next = 0.9 * (1 - 0.5 * 0.96 ** ((t + 1) * 4e-3))
        # The gradient's share and the first moment's share (its L2 part is (1 - beta1**t) * wd * theta).
        weight = (1 - mu) / (1 - prod) + mu_next * (1 - 0.9**t) / (1 - prod * mu_next)
        v_hat = state["exp_avg_sq"] / (1 - 0.999**t)
        return _median(LR * WD * weight / (v_hat.sqrt() + 1e-8))

    _check(model, optimizer, expected)


# Step 6 is the first one torch rectifies with beta2 = 0.999 (rho_6 = 5.994 > 5); an eps
# as large as sqrt(v) shows it is added, not subtracted.
@pytest.mark.parametrize("steps, eps", [(3, 1e-8), (6, 1e-8), (12, 1e-8), (12, 0.1)])
def test_radam_rectification(steps, eps):
    model, optimizer = _trained(lambda p: torch.optim.RAdam(p, lr=LR, betas=(0.9, 0.999), eps=eps, weight_decay=WD), steps=steps)

    def expected(state, group):
        t = _step(state)
        rho_inf = 2 / (1 - 0.999) - 1
        rho_t = rho_inf - 2 * t * 0.999**t / (1 - 0.999**t)
        if rho_t <= 5:
            return LR * WD  # not yet rectified: a plain momentum step
        rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return _median(LR * WD * rect * math.sqrt(1 - 0.999**t) / (state["exp_avg_sq"].sqrt() + eps))

    _check(model, optimizer, expected)
    t = steps
    assert (1999 - 2 * t * 0.999**t / (1 - 0.999**t) > 5) == (steps >= 6)


def test_no_decay_is_zero_and_unknown_has_no_key():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 1))

    class CustomStep(torch.optim.Adam):
        def step(self, closure=None):  # rewrites the update: decay could act in any way
            return super().step(closure)

    optimizers = [
        torch.optim.Adam([{"params": [model[0].weight], "weight_decay": 0.1}, {"params": [model[0].bias], "weight_decay": 0.0}]),
        torch.optim.Rprop(model[1].parameters()),
        CustomStep(model[2].parameters(), weight_decay=0.1),
    ]
    model(torch.randn(4, 3)).sum().backward()
    for optimizer in optimizers:
        optimizer.step()
    stats = weight_stats(model, optimizers)
    assert stats["effective_decay/0.weight"] > 0
    assert stats["effective_decay/0.bias"] == 0.0
    assert stats["effective_decay/1.weight"] == 0.0 and stats["effective_decay/1.bias"] == 0.0
    assert "effective_decay/2.weight" not in stats and "weight_norm/2.weight" in stats


def test_adaptive_state_missing_before_first_step():
    model = nn.Linear(3, 3)
    extra = nn.Parameter(torch.ones(2))
    model.register_parameter("extra", extra)
    adam = torch.optim.Adam(model.parameters(), weight_decay=0.1)
    stats = weight_stats(model, adam)
    assert not any(k.startswith("effective_decay/") for k in stats)
    assert stats["weight_norm/extra"] == pytest.approx(math.sqrt(2))
    adamw = torch.optim.AdamW([model.weight], lr=0.5, weight_decay=0.1)
    stats = weight_stats(model, adamw)
    assert stats["effective_decay/weight"] == pytest.approx(0.05)
    assert stats["effective_decay/bias"] == 0.0  # trainable but in no optimizer: not decayed


def test_decoupled_definition_is_the_shrink_per_step():
    torch.manual_seed(0)
    model = nn.Linear(8, 8)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.2)
    for _ in range(5):
        before = model.weight.detach().clone()
        rate = weight_stats(model, optimizer)["effective_decay/weight"]
        optimizer.zero_grad()
        (model(torch.randn(4, 8)) * 0).sum().backward()  # no data gradient: decay alone acts
        optimizer.step()
        assert model.weight.norm().item() / before.norm().item() == pytest.approx(1 - rate, rel=1e-6)


def test_sgd_momentum_definition_is_the_steady_shrink():
    torch.manual_seed(0)
    model = nn.Linear(8, 8)
    # lr * wd small against 1 - momentum: the weights barely move while the buffer settles.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=0.01)
    for _ in range(300):
        optimizer.zero_grad()
        (model(torch.randn(4, 8)) * 0).sum().backward()
        optimizer.step()
    before = model.weight.norm().item()
    rate = weight_stats(model, optimizer)["effective_decay/weight"]
    optimizer.step()
    observed = 1 - model.weight.norm().item() / before
    assert observed == pytest.approx(rate, rel=0.02)


def test_coupled_adam_definition_is_the_median_relative_shrink():
    torch.manual_seed(0)
    model = nn.Linear(15, 15)
    # Short moment windows and a tiny lr: the moments settle while the weights stay put.
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5, betas=(0.5, 0.9), weight_decay=0.1)
    for _ in range(100):
        optimizer.zero_grad()
        (model(torch.randn(4, 15)) * 0).sum().backward()  # the only gradient is the L2 term
        optimizer.step()
    before = model.weight.detach().clone()
    rate = weight_stats(model, optimizer)["effective_decay/weight"]
    optimizer.step()
    relative = ((before - model.weight.detach()) / before).flatten()
    assert relative.median().item() == pytest.approx(rate, rel=0.02)


def test_a_zero_denominator_is_inf_without_a_warning():
    model, optimizer = _trained(lambda p: torch.optim.Adam(p, lr=LR, weight_decay=WD))
    # Zero weights, second moments and eps: every formula and every total divides by zero.
    optimizer.param_groups[0]["eps"] = 0.0
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
            optimizer.state[param]["exp_avg_sq"].zero_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # x / 0 is inf, as in torch's own update, not a warning
        stats = StatsPlan(model, [optimizer], totals=True).compute()
    assert stats["effective_decay/weight"] == math.inf
    # Every norm is zero, so the total is the plain mean rather than 0 / 0.
    assert stats["weight_norm/total"] == 0.0
    assert stats["effective_decay/total"] == math.inf


def test_adadelta_with_an_eps_per_group():
    # Two groups that disagree on eps: each parameter's ratio uses its own group's eps.
    torch.manual_seed(0)
    model = nn.Linear(7, 5)
    optimizer = torch.optim.Adadelta(
        [{"params": [model.weight], "eps": 1e-6}, {"params": [model.bias], "eps": 1e-2}], lr=1.0, rho=0.9, weight_decay=WD
    )
    for _ in range(4):
        optimizer.zero_grad()
        x = torch.randn(16, 7)
        nn.functional.mse_loss(model(x), x[:, :5].sin()).backward()
        optimizer.step()
    stats = weight_stats(model, optimizer)
    for name, param, eps in (("weight", model.weight, 1e-6), ("bias", model.bias, 1e-2)):
        state = optimizer.state[param]
        ratio = (state["acc_delta"] + eps).sqrt() / (state["square_avg"] + eps).sqrt()
        assert stats[f"effective_decay/{name}"] == pytest.approx(_median(WD * ratio), rel=1e-5), name


def test_adadelta_with_a_single_parameter():
    torch.manual_seed(0)
    weight = nn.Parameter(torch.randn(5, 7))
    model = nn.Module()
    model.register_parameter("weight", weight)
    optimizer = torch.optim.Adadelta([weight], lr=1.0, rho=0.9, eps=1e-6, weight_decay=WD)
    for _ in range(3):
        optimizer.zero_grad()
        (weight.sin().sum() + (weight * torch.randn(5, 7)).sum()).backward()
        optimizer.step()
    state = optimizer.state[weight]
    ratio = (state["acc_delta"] + 1e-6).sqrt() / (state["square_avg"] + 1e-6).sqrt()
    assert weight_stats(model, optimizer)["effective_decay/weight"] == pytest.approx(_median(WD * ratio), rel=1e-5)


def test_scalars_stack_as_float64_on_the_cpu():
    # Step counts come as 0-d float32 or int64 tensors, hyperparameters as numbers or None:
    # every column is float64 on the CPU, None as NaN.
    from wd_guard._decay import stack_scalars

    steps = stack_scalars([torch.tensor(3.0), torch.tensor(5.0)])
    assert steps.dtype == torch.float64 and steps.tolist() == [3.0, 5.0]
    mixed = stack_scalars([torch.tensor(7), None, 0.5])
    assert mixed.dtype == torch.float64
    assert mixed[0].item() == 7.0 and math.isnan(mixed[1].item()) and mixed[2].item() == 0.5
    numbers = stack_scalars([0.1, None])
    assert numbers.dtype == torch.float64 and numbers[0].item() == 0.1 and math.isnan(numbers[1].item())
