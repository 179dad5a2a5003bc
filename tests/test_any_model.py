"""A user's own model through the resolver, the command line and the saved format (issue 13).

The external model is defined in a file written by the test (as a user's ``net.py``), with its weights as a state
dict (.pt) and as .safetensors; it goes through ``rmt analyze`` and ``rmt prune`` with every method family, and
the saved file is reloaded (importing net.py again) to identical outputs. Also: the refusals, the shared
defaults of analysis and truncation, and the checkpoint download (with a replaced fetch: no network here).
"""
import json
import shutil
import textwrap
import urllib.error

import pytest
import torch
from torch import nn

from _shared_paths import MODELS, need, shared_env  # noqa: F401 (fixture)
from prune.analysis import analyze
from prune.errors import ModelFileError
from prune.evaluate import evaluate
from prune.io import load_pruned, read_pruned, save_pruned
from prune.methods.svd import mp_truncate, rank_truncate
from prune.models import checkpoints
from prune.models.resolve import InputSpec, resolve_model
from rmt.cli import main

NET = textwrap.dedent("""
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self, hidden=48):
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3, padding=1)
            self.fc1 = nn.Linear(8 * 14 * 14, hidden)
            self.fc2 = nn.Linear(hidden, 10)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.conv(x)), 2)
            return self.fc2(torch.relu(self.fc1(x.flatten(1))))

    def make_net():
        return Net(hidden=40)
""")
MNIST = ["--dataset", "mnist", "--mean", "0.1307", "--std", "0.3081"]


@pytest.fixture
def user_model(tmp_path):
    """(net.py path, state-dict .pt, .safetensors) of a seeded external model with planted low-rank signal."""
    from safetensors.torch import save_file

    src = tmp_path / "net.py"
    src.write_text(NET)
    model, _ = resolve_model(f"{src}:Net")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a few strong directions over a random bulk: MP pruning has something to keep
        for lin in (model.fc1, model.fc2):
            N, M = lin.weight.shape
            u, v = torch.randn(N, 3, generator=g), torch.randn(3, M, generator=g)
            lin.weight.copy_(torch.randn(N, M, generator=g) / M**0.5 + 3 * u @ v / (N * M) ** 0.5)
    state = model.state_dict()
    torch.save(state, tmp_path / "w.pt")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "w.safetensors"))
    return src, tmp_path / "w.pt", tmp_path / "w.safetensors"


def _x(seed=0, n=6):
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def _equal(a, b, x):
    with torch.no_grad():
        return torch.equal(a(x), b(x))


# --- the resolver ---------------------------------------------------------------------------------------------

def test_resolver_loads_class_factory_and_both_weight_formats(user_model):
    src, pt, st = user_model
    a, spec = resolve_model(f"{src}:Net", weights=pt)
    b, _ = resolve_model(f"{src}:Net", weights=st)
    assert _equal(a, b, _x()) and not a.training
    assert spec == InputSpec(None, None) and spec.missing()
    assert a.rmt_base["kind"] == "module" and a.rmt_base["source"] == f"{src.resolve()}:Net"
    c, spec = resolve_model(f"{src}:Net", model_kwargs='{"hidden": 16}', dataset="mnist", normalize=False)
    assert c.fc1.out_features == 16 and spec == InputSpec("mnist", "none")
    d, spec = resolve_model(f"{src}:make_net", mean="0.5,0.5,0.5", std="0.25,0.25,0.25")
    assert d.fc1.out_features == 40 and spec.normalization == ((0.5,) * 3, (0.25,) * 3)


