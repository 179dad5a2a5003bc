"""Issue 11: hostile or careless input to the command line and the saved-model format.

Every case here failed before the fix (a traceback, exit 1, exit 0 with lost data, or a silently loaded corrupt
file). The rule: exit status 2 with one line on stderr that names the problem, never a traceback, and no input or
earlier output destroyed.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat

import pytest
import torch

from _shared_paths import shared_env  # noqa: F401 (fixture)
from prune.errors import ModelFileError
from prune.io import FORMAT, VERSION, load_pruned, read_pruned, save_pruned, state_sha256
from prune.models import build_model
from rmt.cli import main


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _cli_error(capsys, argv) -> str:
    """Run ``rmt argv``: it must exit 2 with exactly one line on stderr."""
    assert main(argv) == 2
    err = _err(capsys).strip()
    assert err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    m = build_model("mnist-cnn").eval()
    return m, save_pruned(m, tmp_path / "m.pt")


def _rewrite(path, *, recipe=None, state=None, masks=None, checksum=True, **fields):
    """Re-save an rmt-pruned file with parts replaced (and, by default, a matching SHA-256)."""
    blob = torch.load(path, weights_only=True)
    text = json.dumps(recipe) if recipe is not None else blob["recipe"]
    state = state if state is not None else blob["state_dict"]
    masks = masks if masks is not None else blob["masks"]
    out = dict(format=FORMAT, version=VERSION, recipe=text, state_dict=state, masks=masks,
               sha256=state_sha256(text, state, masks) if checksum else blob["sha256"])
    out.update(fields)
    torch.save(out, path)
    return path


# -- the saved format -------------------------------------------------------------------------------------------

def test_empty_and_truncated_files(saved, tmp_path, capsys):
    _, path = saved
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        load_pruned(empty)
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelFileError, match="trunc.pt"):
        load_pruned(trunc)
    for f in (empty, trunc):
        err = _cli_error(capsys, ["analyze", str(f), "--out", str(tmp_path / "a"), "--no-progress"])
        assert str(f) in err


def test_flipped_bytes_fail_the_checksum(saved, tmp_path):
    m, path = saved
    raw = bytearray(path.read_bytes())
    # the largest stored tensor's bytes lie in the middle of the zip: XOR 64 bytes there
    mid = len(raw) // 2
    raw[mid:mid + 64] = bytes(b ^ 0x5A for b in raw[mid:mid + 64])
    bad = tmp_path / "xor.pt"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="SHA-256|not a readable"):
        load_pruned(bad)


def test_changed_tensor_with_old_checksum_is_refused(saved):
    _, path = saved
    blob = torch.load(path, weights_only=True)
    blob["state_dict"]["classifier.2.bias"][0] += 1.0
    _rewrite(path, state=blob["state_dict"], checksum=False)
    with pytest.raises(ModelFileError, match="SHA-256 checksum mismatch"):
        read_pruned(path)


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("classifier.2.bias"), "missing"),
    (lambda s: s.__setitem__("extra.weight", torch.zeros(2)), "unexpected"),
    (lambda s: s.__setitem__("classifier.2.weight", torch.zeros(10, 127)), "wrong shape"),
    (lambda s: s.__setitem__("classifier.2.weight", s["classifier.2.weight"].half()), "float16"),
])
def test_state_dict_must_match_recipe(saved, capsys, tmp_path, change, message):
    _, path = saved
    state = torch.load(path, weights_only=True)["state_dict"]
    change(state)
    _rewrite(path, state=state)
    with pytest.raises(ModelFileError, match=message):
        read_pruned(path)
    assert message in _cli_error(capsys, ["prune", str(path), "--method", "mp", "--out", str(tmp_path / "o.pt"),
                                          "--no-eval", "--no-progress"])


def test_whole_model_half_precision_is_refused_by_prune(tmp_path, capsys):
    m = build_model("mnist-cnn").half()
    path = save_pruned(m, tmp_path / "half.pt")
    assert load_pruned(path).classifier[2].weight.dtype == torch.float16  # a valid file
    err = _cli_error(capsys, ["prune", str(path), "--method", "mp", "--out", str(tmp_path / "o.pt"), "--no-eval",
                              "--no-progress"])
    assert "float16" in err and "model.float()" in err


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["base"].__setitem__("kind", "weird"), "base kind"),
    (lambda r: r["base"].__setitem__("kind", "timm"), "not importable|timm"),
    (lambda r: r["replacements"].append(dict(name="classifier.2", type="LSTM")), "unknown layer type"),
    (lambda r: r["replacements"].append(dict(name="nope.child", type="Linear", in_features=2, out_features=2,
                                             bias=True)), "recipe"),
    (lambda r: r["replacements"].append(dict(name="classifier.2", type="Linear", in_features=3_000_000,
                                             out_features=4_000, bias=True)), "wrong shape"),
    (lambda r: r.pop("base"), "recipe"),
])
def test_bad_recipes(saved, edit, message):
    _, path = saved
    recipe = json.loads(torch.load(path, weights_only=True)["recipe"])
    edit(recipe)
    _rewrite(path, recipe=recipe)
    with pytest.raises(ModelFileError, match=message):
        read_pruned(path)


def test_masks_must_name_parameters(saved):
    _, path = saved
    recipe = json.loads(torch.load(path, weights_only=True)["recipe"])
    recipe["masks"] = ["nope.weight"]
    _rewrite(path, recipe=recipe, masks={"nope.weight": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(ModelFileError, match="names no parameter"):
        read_pruned(path)


def test_pickled_code_is_refused_without_weights_only_advice(tmp_path, capsys):
    path = tmp_path / "module.pt"
    torch.save(build_model("mnist-cnn"), path)  # a whole pickled module
    with pytest.raises(ModelFileError) as info:
        load_pruned(path)
    assert "weights_only=False" not in str(info.value)
    err = _cli_error(capsys, ["analyze", str(path), "--out", str(tmp_path / "a"), "--no-progress"])
    assert "weights_only" not in err and "code" in err


# -- writing: modes, interrupts, data loss ------------------------------------------------------------------------

def test_saved_file_follows_umask_and_keeps_existing_mode(tmp_path):
    m = build_model("mnist-cnn")
    old = os.umask(0o022)
    try:
        p = save_pruned(m, tmp_path / "new.pt")
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
        os.umask(0o077)
        assert stat.S_IMODE(save_pruned(m, tmp_path / "private.pt").stat().st_mode) == 0o600
        os.chmod(p, 0o640)
        save_pruned(m, p)
        assert stat.S_IMODE(p.stat().st_mode) == 0o640
    finally:
        os.umask(old)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_during_save_leaves_no_temporary_file(tmp_path, capsys, monkeypatch, signum, code):
    out = tmp_path / "out.pt"
    out.write_bytes(b"previous")
    real_save = torch.save

    def save_then_signal(obj, fh, *a, **k):
        real_save(obj, fh, *a, **k)
        os.kill(os.getpid(), signum)  # arrives while the temporary file exists

    monkeypatch.setattr(torch, "save", save_then_signal)
    # Python's own SIGINT handler, whatever an earlier test or library installed (a run of the full suite once
    # returned 0 here: the interrupt never reached the command)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        rc = main(["prune", "mnist-cnn", "--method", "rank", "--rank", "8", "--no-eval", "--no-progress",
                   "--out", str(out)])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert rc == code
    err = _err(capsys)
    assert "interrupted" in err and f"{out} unchanged" in err
    assert out.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.pt"]


def test_out_and_report_must_differ(shared_env, tmp_path, capsys):
    y = tmp_path / "y.pt"
    err = _cli_error(capsys, ["prune", "mnist-cnn", "--method", "mp", "--out", str(y), "--report", str(y)])
    assert "same file" in err and not y.exists()


def test_out_never_overwrites_a_checkpoint(shared_env, tmp_path, capsys, monkeypatch):
    _, models = shared_env
    mine = tmp_path / "models"
    shutil.copytree(models / "mnist-cnn", mine / "mnist-cnn")
    monkeypatch.setenv("RMT_MODELS_DIR", str(mine))
    ckpt = mine / "mnist-cnn" / "mnist-cnn.pth"
    before = ckpt.read_bytes()
    err = _cli_error(capsys, ["prune", "mnist-cnn", "--method", "mp", "--no-eval", "--out", str(ckpt)])
    assert "checkpoint folder" in err
    assert ckpt.read_bytes() == before


def test_out_is_not_the_input_file(saved, tmp_path, capsys):
    _, path = saved
    before = path.read_bytes()
    err = _cli_error(capsys, ["prune", str(path), "--method", "mp", "--no-eval", "--out", str(path)])
    assert "model file" in err and path.read_bytes() == before


# -- options ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, message", [
    (["--threads", "0"], "--threads"),
    (["--layers", ","], "--layers"),
    (["--reg-steps", "-1"], "--reg-steps"),
    (["--time-batch", "0"], "--time-batch"),
    (["--seed", "-1"], "--seed"),
    (["--amount", "nan"], "--amount"),
    (["--eval-samples", "0"], "--eval-samples"),
])
def test_bad_options_name_the_option(tmp_path, capsys, extra, message):
    err = _cli_error(capsys, ["prune", "mnist-cnn", "--method", "magnitude", "--amount", "0.5", *extra,
                              "--out", str(tmp_path / "o.pt")])
    assert message in err and not (tmp_path / "o.pt").exists()


def test_empty_out(capsys):
    assert "--out" in _cli_error(capsys, ["prune", "mnist-cnn", "--method", "mp", "--out", ""])


def test_dataset_that_does_not_fit_the_model(shared_env, tmp_path, capsys):
    err = _cli_error(capsys, ["prune", "mnist-cnn", "--method", "mp", "--dataset", "cifar10", "--eval-samples", "4",
                              "--out", str(tmp_path / "o.pt"), "--no-progress"])
    assert "does not accept cifar10 inputs" in err and not (tmp_path / "o.pt").exists()


def test_unknown_command_and_help(capsys):
    assert main(["nosuch"]) == 2
    assert len(_err(capsys).strip().splitlines()) == 1
    assert main(["prune", "--help"]) == 0


def test_time_without_eval_is_refused_before_any_work(tmp_path, capsys):
    """Found by the CLI fuzz: the refusal came after pruning and saving (progress on stderr, --out written)."""
    out = tmp_path / "x.pt"
    rc = main(["prune", "mnist-cnn", "--method", "rank", "--rank", "4", "--no-eval", "--time", "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == ["rmt prune: error: --time needs evaluation inputs (drop --no-eval)"]
    assert not out.exists()
