"""prune.io: pruned models reload to bit-identical outputs; writes are atomic; bad input is refused."""
import json
import os

import pytest
import torch
from torch import nn

from prune.io import load_pruned, read_pruned, save_pruned
from prune.layers import FactorizedConv2d, FactorizedLinear
from prune.methods.magnitude import magnitude_prune
from prune.methods.svd import rank_truncate
from prune.models import build_model
from prune.models.specs import base_spec


def _same(a: nn.Module, b: nn.Module, x: torch.Tensor) -> bool:
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


def _resnet():
    torch.manual_seed(0)
    m = build_model("resnet20").eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so the buffers matter
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    return m


def test_dense_roundtrip_and_weights_only(tmp_path):
    m = _resnet()
    path = save_pruned(m, tmp_path / "dense.pt")
    blob = torch.load(path, weights_only=True)  # plain data only
    assert blob["format"] == "rmt-pruned" and json.loads(blob["recipe"])["replacements"] == []
    r = load_pruned(path)
    assert type(r) is type(m) and not r.training
    assert _same(m, r, torch.randn(4, 3, 32, 32))


def test_factorised_roundtrip(tmp_path):
    m = _resnet()
    p, cuts = rank_truncate(m, 4, min_rank=1)
    assert any(c.action == "factorized" for c in cuts)
    kinds = {type(mod) for mod in p.modules()}
    assert FactorizedConv2d in kinds and FactorizedLinear in kinds
    r = load_pruned(save_pruned(p, tmp_path / "fact.pt"))
    assert _same(p, r, torch.randn(4, 3, 32, 32))
    assert {k: v.shape for k, v in r.state_dict().items()} == {k: v.shape for k, v in p.state_dict().items()}
    rec = read_pruned(tmp_path / "fact.pt").recipe
    assert {x["type"] for x in rec["replacements"]} == {"FactorizedConv2d", "FactorizedLinear"}


def test_masked_roundtrip_keeps_masks(tmp_path):
    torch.manual_seed(1)
    m = build_model("mnist-cnn")
    p, masks = magnitude_prune(m, amount=0.7)
    f = read_pruned(save_pruned(p, tmp_path / "masked.pt", masks=masks))
    assert _same(p, f.model, torch.randn(5, 1, 28, 28))
    assert set(f.masks) == set(masks) and all(torch.equal(f.masks[k], masks[k]) for k in masks)
    w = f.model.classifier[0].weight
    assert torch.equal(w == 0, ~masks["classifier.0.weight"])


def test_dtype_is_kept(tmp_path):
    m = build_model("vit", dim=32, depth=1, heads=2).double()
    p, _ = rank_truncate(m, 3)
    r = load_pruned(save_pruned(p, tmp_path / "f64.pt"))
    assert next(r.parameters()).dtype == torch.float64
    assert _same(p, r, torch.randn(2, 1, 28, 28, dtype=torch.float64))


def test_vit_roundtrip_factorised_qkv(tmp_path):
    torch.manual_seed(2)
    m = build_model("vit", dim=32, depth=2, heads=4, patch_embed="linear")
    p, _ = rank_truncate(m, 5)
    assert isinstance(p.blocks[0].attn.qkv, FactorizedLinear) and isinstance(p.patch_embed, FactorizedLinear)
    r = load_pruned(save_pruned(p, tmp_path / "vit.pt"))
    assert _same(p, r, torch.randn(3, 1, 28, 28))


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    m = build_model("mnist-cnn")
    target = tmp_path / "model.pt"
    save_pruned(m, target)
    before = target.read_bytes()
    real_save = torch.save

    def failing_save(obj, f, *a, **k):
        f.write(b"partial bytes")  # part of the file is written, then the write fails
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    p, _ = rank_truncate(m, 2)
    with pytest.raises(OSError, match="disk full"):
        save_pruned(p, target)
    with pytest.raises(OSError):
        save_pruned(p, tmp_path / "new.pt")
    monkeypatch.setattr(torch, "save", real_save)
    assert target.read_bytes() == before  # the previous file is untouched
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]  # no temporary file, no partial new file


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="rmt_base"):
        save_pruned(nn.Sequential(nn.Linear(3, 2)), tmp_path / "x.pt")
    m = build_model("mnist-cnn")
    m.classifier[1] = nn.LSTM(4, 4)  # a layer type that cannot be recorded
    with pytest.raises(TypeError, match="LSTM"):
        save_pruned(m, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="does not exist"):
        save_pruned(build_model("mnist-cnn"), tmp_path / "nodir" / "x.pt")
    with pytest.raises(ValueError, match="names no parameter"):
        save_pruned(build_model("mnist-cnn"), tmp_path / "x.pt", masks={"nope": torch.ones(2, dtype=torch.bool)})
    with pytest.raises(ValueError, match="bool tensor"):
        save_pruned(build_model("mnist-cnn"), tmp_path / "x.pt",
                    masks={"classifier.2.weight": torch.ones(2, dtype=torch.bool)})
    torch.save({"a": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an rmt-pruned file"):
        load_pruned(tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a file"):
        load_pruned(tmp_path / "missing.pt")
    # an explicit base record rescues a model built without the registry
    plain = build_model("mnist-cnn")
    del plain.rmt_base
    r = load_pruned(save_pruned(plain, tmp_path / "b.pt", base=base_spec("mnist-cnn")))
    assert _same(plain, r, torch.randn(2, 1, 28, 28))


@pytest.mark.slow
def test_hf_vit_roundtrip(tmp_path):
    from prune.hf import hf_vit_from_config, prunable_layer_names

    m = hf_vit_from_config(image_size=28, patch_size=7, num_channels=1, hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=64, num_labels=10)
    p, cuts = rank_truncate(m, 4, layers=prunable_layer_names(m), min_rank=1)
    assert all(c.action == "factorized" for c in cuts)
    r = load_pruned(save_pruned(p, tmp_path / "hf.pt"))
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(p(x).logits, r(x).logits)
    assert r.config.hidden_size == 32