def test_resolver_refusals(user_model, tmp_path):
    src, pt, _ = user_model
    model, _ = resolve_model(f"{src}:Net", weights=pt)
    torch.save(model, tmp_path / "whole.pt")
    with pytest.raises(ModelFileError, match="arbitrary code.*state_dict"):
        resolve_model(tmp_path / "whole.pt")
    with pytest.raises(ModelFileError, match="arbitrary code"):
        resolve_model(f"{src}:Net", weights=tmp_path / "whole.pt")
    with pytest.raises(ModelFileError, match="state dict.*--weights"):
        resolve_model(pt)
    torch.jit.script(model).save(str(tmp_path / "ts.pt"))
    with pytest.raises(ModelFileError, match="TorchScript.*analysed"):
        resolve_model(tmp_path / "ts.pt")
    torch.save({"fc1.weight": torch.zeros(3, 3)}, tmp_path / "bad.pt")
    with pytest.raises(ModelFileError, match="does not match"):
        resolve_model(f"{src}:Net", weights=tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="timm"):
        resolve_model("timm:resnet18")
    with pytest.raises(ValueError, match="no attribute"):
        resolve_model(f"{src}:Nope")
    with pytest.raises(ValueError, match="cannot import"):
        resolve_model("no_such_package_xyz.mod:Net")
    with pytest.raises(ValueError, match="model_kwargs must be a JSON"):
        resolve_model(f"{src}:Net", model_kwargs="{hidden: 3}")
    with pytest.raises(TypeError, match="keyword arguments"):
        resolve_model(f"{src}:Net", model_kwargs={"depth": 3})
    with pytest.raises(ValueError, match="mean and std go together"):
        resolve_model(f"{src}:Net", mean="0.1")
    with pytest.raises(ValueError, match="contradicts"):
        resolve_model(f"{src}:Net", mean="0.1", std="0.3", normalize=False)
    with pytest.raises(ValueError, match="std must be > 0"):
        resolve_model(f"{src}:Net", mean="0.1", std="0")
    with pytest.raises(ValueError, match="--weights"):
        resolve_model("vit", weights=pt)


def test_torchscript_is_analysed_like_its_source(user_model, tmp_path):
    src, pt, _ = user_model
    model, _ = resolve_model(f"{src}:Net", weights=pt)
    torch.jit.script(model).save(str(tmp_path / "ts.pt"))
    ts, _ = resolve_model(tmp_path / "ts.pt", allow_torchscript=True)
    a, b = analyze(model), analyze(ts)
    assert [r.n_spikes for r in a] == [r.n_spikes for r in b] and [r.sigma2 for r in a] == [r.sigma2 for r in b]


def test_saved_external_model_rebuilds_exactly(user_model, tmp_path):
    src, pt, _ = user_model
    model, _ = resolve_model(f"{src}:Net", weights=pt, model_kwargs={"hidden": 48}, dataset="mnist",
                             mean="0.1307", std="0.3081")
    cut, cuts = mp_truncate(model)
    assert any(c.action == "factorized" for c in cuts)
    back = load_pruned(save_pruned(cut, tmp_path / "f.pt"))
    assert _equal(cut, back, _x(1))
    assert back.rmt_base["dataset"] == "mnist" and back.rmt_base["normalization"] == [[0.1307], [0.3081]]
    plain = nn.Sequential(nn.Linear(4, 4))  # no record of where it came from: refused, naming the way out
    with pytest.raises(ValueError, match="resolve_model"):
        save_pruned(plain, tmp_path / "g.pt")


def test_evaluate_never_guesses_the_normalisation(user_model, shared_env):
    src, pt, _ = user_model
    bare, _ = resolve_model(f"{src}:Net", weights=pt)
    with pytest.raises(ValueError, match="dataset"):
        evaluate(bare)
    with pytest.raises(ValueError, match="normalization"):
        evaluate(bare, "mnist", limit=50)
    model, _ = resolve_model(f"{src}:Net", weights=pt, dataset="mnist", mean="0.1307", std="0.3081")
    r = evaluate(model, limit=200, return_logits=True)
    explicit = evaluate(bare, "mnist", normalization=((0.1307,), (0.3081,)), limit=200, return_logits=True)
    raw = evaluate(bare, "mnist", normalization="none", limit=200, return_logits=True)
    assert torch.equal(r.logits, explicit.logits) and not torch.equal(r.logits, raw.logits)


# --- the command line -----------------------------------------------------------------------------------------

METHODS = [("mp", []), ("rank", ["--rank", "12"]), ("magnitude", ["--amount", "0.5"]), ("sv-sparsify", []),
           ("spectral", ["--amount", "0.5"]), ("rmt-cycle", ["--amount", "0.2", "--max-cycles", "2"])]


