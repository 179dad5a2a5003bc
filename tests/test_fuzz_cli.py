"""Fuzz of the command line and of the files it reads (issue 11, item 7).

``rmt`` is called in-process with argv drawn from the options' grammar (valid and invalid values of every option,
model names, corrupt files, colliding outputs) and with files made by corrupting real ones (a saved pruned model,
the MNIST CNN checkpoint, MNIST test files): the exit status must be 0 or 2, stderr must never hold a traceback,
and any exception that escapes :func:`rmt.cli.main` is a crash. A corrupt model file that still loads must give
back exactly the saved tensors (the SHA-256 guarantees it).

``benchmarks/fuzz.py`` runs these targets (``CLI_TARGETS``) with many more examples and counts the outcomes.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _shared_paths import MODELS, SHARED, need
from prune.errors import InputFileError
from prune.io import load_pruned, save_pruned
from prune.models import build_model
from rmt.cli import main

# ------------------------------------------------------------------------------------------ workspace
_WS: dict = {}


def workspace() -> Path:
    """A temporary folder (one per process) with a saved pruned model and copies of the real inputs."""
    if "dir" not in _WS:
        need(SHARED / "mnist" / "t10k-images-idx3-ubyte.gz")
        need(MODELS / "mnist-cnn" / "mnist-cnn.pth")
        d = Path(tempfile.mkdtemp(prefix="rmt-fuzz-"))
        torch.manual_seed(0)
        model = build_model("mnist-cnn").eval()
        save_pruned(model, d / "good.pt")
        shutil.copy(MODELS / "mnist-cnn" / "mnist-cnn.pth", d / "ckpt.pth")
        shutil.copy(d / "good.pt", d / "victim.pt")  # an existing file a hostile --out may replace
        (d / "out").mkdir()
        (d / "data" / "mnist").mkdir(parents=True)
        _WS["dir"] = d
    return _WS["dir"]


@contextlib.contextmanager
def _env(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_cli(argv: list[str], data_dir: Path | None = None) -> tuple[int, str]:
    """(exit status, stderr) of ``rmt argv`` in-process, with the shared data and models."""
    err, out = io.StringIO(), io.StringIO()
    with _env(RMT_DATA_DIR=data_dir or SHARED, RMT_MODELS_DIR=MODELS, RMT_REQUIRE_DATA=1), \
            contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rc = main(argv)
    return rc, err.getvalue()


# ------------------------------------------------------------------------------------------ corruption
def corrupt(raw: bytes, how: str, at: float, size: int) -> bytes:
    """``raw`` truncated, XOR-ed, zeroed, with bytes inserted or deleted at relative position ``at``."""
    if not raw:
        return b"\x00" * size
    i = min(int(at * len(raw)), len(raw) - 1)
    if how == "truncate":
        return raw[:i]
    if how == "xor":
        return raw[:i] + bytes(b ^ 0xA5 for b in raw[i:i + size]) + raw[i + size:]
    if how == "zero":
        return raw[:i] + bytes(len(raw[i:i + size])) + raw[i + size:]
    if how == "insert":
        return raw[:i] + bytes(range(size % 256)) * 1 + raw[i:]
    if how == "delete":
        return raw[:i] + raw[i + size:]
    if how == "empty":
        return b""
    raise ValueError(how)


CORRUPTIONS = st.tuples(st.sampled_from(["truncate", "xor", "zero", "insert", "delete", "empty"]),
                        st.floats(0, 1), st.integers(1, 128))


def _model_file_case(example) -> tuple[int, str]:
    """Load a corrupted model file through the API; then the CLI reads it."""
    (source, (how, at, size), command) = example
    d = workspace()
    raw = (d / source).read_bytes()
    bad = d / f"bad-{source}"
    bad.write_bytes(corrupt(raw, how, at, size))
    if source == "good.pt":
        try:
            model = load_pruned(bad)
        except InputFileError:
            pass
        else:  # loading succeeded: the checksum promises the saved tensors (of good.pt as it is now: a hostile
            # `rmt prune mnist-cnn --out good.pt` may have replaced it with another valid file)
            ref = load_pruned(d / source).state_dict()
            state = model.state_dict()
            assert state.keys() == ref.keys()
            assert all(torch.equal(state[k], ref[k]) for k in state)
    argv = (["analyze", str(bad), "--out", str(d / "out" / "a"), "--no-progress"] if command == "analyze" else
            ["prune", str(bad), "--method", "rank", "--rank", "4", "--no-eval", "--no-progress",
             "--out", str(d / "out" / "p.pt")])
    return run_cli(argv)


def _data_file_case(example) -> tuple[int, str]:
    """``rmt prune mnist-cnn`` scored on a corrupted copy of the MNIST test files."""
    (which, (how, at, size), recompress) = example
    d = workspace()
    data = d / "data"
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        raw = (SHARED / "mnist" / name).read_bytes()
        if name.startswith(which):
            if recompress:  # corrupt the IDX content itself, then gzip it again
                raw = gzip.compress(corrupt(gzip.decompress(raw), how, at, size), mtime=0)
            else:
                raw = corrupt(raw, how, at, size)
        (data / "mnist" / name).write_bytes(raw)
    return run_cli(["prune", "mnist-cnn", "--method", "rank", "--rank", "8", "--layers", "classifier.2",
                    "--eval-samples", "16", "--no-progress", "--out", str(d / "out" / "q.pt")], data_dir=data)


# ------------------------------------------------------------------------------------------ the grammar
def _v(*values):
    return st.sampled_from(values)


# each option: (valid values, invalid values); an example draws from both or from the valid ones only, so that the
# pruning paths themselves run, not only the refusals
FRACTIONS = (("0", "0.3", "0.5", "0.9", "1e-300"), ("1", "1.5", "-0.1", "nan", "inf", "x", ""))
OPEN = (("0.05", "0.2", "0.4"), ("0", "1", "1.5", "-0.1", "nan", "x"))
COUNTS = (("1", "4", "16"), ("0", "-1", "2.5", "x", "", "99999999999999999999"))
OPTIONS = {
    "--amount": FRACTIONS, "--bulk-keep": FRACTIONS, "--energy": FRACTIONS, "--theta-reduction": OPEN,
    "--alpha": OPEN, "--beta": OPEN, "--fit-cutoff": (("0.1", "1"), ("0", "-1", "nan")),
    "--rank": COUNTS, "--min-rank": COUNTS, "--reg-steps": (("0", "1"), ("-1", "x")),
    "--max-cycles": (("1", "2"), ("0", "-1")), "--seed": (("0", "7"), ("-1", "4294967296", "x")),
    "--eval-samples": (("8", "32"), ("0", "-5", "x")), "--batch-size": (("4", "500"), ("0", "-1")),
    "--threads": (("1", "2"), ("0", "-3", "x")),
    "--layers": (("classifier.0", "classifier.2", "features.0,classifier.2"),
                 (",", "", "nope", "features.1", "classifier")),
    "--factorize": (("auto", "always", "never"), ("sometimes",)), "--scope": (("global", "layer"), ("x",)),
    "--dataset": (("mnist",), ("fashion-mnist", "cifar10", "imagenet")),
    "--finetune-epochs": (("0", "1"), ("-1",)), "--finetune-samples": (("16",), ("0",)),
    "--finetune-lr": (("1e-3",), ("0", "-1", "nan")), "--finetune-optimizer": (("sgd", "adamw"), ("adam",)),
    "--time-batch": (("4",), ("0", "-2")), "--time-repeats": (("1",), ("0",)),
}
FLAGS = ("--no-eval", "--time", "--no-progress")
# the options each method needs to run at all
NEEDS = {"rank": ["--rank"], "energy": ["--energy"], "magnitude": ["--amount"], "mp-magnitude": ["--amount"],
         "spectral": ["--amount"], "rmt-cycle": ["--amount"], "seb": ["--amount"]}


@st.composite
def prune_argv(draw) -> list[str]:
    d = workspace()
    hostile = draw(st.booleans())

    def value(name):
        good, bad = OPTIONS[name]
        return draw(st.sampled_from(good + bad if hostile else good))

    model = draw(_v("mnist-cnn", "mnist-cnn", str(d / "good.pt"))) if not hostile else draw(_v(
        "mnist-cnn", "resnet99", "", str(d / "good.pt"), str(d / "ckpt.pth"), str(d), str(d / "missing.pt"), "vit"))
    method = draw(_v("mp", "rank", "energy", "magnitude", "mp-magnitude", "sv-sparsify", "spectral", "rmt-cycle", "seb",
                     *(("bogus",) if hostile else ())))
    argv = ["prune", model, "--method", method]
    names = draw(st.lists(st.sampled_from(sorted(OPTIONS)), max_size=4, unique=True))
    names += [n for n in NEEDS.get(method, []) if n not in names and (not hostile or draw(st.booleans()))]
    for name in names:
        argv += [name, value(name)]
    argv += [f for f in FLAGS if draw(st.booleans())]
    if "--eval-samples" not in argv and "--no-eval" not in argv:
        argv += ["--eval-samples", "8"]  # keeps one call well under a second
    if "--finetune-epochs" in argv and "--finetune-samples" not in argv:
        argv += ["--finetune-samples", "16"]
    if "--max-cycles" not in argv:
        argv += ["--max-cycles", "2"]
    out = str(d / "out" / "x.pt")
    if hostile:
        out = draw(_v(out, "", str(d / "out"), str(d / "nodir" / "x.pt"), str(d / "victim.pt"),
                      str(d / "good.pt"),
                      str(MODELS / "mnist-cnn" / "mnist-cnn.pth")))
    if not hostile or draw(st.integers(0, 9)) > 0:
        argv += ["--out", out]
    if draw(st.booleans()):
        argv += ["--report", draw(_v(str(d / "out" / "r.json"), *((out, "", str(d / "out")) if hostile else ())))]
    return argv


@st.composite
def other_argv(draw) -> list[str]:
    d = workspace()
    kind = draw(_v("analyze", "verify", "figures", "experiment", "top"))
    if kind == "analyze":
        argv = ["analyze", draw(_v("mnist-cnn", "", "nope", str(d / "good.pt"), str(d / "ckpt.pth"), str(d)))]
        for name, values in (("--alpha", _v(*OPEN[0], *OPEN[1])), ("--beta", _v(*OPEN[0], *OPEN[1])),
                             ("--conv-view", _v("im2col", "slices", "x")),
                             ("--sort", _v("n_spikes", "mp_fit_error", "nope", "")),
                             ("--out", _v(str(d / "out" / "an"), "", str(d / "good.pt")))):
            if draw(st.booleans()):
                argv += [name, draw(values)]
        if "--out" not in argv:  # never the default ./rmt-analysis in the caller's folder
            argv += ["--out", str(d / "out" / "an")]
        return argv + ["--no-progress"] + (["--json"] if draw(st.booleans()) else [])
    # verify / figures / experiment only with at least one bad value, so the call ends at parse or check time
    if kind == "verify":
        return ["verify", "--core-only", *draw(st.sampled_from([["--seed", "-1"], ["--seed", "x"], ["--json", ""],
                                                                 ["--device", "tpu"], ["--quick", "--full"],
                                                                 ["--json", str(d / "nodir" / "r.json")],
                                                                 ["--json", str(d / "out")]]))]
    if kind == "figures":
        return ["figures", *draw(st.sampled_from([["--list"], ["no_such_figure", "--out", str(d / "out" / "f")],
                                                   ["--seed", "-2"], ["--device", "x"], ["--out", ""]]))]
    if kind == "experiment":
        return ["experiment", draw(_v("nope", "", "rank_truncation --seeds x"))]
    return draw(st.sampled_from([[], ["--help"], ["nosuch"], ["--version"], ["prune"], ["analyze"]]))


def _cli_case(argv) -> tuple[int, str]:
    return run_cli(argv)


CLI_TARGETS = {
    "cli prune": (prune_argv(), _cli_case),
    "cli other": (other_argv(), _cli_case),
    "file model": (st.tuples(_v("good.pt", "ckpt.pth"), CORRUPTIONS, _v("analyze", "prune")), _model_file_case),
    "file data": (st.tuples(_v("t10k-images", "t10k-labels"), CORRUPTIONS, st.booleans()), _data_file_case),
}


def cli_outcome(call, example) -> str:
    """"ok" (exit 0), "clean" (exit 2, one line, no traceback) or "crash: ..." for one call."""
    try:
        rc, err = call(example)
    except Exception as exc:  # noqa: BLE001 - anything escaping main() is a crash
        return f"crash: {type(exc).__name__}: {exc}"[:300]
    except SystemExit as exc:
        return f"crash: SystemExit({exc.code}) escaped main()"
    if "Traceback" in err:
        return f"crash: traceback on stderr: {err[-200:]}"
    if rc == 0:
        return "ok"
    if rc == 2 and len(err.strip().splitlines()) == 1:
        return "clean"
    return f"crash: exit {rc}: {err.strip()[-200:]}"


FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                database=None)


@pytest.mark.parametrize("name", sorted(CLI_TARGETS))
def test_cli_fuzz_no_crash(name):
    strategy, call = CLI_TARGETS[name]

    def one(example):
        res = cli_outcome(call, example)
        assert not res.startswith("crash"), f"{name}: {example!r:.300} -> {res}"

    FUZZ(given(strategy)(one))()
