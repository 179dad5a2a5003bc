"""simulations.experiments and ``rmt experiment``: quick runs on real data subsets write complete results.

Each experiment at ``--quick`` size: the CSV tables, the JSON sidecar (command, seeds, scale, versions) and the
PNG exist and hold what they claim; exp 4 reads exp 2's checkpoints; the CLI runs the same code.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if "RMT_DATA_DIR" not in os.environ and SHARED.is_dir():
    os.environ["RMT_DATA_DIR"] = str(SHARED)
os.environ.setdefault("RMT_REQUIRE_DATA", "1")  # never download in tests


def _rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def _sidecar(path: Path, seeds: list[int]) -> dict:
    meta = json.loads(path.read_text())
    assert meta["seeds"] == seeds and meta["command"].startswith("python -m simulations.experiments.")
    assert {"torch", "numpy", "python"} <= set(meta["versions"]) and meta["wall_s"] > 0
    assert meta["scale"].get("name") == "quick" or "source" in meta["scale"]
    return meta


@pytest.fixture(scope="module")
def fc_quick(tmp_path_factory):
    from simulations.experiments import fc_table

    out = tmp_path_factory.mktemp("fc_table")
    fc_table.main(["--quick", "--seeds", "2", "--out", str(out), "--no-progress"])
    return out


@pytest.mark.slow
def test_fc_table_quick(fc_quick):
    from simulations.experiments.fc_table import RULES

    runs = _rows(fc_quick / "runs.csv")
    assert [(r["rule"], int(r["seed"])) for r in runs] == [(rule, s) for s in (0, 1) for rule in RULES]
    by = {(r["rule"], r["seed"]): r for r in runs}
    for s in ("0", "1"):
        dense = int(by[("none", s)]["params"])
        assert int(by[("l1l2", s)]["params"]) == dense
        mp = int(by[("mp_l1l2", s)]["weights_stored"])
        assert int(by[("mp_l1l2", s)]["params"]) < dense                     # MP stored fewer numbers
        assert int(by[("magnitude_l1l2", s)]["weights_nonzero"]) == mp      # baselines at MP's budget
        assert int(by[("rank_l1l2", s)]["weights_stored"]) <= mp
        assert all(0.1 < float(r["test_acc"]) <= 1 for r in runs)
    table = _rows(fc_quick / "table.csv")
    assert [t["rule"] for t in table] == list(RULES)
    assert float(next(t for t in table if t["rule"] == "mp_l1l2")["paper_test_pct"]) == 90.53
    _sidecar(fc_quick / "fc_table.json", [0, 1])
    assert (fc_quick / "fc_table.png").stat().st_size > 10_000
    assert len(list((fc_quick / "checkpoints").glob("*.pt"))) == 12


@pytest.mark.slow
def test_magnitude_after_mp_reads_fc_checkpoints(fc_quick, tmp_path):
    from simulations.experiments import magnitude_after_mp as exp4

    exp4.main(["--quick", "--seeds", "2", "--source", str(fc_quick), "--out", str(tmp_path), "--no-progress"])
    rows = _rows(tmp_path / "runs.csv")
    assert {r["rule"] for r in rows} == set(exp4.RULES)
    for rule in exp4.RULES:
        nz = [int(r["nonzero"]) for r in rows if r["rule"] == rule and r["seed"] == "0"]
        assert nz == sorted(nz, reverse=True) and nz[-1] < nz[0]           # thresholding removes weights
    fc = {(r["rule"], r["seed"]): r for r in _rows(fc_quick / "runs.csv")}
    first = next(r for r in rows if r["rule"] == "mp_l1l2" and r["seed"] == "0" and float(r["amount"]) == 0)
    assert float(first["test_acc"]) == float(fc[("mp_l1l2", "0")]["test_acc"])   # the checkpoint is the trained net
    _sidecar(tmp_path / "magnitude_after_mp.json", [0, 1])
    with pytest.raises(FileNotFoundError, match="fc_table"):
        exp4.main(["--quick", "--source", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"), "--no-progress"])


@pytest.mark.slow
def test_rank_truncation_quick_via_cli(tmp_path):
    from rmt.cli import main

    assert main(["experiment", "rank_truncation", "--quick", "--seeds", "1", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    curve = _rows(tmp_path / "curve.csv")
    ks = [int(r["k"]) for r in curve]
    assert 0 in ks and 100 in ks and sum(r["is_bema_rank"] == "True" for r in curve) == 1
    acc = {int(r["k"]): float(r["test_acc"]) for r in curve}
    assert acc[100] > acc[0]                                                    # more rank, more accuracy
    bema = _rows(tmp_path / "bema.csv")[0]
    assert 0 <= int(bema["bema_rank"]) <= 784 and 0 <= float(bema["mp_fit_error"]) <= 1
    _sidecar(tmp_path / "rank_truncation.json", [43554454])                    # the notebook's seed first
    assert int(bema["classes_never_predicted"]) >= 0 and bema["test_acc_by_epoch"]
    assert (tmp_path / "rank_truncation.png").is_file()


@pytest.mark.slow
def test_fashion_cnn_quick_and_resume(tmp_path):
    from simulations.experiments import fashion_cnn

    args = ["--quick", "--seeds", "1", "--out", str(tmp_path), "--no-progress"]
    res = fashion_cnn.main(args)
    assert res == 0
    runs = _rows(tmp_path / "runs.csv")
    assert [r["rule"] for r in runs] == ["l1l2", "mp_l1l2", "mp_l1l2_seedbugs"]   # the bug and the fix
    layers = _rows(tmp_path / "layers.csv")
    kinds = {r["kind"] for r in layers}
    assert any("Conv" in k for k in kinds) and any("Linear" in k for k in kinds)   # conv and FC layers pruned
    assert int(runs[1]["weights_stored"]) < int(runs[0]["weights_stored"])
    key = lambda rows: [(r["rule"], r["test_acc"], r["params"], r["train_acc"]) for r in rows]  # noqa: E731
    before = key(runs)
    fashion_cnn.main(args + ["--resume"])                                         # finished runs are reused
    assert key(_rows(tmp_path / "runs.csv")) == before
    _sidecar(tmp_path / "fashion_cnn.json", [0])


def test_cli_lists_experiments_and_rejects_bad_seeds(tmp_path):
    from rmt.cli import build_parser
    from simulations.experiments import EXPERIMENTS
    from simulations.experiments import rank_truncation

    args = build_parser().parse_args(["experiment", "fc_table", "--quick"])
    assert args.name == "fc_table" and args.quick and args.seeds is None
    assert set(EXPERIMENTS) == {"rank_truncation", "fc_table", "fashion_cnn", "magnitude_after_mp"}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["experiment", "nonsense"])
    with pytest.raises(ValueError, match="--seeds"):
        rank_truncation.main(["--quick", "--seeds", "0", "--out", str(tmp_path)])


def test_fc_table_width_and_rules_for_the_scale_study(tmp_path):
    from simulations.experiments import fc_table

    args = ["--quick", "--seeds", "1", "--out", str(tmp_path), "--no-progress", "--width", "24",
            "--rules", "mp_l1l2,none"]
    assert fc_table.main(args) == 0
    assert [r["rule"] for r in _rows(tmp_path / "runs.csv")] == ["none", "mp_l1l2"]     # RULES order
    meta = json.loads((tmp_path / "fc_table.json").read_text())
    assert meta["scale"]["sizes"] == [784, 24, 24, 10] and meta["rules"] == ["none", "mp_l1l2"]
    with pytest.raises(ValueError, match="rules"):
        fc_table.main(["--quick", "--out", str(tmp_path), "--rules", "nonsense"])
    with pytest.raises(ValueError, match="mp_l1l2"):
        fc_table.main(["--quick", "--out", str(tmp_path), "--rules", "none,rank_l1l2"])
    with pytest.raises(ValueError, match="width"):
        fc_table.main(["--quick", "--out", str(tmp_path), "--width", "0"])


def test_fc_scale_gathers_widths(fc_quick, tmp_path):
    import shutil

    from simulations.experiments import fc_scale

    root = tmp_path / "results"
    shutil.copytree(fc_quick, root / "fc_table", ignore=shutil.ignore_patterns("checkpoints"))
    meta = json.loads((root / "fc_table" / "fc_table.json").read_text())
    meta["scale"]["sizes"] = [784, 96, 96, 10]                   # pretend another width
    (root / "fc_scale" / "w96").mkdir(parents=True)
    (root / "fc_scale" / "w96" / "fc_table.json").write_text(json.dumps(meta))
    shutil.copy(root / "fc_table" / "table.csv", root / "fc_scale" / "w96" / "table.csv")
    rows = fc_scale.gather(root)
    assert sorted({r["width"] for r in rows}) == [64, 96]
    assert {r["rule"] for r in rows} == {"none", "l1l2", "mp", "mp_l1l2"}       # the paper's four rows only
    assert all(r["paper_test_pct"] == fc_scale.PAPER_TEST[r["rule"]] for r in rows)
    assert fc_scale.gather(tmp_path / "empty") == []
