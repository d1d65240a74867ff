"""The sampled median: which elements it reads, and its measured error bound (rank within 0.06)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from wd_guard._norms import SAMPLE_SIZE, dense_flat, sample, sample_index  # noqa: E402
from wd_guard.stats import weight_stats  # noqa: E402

BOUND = 0.06  # the bound the weight_stats docstring states


def _rank_error(values: torch.Tensor, estimate: float) -> float:
    flat = values.flatten().double()
    rank = ((flat < estimate).double().mean() + (flat <= estimate).double().mean()).item() / 2
    return abs(rank - 0.5)


@pytest.mark.parametrize("shape", [(2304, 768), (3072, 768), (768, 3072), (64, 3, 7, 7), (1000, 2048), (3000,)])
def test_sample_spans_every_row_band_and_spreads_columns(shape):
    state = torch.arange(math.prod(shape)).reshape(shape)
    index = sample_index(state)
    assert index.numel() == SAMPLE_SIZE and index.unique().numel() == SAMPLE_SIZE
    cols = math.prod(shape[1:])
    rows, columns = index // cols, index % cols
    # Rows: evenly stratified over the whole tensor (no band of rows left out).
    band = shape[0] / SAMPLE_SIZE
    assert torch.allclose(rows.double(), (torch.arange(SAMPLE_SIZE, dtype=torch.float64) + 0.5) * band, atol=1.0)
    # Columns: no gap between visited columns much wider than an even spread would leave.
    if cols > 1:
        visited = columns.unique().sort().values
        widest = torch.cat([visited.diff(), (visited[:1] + cols - visited[-1:])]).max().item()
        assert widest <= 3 * max(1.0, cols / SAMPLE_SIZE)
    assert torch.equal(sample(state), state.flatten()[index])


def test_channels_last_state_is_read_without_copy():
    state = torch.rand(64, 32, 3, 3).to(memory_format=torch.channels_last)
    flat = dense_flat(state)
    assert flat.untyped_storage().data_ptr() == state.untyped_storage().data_ptr()
    assert torch.equal(flat.sort().values, state.flatten().sort().values)


def _structured(shape, kind, seed):
    generator = torch.Generator().manual_seed(seed)
    rows, cols = shape[0], math.prod(shape[1:])
    noise = torch.empty(rows, cols).log_normal_(0, 0.5, generator=generator)
    if kind == "row-column":  # second moments factor into row and column scales (Adafactor's premise)
        scale = torch.empty(rows, 1).log_normal_(0, 1.5, generator=generator) * torch.empty(1, cols).log_normal_(0, 1.5, generator=generator)
    elif kind == "head-blocks":  # attention heads: blocks of 64 columns with their own scale
        scale = torch.empty(cols // 64 + 1).log_normal_(0, 2, generator=generator).repeat_interleave(64)[:cols]
    else:  # period-4 columns, which a sample stepping by a multiple of 4 would see one class of
        scale = torch.tensor([1.0, 100.0, 0.01, 10.0]).repeat(cols // 4 + 1)[:cols]
    return (noise * scale).reshape(shape)


@pytest.mark.parametrize("kind", ["row-column", "head-blocks", "periodic"])
@pytest.mark.parametrize("shape", [(768, 3072), (3072, 768), (2048, 512, 1, 1), (512, 256, 3, 3), (1000, 2048)])
def test_sample_median_rank_error_on_structured_states(shape, kind):
    state = _structured(shape, kind, seed=sum(shape))
    estimate = torch.nanmedian(sample(state)).item()
    assert _rank_error(state, estimate) <= BOUND


def test_effective_decay_median_within_bound_on_real_adam_state():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(1000, 64), nn.TransformerEncoderLayer(64, 4, 256, dropout=0.0, batch_first=True))
    lr, wd, eps = 1e-3, 0.01, 1e-8
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd, eps=eps)
    for _ in range(12):
        optimizer.zero_grad()
        tokens = torch.randint(0, 300, (4, 16))  # most embedding rows never see a data gradient
        model(tokens).pow(2).mean().backward()
        optimizer.step()
    stats = weight_stats(model, optimizer)
    checked = 0
    for name, param in model.named_parameters():
        state = optimizer.state[param]
        term = lr * wd / ((state["exp_avg_sq"] / (1 - 0.999 ** float(state["step"]))).sqrt() + eps)
        error = _rank_error(term, stats[f"effective_decay/{name}"])
        # Small tensors are read whole: the median is exact (one element of float rounding).
        assert error <= (BOUND if param.numel() > SAMPLE_SIZE else 1 / param.numel() + 1e-9), name
        checked += param.numel() > SAMPLE_SIZE
    assert checked == 5  # embedding, attention in/out projections, two feed-forward weights


def test_padded_rows_give_the_lower_median_of_their_values():
    from wd_guard import _medians
    from wd_guard._norms import Piece

    generator = torch.Generator().manual_seed(0)
    sizes = [1, 2, 7, 64, 513, 1023, 1024, 5000]
    tensors = [torch.rand(n, generator=generator) for n in sizes] + [None]
    gather = _medians.SampleGather(tensors, [Piece()] * len(tensors), torch.device("cpu"))
    medians = gather.medians(gather.run())
    for row, tensor in enumerate(tensors[:-1]):
        expected = torch.nanmedian(sample(tensor)).item()  # torch's median is the lower one
        assert medians[row].item() == expected, sizes[row]
    assert math.isnan(medians[-1].item())  # no state yet: no value


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_medians_over_the_whole_range_of_values_a_state_holds(dtype):
    from wd_guard import _medians
    from wd_guard._norms import Piece

    tiny = torch.finfo(torch.float32).tiny / 64  # subnormal
    pool = torch.cat([torch.zeros(300), torch.full((100,), tiny), torch.logspace(-30, 30, 1500), torch.full((60,), math.inf)])
    pool = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(1))]
    tensors = [pool[:n].clone() for n in (1, 2, 3, 301, 1024, 1960)]
    gather = _medians.SampleGather(tensors, [Piece()] * len(tensors), torch.device("cpu"))
    medians = gather.medians(gather.run().to(dtype))  # a combined x can be float64
    assert medians.dtype == dtype
    for row, tensor in enumerate(tensors):
        values = sample(tensor).sort().values
        assert medians[row].item() == values[(len(values) - 1) // 2].item(), len(tensor)


def test_centered_second_moment_is_never_below_zero():
    from wd_guard._decay import _centered

    grad_avg = torch.tensor([3.0, 1e-3, 0.0])
    square_avg = grad_avg * grad_avg * torch.tensor([1 - 1e-7, 1.0, 1.0]) + torch.tensor([0.0, 0.0, 2.0])
    assert _centered([square_avg, grad_avg], {}).tolist() == [0.0, 0.0, 2.0]
