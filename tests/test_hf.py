"""Hugging Face ViT adapter (offline): build from config, analysis, pruning, save/reload, local directories.

Importing transformers takes 10-40 s on the shared CPU, so every test here is marked slow.
"""
import json
import os

import pytest
import torch

pytestmark = pytest.mark.slow

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SMALL = dict(image_size=28, patch_size=7, num_channels=1, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=64, num_labels=10)


@pytest.fixture(scope="module")
def hf():
    from prune import hf

    return hf


def test_build_is_seeded_and_leaves_global_rng(hf):
    state = torch.get_rng_state()
    a, b, c = (hf.hf_vit_from_config(seed=s, **SMALL) for s in (0, 0, 1))
    assert torch.equal(torch.get_rng_state(), state)
    sa, sb, sc = (m.state_dict() for m in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(not torch.equal(sa[k], sc[k]) for k in sa)
    assert a.rmt_base["kind"] == "hf-vit" and a.rmt_base["dataset"] is None  # never guessed from the shape


def test_analysis_and_pruning_work_on_hf_vit(hf):
    from prune.analysis import analyze
    from prune.methods.svd import mp_truncate

    m = hf.hf_vit_from_config(**SMALL)
    table = analyze(m)
    names = set(table.column("name"))
    assert any(n.endswith(("q_proj", "query")) for n in names) and any(n.endswith("fc1") or n.endswith("intermediate.dense")
                                                                      for n in names)
    layers = hf.prunable_layer_names(m)
    assert not any("patch_embeddings" in n for n in layers)
    p, cuts = mp_truncate(m, layers=layers, min_rank=2)
    assert len(cuts) == len(layers)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert p(x).logits.shape == (2, 10)
    # the reason the adapter leaves the patch projection dense: transformers reads its .weight
    from prune.methods.svd import rank_truncate

    bad, _ = rank_truncate(m, 2, layers=["vit.embeddings.patch_embeddings.projection"], factorize="always")
    with pytest.raises(AttributeError, match="weight"):
        bad(x)


def test_save_pretrained_directory(hf, tmp_path):
    from prune.models import eval_spec, load_model

    m = hf.hf_vit_from_config(**SMALL)
    m.save_pretrained(tmp_path / "d")
    (tmp_path / "d" / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.1307], "image_std": [0.3081]}))
    r = load_model(tmp_path / "d")
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(m(x).logits, r(x).logits)
    assert eval_spec(r) == (None, ((0.1307,), (0.3081,)))  # the data set is not recorded in the directory


def test_bad_input(hf, tmp_path):
    with pytest.raises(TypeError, match="config"):
        hf.hf_vit_from_config(42)
    with pytest.raises(ValueError, match="no field"):
        hf.hf_vit_from_config(hidden_sizee=3)
    with pytest.raises(ValueError, match="config.json"):
        hf.load_hf_vit(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="bert"):
        hf.load_hf_vit(tmp_path)


def test_timm_guard(hf):
    if hf.timm_available():
        pytest.skip("timm is importable here; the guard is for environments without it")
    with pytest.raises(ImportError, match="timm"):
        hf.timm_vit()


def test_cli_prunes_hf_directory(hf, tmp_path, monkeypatch, capsys):
    from _shared_paths import SHARED, need

    from rmt.cli import main

    need(SHARED / "mnist")
    monkeypatch.setenv("RMT_DATA_DIR", str(SHARED))
    m = hf.hf_vit_from_config(**SMALL)
    m.save_pretrained(tmp_path / "d")
    argv = ["prune", str(tmp_path / "d"), "--method", "rank", "--rank", "4", "--out", str(tmp_path / "p.pt"),
            "--report", str(tmp_path / "r.json"), "--eval-samples", "200", "--no-progress"]
    assert main(argv) == 2  # neither the data set nor the normalisation is guessed
    assert "--dataset" in capsys.readouterr().err
    rc = main(argv + ["--dataset", "mnist", "--mean", "0.5", "--std", "0.5"])
    assert rc == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["reload_identical"] is True and rep["params_after"] < rep["params_before"]
    assert rep["eval_images"] == 200 and 0 <= rep["accuracy_after"] <= 1
