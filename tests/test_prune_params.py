"""prune.params: stored-entry counts (tied tensors once, factorised layers k (N + M)) and non-zero counts."""
import pytest
import torch
from torch import nn

from prune.methods.svd import rank_truncate
from prune.params import count_nonzero, count_parameters


def test_plain_model_matches_numel():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 4))
    expected = (8 * 3 * 9 + 8) + (8 + 8) + (4 * 8 + 4)
    assert count_parameters(model) == expected == sum(p.numel() for p in model.parameters())
    # running mean / var (float) are added; num_batches_tracked (integer) is not
    assert count_parameters(model, include_buffers=True) == expected + 16


def test_tied_weights_counted_once():
    emb = nn.Embedding(50, 16)
    head = nn.Linear(16, 50, bias=False)
    head.weight = emb.weight  # the same Parameter (weight tying)
    model = nn.Sequential(emb, head)
    assert count_parameters(model) == 50 * 16
    # a different Parameter object over the same storage is still stored once
    other = nn.Linear(16, 50, bias=False)
    other.weight = nn.Parameter(emb.weight.data)
    model2 = nn.ModuleList([emb, other])
    assert count_parameters(model2) == 50 * 16
    # same size, different storage: both count
    model3 = nn.ModuleList([nn.Linear(16, 50, bias=False), nn.Linear(16, 50, bias=False)])
    assert count_parameters(model3) == 2 * 50 * 16


def test_factorised_layers_count_what_they_store():
    model = nn.Sequential(nn.Linear(100, 80), nn.ReLU(), nn.Linear(80, 10))
    low, cuts = rank_truncate(model, 5, min_rank=1)
    assert count_parameters(low) == 5 * (100 + 80) + 80 + 5 * (80 + 10) + 10
    assert count_parameters(low) == sum(c.params_after for c in cuts) + 80 + 10  # biases on top of the weights


def test_rank_truncate_floors_at_the_output_dimension_by_default():
    """One default for API and CLI (issue 13): the kept rank is never below the number of outputs unless asked."""
    model = nn.Sequential(nn.Linear(100, 80), nn.ReLU(), nn.Linear(80, 10))
    _, cuts = rank_truncate(model, 5)
    assert [c.rank_after for c in cuts] == [10, 10]
    _, cuts = rank_truncate(model, 5, min_rank=1)
    assert [c.rank_after for c in cuts] == [5, 5]


def test_count_nonzero():
    lin = nn.Linear(10, 6)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[0, :4] = 1.0
        lin.bias.copy_(torch.tensor([0.0, 1, 0, 2, 0, 3]))
    assert count_nonzero(lin) == 4 + 3
    assert count_parameters(lin) == 66  # zeros are still stored
    tied = nn.ModuleList([lin, lin])
    assert count_nonzero(tied) == 7
    bn = nn.BatchNorm1d(4)  # running_var = 1, running_mean = 0
    assert count_nonzero(bn, include_buffers=True) == 4 + 0 + 0 + 4  # weight 1, bias 0, mean 0, var 1


def test_errors():
    for fn in (count_parameters, count_nonzero):
        with pytest.raises(TypeError, match="model"):
            fn(torch.ones(3))


def test_meta_device_model():
    """A model built on the meta device (no storage, every data_ptr is 0) is counted tensor by tensor."""
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(10, 10), nn.Linear(10, 10))
        tied = nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 7, bias=False))
    assert count_parameters(model) == 220
    tied[1].weight = tied[0].weight
    assert count_parameters(tied) == 28
