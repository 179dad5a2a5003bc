"""Built-in architectures: checkpoint keys load strictly, reported accuracies hold on the shared data, our ViT."""
import json
import math

import pytest
import torch
from torch import nn

from prune.models import MODEL_SPECS, build_model, eval_spec, load_model
from prune.models import cifar_resnet, mnist_cnn, vit

from _shared_paths import MODELS, need, shared_env  # noqa: F401

README_PARAMS = {"mnist-cnn": 421_642, "resnet20": 269_722, "resnet32": 464_154, "resnet44": 658_586,
                 "resnet56": 853_018}


@pytest.mark.parametrize("name", sorted(README_PARAMS))
def test_checkpoint_keys_load_strictly(name, shared_env):
    path = need(MODELS / (mnist_cnn.DEFAULT_CHECKPOINT if name == "mnist-cnn" else cifar_resnet.CHECKPOINTS[name]))
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("state_dict", ckpt)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = build_model(name)
    result = model.load_state_dict(state, strict=True)  # raises on any missing / unexpected key
    assert not result.missing_keys and not result.unexpected_keys
    assert sum(p.numel() for p in model.parameters()) == README_PARAMS[name]
    loaded = load_model(name)
    assert not loaded.training
    for k, v in loaded.state_dict().items():
        if k in state:
            assert torch.equal(v, state[k]), k


def test_resnet_structure():
    m = cifar_resnet.resnet("resnet56")
    assert [len(getattr(m, f"layer{i}")) for i in (1, 2, 3)] == [9, 9, 9]
    assert isinstance(m.layer2[0].shortcut, cifar_resnet.PadShortcut) and isinstance(m.layer2[1].shortcut, nn.Identity)
    x = torch.randn(2, 16, 8, 8)
    y = m.layer2[0].shortcut(x)  # option A: subsample by 2, 8 zero channels either side
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, 8:24], x[:, :, ::2, ::2]) and not y[:, :8].any() and not y[:, 24:].any()
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="depth"):
        cifar_resnet.CifarResNet(21)
    with pytest.raises(ValueError, match="name"):
        cifar_resnet.resnet("resnet18")


def test_vit_shapes_and_patch_embeddings_agree():
    torch.manual_seed(0)
    conv = vit.ViT(dim=32, depth=2, heads=4, patch_embed="conv").eval()
    lin = vit.ViT(dim=32, depth=2, heads=4, patch_embed="linear").eval()
    state = conv.state_dict()
    state["patch_embed.weight"] = state["patch_embed.weight"].reshape(32, -1)  # same map, flattened kernel
    lin.load_state_dict(state, strict=True)
    x = torch.randn(3, 1, 28, 28)
    assert conv(x).shape == (3, 10)
    assert torch.allclose(conv(x), lin(x), atol=1e-5)
    qkv = conv.blocks[0].attn.qkv
    assert isinstance(qkv, nn.Linear) and qkv.out_features == 3 * qkv.in_features


@pytest.mark.parametrize("kwargs, match", [(dict(image_size=28, patch_size=5), "multiple"),
                                           (dict(patch_embed="mlp"), "patch_embed"),
                                           (dict(dim=30, heads=4), "divisible"), (dict(depth=0), "depth")])
def test_vit_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vit.ViT(**kwargs)


def test_registry_and_bad_names(tmp_path):
    assert {"mnist-cnn", "resnet20", "resnet32", "resnet44", "resnet56", "vit-mnist"} <= set(MODEL_SPECS)
    assert eval_spec("mnist-cnn") == ("mnist", ((0.1307,), (0.3081,)))
    assert eval_spec("resnet20") == ("cifar10", ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    with pytest.raises(ValueError, match="unknown model name"):
        build_model("resnet18")
    with pytest.raises(ValueError, match="neither a known name"):
        load_model(str(tmp_path / "missing.pt"))
    with pytest.raises(TypeError):
        load_model(3)
    with pytest.raises(ValueError, match="no trained weights"):
        load_model("vit")


def test_committed_vit_weights_load():
    meta = json.loads((vit.WEIGHTS_DIR / "vit-mnist.json").read_text())
    model = load_model("vit-mnist")
    assert model.config == meta["config"]
    assert sum(p.numel() for p in model.parameters()) == meta["parameters"]
    assert (vit.WEIGHTS_DIR / "vit-mnist.pt").stat().st_size < 4 * 2**20  # a few MB at most
    assert meta["test_accuracy"] >= 0.97


def _binomial_tol(p: float, n: int, z: float = 4.0) -> float:
    return z * math.sqrt(p * (1 - p) / n)


@pytest.mark.slow
def test_reported_accuracies(shared_env):
    """MNIST CNN 99.05% on MNIST test (README), ResNet-20 81.0% on the JPEG CIFAR test set (README), exactly
    re-measured; ResNet-56's 83.2% on a seeded 1000-image subset within 4 binomial standard errors."""
    from prune.evaluate import evaluate

    torch.set_num_threads(1)
    cnn = load_model("mnist-cnn")
    r = evaluate(cnn, *eval_spec(cnn)[:1], normalization=eval_spec(cnn)[1])
    assert r.n == 10_000 and abs(r.accuracy - 0.9905) < 5e-4
    r20 = load_model("resnet20")
    r = evaluate(r20, "cifar10", normalization=eval_spec(r20)[1])
    assert r.n == 10_000 and abs(r.accuracy - 0.810) < 2e-3  # measured 0.8103
    r56 = load_model("resnet56")
    r = evaluate(r56, "cifar10", normalization=eval_spec(r56)[1], limit=1000, seed=0)
    assert abs(r.accuracy - 0.832) < _binomial_tol(0.832, 1000)


@pytest.mark.slow
def test_vit_accuracy_matches_its_record(shared_env):
    from prune.evaluate import evaluate

    meta = json.loads((vit.WEIGHTS_DIR / "vit-mnist.json").read_text())
    model = load_model("vit-mnist")
    r = evaluate(model, "mnist", normalization=eval_spec(model)[1])
    assert abs(r.accuracy - meta["test_accuracy"]) < 2e-4