@pytest.mark.parametrize("method,opts", METHODS, ids=[m for m, _ in METHODS])
def test_cli_prune_external_model_every_method(user_model, tmp_path, shared_env, capsys, method, opts):
    src, pt, st = user_model
    weights = st if method in ("mp", "magnitude") else pt
    out, rep = tmp_path / "f.pt", tmp_path / "r.json"
    rc = main(["prune", f"{src}:Net", "--weights", str(weights), *MNIST, "--method", method, *opts, "--out", str(out),
               "--report", str(rep), "--eval-samples", "200", "--no-progress", "--seed", "1"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "mean 0.1307, std 0.3081" in text and "accuracy" in text
    report = json.loads(rep.read_text())
    assert report["reload_identical"] is True and report["normalization"] == [[0.1307], [0.3081]]
    model, _ = resolve_model(f"{src}:Net", weights=weights, dataset="mnist", mean="0.1307", std="0.3081")
    assert report["accuracy_before"] == evaluate(model, limit=200, seed=1).accuracy
    loaded = read_pruned(out)
    assert loaded.recipe["base"]["kind"] == "module"
    assert bool(loaded.masks) == (method not in ("mp", "rank"))
    assert report["accuracy_after"] == evaluate(loaded.model, limit=200, seed=1).accuracy  # recorded inputs
    if method in ("mp", "magnitude"):  # deterministic: the file is the Python API's result, bit for bit
        from prune.methods.magnitude import magnitude_prune

        ref = mp_truncate(model)[0] if method == "mp" else magnitude_prune(model, amount=0.5)[0]
        assert _equal(ref, loaded.model, _x(2))


def test_cli_analyze_and_reprune_a_saved_external_model(user_model, tmp_path, shared_env, capsys):
    src, pt, _ = user_model
    assert main(["analyze", f"{src}:Net", "--weights", str(pt), "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    table = json.loads((tmp_path / "a" / "layers.json").read_text())
    model, _ = resolve_model(f"{src}:Net", weights=pt)
    assert [r["n_spikes"] for r in table] == [r.n_spikes for r in analyze(model)]
    out = tmp_path / "f.pt"
    assert main(["prune", f"{src}:Net", "--weights", str(pt), *MNIST, "--method", "mp", "--out", str(out),
                 "--eval-samples", "100", "--no-progress"]) == 0
    capsys.readouterr()
    # the saved file records its inputs: no --dataset/--mean/--std needed any more
    assert main(["prune", str(out), "--method", "magnitude", "--amount", "0.3", "--out", str(tmp_path / "g.pt"),
                 "--eval-samples", "100", "--no-progress"]) == 0
    assert "mean 0.1307, std 0.3081" in capsys.readouterr().out
    assert main(["analyze", str(out), "--out", str(tmp_path / "b"), "--no-progress"]) == 0


def test_cli_refusals_are_one_line(user_model, tmp_path, capsys):
    src, pt, _ = user_model
    model, _ = resolve_model(f"{src}:Net", weights=pt)
    torch.save(model, tmp_path / "whole.pt")
    torch.jit.script(model).save(str(tmp_path / "ts.pt"))
    cases = [
        (["prune", f"{src}:Net", "--weights", str(pt), "--method", "mp"], "--dataset"),
        (["prune", f"{src}:Net", "--weights", str(pt), "--dataset", "mnist", "--method", "mp"], "--no-normalize"),
        (["analyze", str(tmp_path / "whole.pt")], "arbitrary code"),
        (["analyze", str(pt)], "--weights"),
        (["prune", str(tmp_path / "ts.pt"), "--method", "mp", "--no-eval"], "TorchScript"),
        (["analyze", "timm:resnet18"], "timm"),
    ]
    for argv, needle in cases:
        argv = argv + ["--out", str(tmp_path / ("o.pt" if argv[0] == "prune" else "o"))]
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, err
    assert main(["analyze", str(tmp_path / "ts.pt"), "--out", str(tmp_path / "ts"), "--no-progress"]) == 0


# --- one set of defaults ------------------------------------------------------------------------------------------

def _spiked_model(seed=0):
    """Two layers with many planted spikes (more than alpha p: BEMA's window holds spikes after a cut)."""
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(300, 120, dtype=torch.float64), nn.ReLU(), nn.Linear(120, 10, dtype=torch.float64))
    with torch.no_grad():
        N, M = model[0].weight.shape
        u, v = torch.linalg.qr(torch.randn(N, 40, generator=g, dtype=torch.float64))[0], \
            torch.linalg.qr(torch.randn(M, 40, generator=g, dtype=torch.float64))[0]
        sv = torch.linspace(6, 3, 40, dtype=torch.float64)
        model[0].weight.copy_(torch.randn(N, M, generator=g, dtype=torch.float64) / M**0.5 + (u * sv) @ v.T)
    return model


def test_analyze_spike_count_is_what_mp_truncate_keeps():
    import inspect

    a, m = inspect.signature(analyze).parameters, inspect.signature(mp_truncate).parameters
    assert (a["alpha"].default, a["beta"].default) == (m["alpha"].default, m["beta"].default)
    model = _spiked_model()
    table = analyze(model)
    _, cuts = mp_truncate(model, bulk_keep=0.0, min_rank=1)
    for row, cut in zip(table, cuts):
        assert row.name == cut.name
        assert cut.rank_after == min(max(row.n_spikes, 1), cut.rank_before)
    assert table[0].n_spikes > 0.25 * 120  # spikes beyond alpha p: the case a refit used to re-cut


def test_second_mp_truncate_cuts_nothing():
    model = _spiked_model(1)
    once, cuts1 = mp_truncate(model, bulk_keep=0.0, min_rank=1)
    assert cuts1[0].action == "factorized"
    twice, cuts2 = mp_truncate(once, bulk_keep=0.0, min_rank=1)
    assert [c.rank_after for c in cuts2] == [c.rank_before for c in cuts2] == [c.rank_after for c in cuts1]
    assert _equal(once, twice, torch.randn(3, 300, dtype=torch.float64))


def test_min_rank_defaults_to_the_output_dimension():
    model = _spiked_model(2)
    _, cuts = rank_truncate(model, 2)
    assert [c.rank_after for c in cuts] == [10, 10]
    _, cuts = rank_truncate(model, 2, min_rank=1)
    assert [c.rank_after for c in cuts] == [2, 2]


# --- checkpoints: cache, SHA-256, download --------------------------------------------------------------------

@pytest.fixture
def no_shared(monkeypatch, tmp_path):
    for var in ("RMT_MODELS_DIR", "RMT_DATA_DIR", "RMT_REQUIRE_DATA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RMT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def test_checkpoint_downloads_into_the_cache_checked(no_shared, monkeypatch):
    src = need(MODELS / "mnist-cnn" / "mnist-cnn.pth")
    urls = []
    monkeypatch.setattr(checkpoints, "fetch_url", lambda url, dest: (urls.append(url), shutil.copy(src, dest)))
    from prune.models import load_model

    model = load_model("mnist-cnn")
    assert urls == [checkpoints.CHECKPOINTS["mnist-cnn/mnist-cnn.pth"][0]]
    assert (no_shared / "mnist-cnn" / "mnist-cnn.pth").is_file() and model.rmt_base["dataset"] == "mnist"
    load_model("mnist-cnn")
    assert len(urls) == 1  # cached
    (no_shared / "mnist-cnn" / "mnist-cnn.pth").write_bytes(b"corrupt")
    with pytest.raises(ModelFileError, match="SHA-256"):
        load_model("mnist-cnn")


def test_checkpoint_failed_or_wrong_download_names_url_and_place(no_shared, monkeypatch):
    def fail(url, dest):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(checkpoints, "fetch_url", fail)
    url = checkpoints.CHECKPOINTS["cifar10-resnet/resnet20-12fca82f.th"][0]
    with pytest.raises(ModelFileError) as err:
        checkpoints.checkpoint_path("cifar10-resnet/resnet20-12fca82f.th")
    assert url in str(err.value) and str(no_shared / "cifar10-resnet" / "resnet20-12fca82f.th") in str(err.value)
    monkeypatch.setattr(checkpoints, "fetch_url", lambda url, dest: dest.write_bytes(b"not it"))
    with pytest.raises(ModelFileError, match="nothing was kept"):
        checkpoints.checkpoint_path("cifar10-resnet/resnet20-12fca82f.th")
    assert not list((no_shared / "cifar10-resnet").iterdir())  # no partial file left


def test_models_dir_overrides_and_never_downloads(no_shared, monkeypatch, tmp_path):
    monkeypatch.setattr(checkpoints, "fetch_url", lambda url, dest: pytest.fail("downloaded"))
    monkeypatch.setenv("RMT_MODELS_DIR", str(tmp_path / "empty"))
    with pytest.raises(ModelFileError, match="RMT_MODELS_DIR"):
        checkpoints.checkpoint_path("mnist-cnn/mnist-cnn.pth")


@pytest.mark.parametrize("how", ["stack_underflow", "memo_underflow"])
def test_corrupt_state_dict_file_is_one_model_file_error(tmp_path, how):
    """Found by the file fuzz: a pickle whose opcodes underflow torch's weights-only unpickler's stack raised a
    bare IndexError through the resolver."""
    from prune.errors import ModelFileError
    from prune.models.resolve import load_state_dict_file

    bad = tmp_path / "w.pth"
    # protocol-2 header, then BUILD (pops an empty stack) / BINPUT (memoises the top of an empty stack)
    bad.write_bytes(b"\x80\x02" + (b"b" if how == "stack_underflow" else b"q\x00") + b".")
    with pytest.raises(ModelFileError, match="w.pth"):
        load_state_dict_file(bad)
