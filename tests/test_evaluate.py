"""prune.evaluate: normalisation, seeded subsets, batching, eval mode, timing."""
import numpy as np
import pytest
import torch
from torch import nn

from prune.evaluate import evaluate, inference_time, load_inputs, predict, subset_indices
from prune.models import build_model

from _shared_paths import shared_env  # noqa: F401


def test_subset_indices():
    a, b = subset_indices(10_000, 500, seed=3), subset_indices(10_000, 500, seed=3)
    assert np.array_equal(a, b) and len(np.unique(a)) == 500 and np.all(np.diff(a) > 0)
    assert np.array_equal(subset_indices(10, None), np.arange(10)) and np.array_equal(subset_indices(10, 99), np.arange(10))
    with pytest.raises(ValueError, match="limit"):
        subset_indices(10, 0)


def test_load_inputs_normalisation(shared_env):
    x, y = load_inputs("mnist", "test", ((0.1307,), (0.3081,)))
    assert x.shape == (10_000, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    raw, _ = load_inputs("mnist", "test")
    assert float(raw.min()) == 0.0 and float(raw.max()) == 1.0
    assert torch.allclose(x, (raw - 0.1307) / 0.3081)
    # MNIST's own statistics: the normalised test set has mean ~0 and std ~1
    assert abs(float(x.mean())) < 0.02 and abs(float(x.std()) - 1) < 0.02
    xc, yc = load_inputs("cifar10", "test", ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), limit=300)
    assert xc.shape == (300, 3, 32, 32) and len(set(yc.tolist())) == 10  # a seeded subset spans the sorted classes
    with pytest.raises(ValueError, match="dataset"):
        load_inputs("imagenet")
    with pytest.raises(ValueError, match="one mean and std per channel"):
        load_inputs("cifar10", "test", ((0.5, 0.5), (0.5, 0.5)), limit=10)


def test_predict_batches_and_restores_mode():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3)).train()
    x = torch.randn(103, 4)
    out = predict(m, x, batch_size=10)
    assert m.training and out.shape == (103, 3) and not out.requires_grad
    m.eval()
    with torch.no_grad():
        assert torch.allclose(out, m(x), atol=1e-6)  # dropout off in predict, batching changes nothing
    with pytest.raises(TypeError):
        predict("model", x)
    with pytest.raises(ValueError, match="batch_size"):
        predict(m, x, batch_size=0)


def test_evaluate_counts_correct(shared_env):
    class Oracle(nn.Module):  # predicts class 3 always
        def forward(self, x):
            out = torch.zeros(x.shape[0], 10)
            out[:, 3] = 1
            return out

    x, y = load_inputs("mnist", "test", limit=2000)
    r = evaluate(Oracle(), "mnist", inputs=(x, y), return_logits=True)
    assert r.accuracy == pytest.approx(float((y == 3).float().mean())) and r.logits.shape == (2000, 10)


def test_inference_time_interleaved():
    m = build_model("mnist-cnn")
    a, b = inference_time([m, m], torch.randn(4, 1, 28, 28), repeats=3, warmup=1)
    assert len(a["runs_ms"]) == 3 and a["median_ms"] > 0 and b["min_ms"] > 0
    assert torch.get_num_threads() >= 1
    with pytest.raises(ValueError):
        inference_time(m, torch.randn(1, 1, 28, 28), repeats=0)
