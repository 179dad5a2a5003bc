"""paper_figures: every figure in quick mode writes its CSV (with its declared columns), PNG and JSON sidecar;
the gallery and the comparison table; the reference tables; the ``rmt figures`` command."""
from __future__ import annotations

import csv
import json
import struct
from pathlib import Path

import pytest

from paper_figures import registry
from paper_figures.registry import FIGURES, FigureContext, comparison_table, figure_module, read_csv, run_figures

REFERENCE_DIR = Path(registry.__file__).parent / "reference"


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def _check_outputs(out: Path, side: dict) -> None:
    """The files of one figure: CSV with the declared columns and at least one row, a PNG of a sensible
    size, the sidecar's fields, comparisons consistent (difference = ours - paper)."""
    name = side["name"]
    assert "error" not in side, f"{name} failed: {side.get('error')}"
    mod = figure_module(name)
    with open(out / f"{name}.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames
        rows = list(reader)
    assert set(mod.COLUMNS) <= set(header), f"{name}.csv lacks {set(mod.COLUMNS) - set(header)}"
    assert rows, f"{name}.csv has no rows"
    w, h = _png_size(out / f"{name}.png")
    assert w >= 400 and h >= 250, f"{name}.png is {w}x{h}"
    stored = json.loads((out / f"{name}.json").read_text())
    for key in ("name", "title", "caption", "source", "mode", "seed", "seconds", "files", "columns", "data_source",
                "comparisons"):
        assert key in stored, f"{name}.json lacks {key}"
    for c in stored["comparisons"]:
        assert c["figure"] == name
        assert c["difference"] == pytest.approx(c["ours"] - c["paper"], abs=1e-12)
        assert c["source"].startswith(SOURCES), c["source"]


# ------------------------------------------------------------------------------------------ fast: metadata
def test_every_figure_module_declares_its_metadata():
    assert len(set(FIGURES)) == len(FIGURES)
    for name in FIGURES:
        mod = figure_module(name)
        assert mod.NAME == name
        assert mod.TITLE and mod.SOURCE and mod.COLUMNS
        assert mod.CAPTION.endswith(".") and mod.CAPTION.count(". ") == 0, f"{name}: caption is not one sentence"
        assert callable(mod.make)


def test_unknown_figure_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="no_such_figure"):
        figure_module("no_such_figure")
    with pytest.raises(ValueError, match="no_such_figure"):
        run_figures(["no_such_figure"], FigureContext(out=tmp_path))
    assert not (tmp_path / "gallery.md").exists()


#: where a reference number may come from: papers.md's transcriptions, or the successor paper (issue 14) read directly
SOURCES = ("papers.md ", "successor paper (arXiv 2606.02608)")


def test_reference_tables_carry_source_and_provenance():
    files = sorted(REFERENCE_DIR.glob("*.json"))
    assert files
    for f in files:
        ref = json.loads(f.read_text())
        assert ref["source"].startswith(SOURCES), f
        assert ref["provenance"] in ("[CODE]", "[SUCC]", "[FIG]", "[ABS]", "[KML]", "[RUN]", "[INF]"), f
    with pytest.raises(ValueError, match="no reference table"):
        registry.reference("nope")


def test_reference_transcriptions_match_papers_md():
    """Spot checks of the transcription against papers.md's numbers (1.4, 2.4a, 0.2)."""
    rank = registry.reference("rank_truncation_mnist")
    table = {r["k"]: r["test_acc"] for r in rank["rows"]}
    assert table[0] == 8.92 and table[25] == 95.45 and table[95] == 98.32
    assert rank["bema_rank_layer1"] == 56 and rank["dense_test_accuracy"] == 98.29
    fc = {r["key"]: (r["train_acc"], r["test_acc"]) for r in registry.reference("fc_pruning_fashion")["rows"]}
    assert fc["mp_l1l2"] == (99.82, 90.53) and fc["none"] == (78.03, 71.64) and len(fc) == 5
    tw = registry.reference("tw1_quantiles")["rows"]
    assert [r["t"] for r in tw] == [0.4501, -1.2686, -2.2833, -2.7826]


def test_paper_tw1_quantiles_agree_with_theory():
    """papers.md 0.2 lists t_(1-beta) to 4 decimals (TracyWidom 0.3.0); ours must agree to that rounding plus
    that package's interpolation error (measured: <= 1.8e-4)."""
    from theory import tw_quantile

    for r in registry.reference("tw1_quantiles")["rows"]:
        assert abs(tw_quantile(r["beta"]) - r["t"]) < 5e-4, r


def test_csv_round_trip_and_comparison_table(tmp_path):
    rows = [dict(a=1, b=0.5, c="x", d=(3, 4)), dict(a=2, b=float("nan"), c="y", e=7)]
    path = registry.write_csv(tmp_path / "t.csv", rows)
    back = read_csv(path)
    assert list(back[0]) == ["a", "b", "c", "d", "e"]
    assert back[0]["a"] == 1 and back[0]["b"] == 0.5 and back[0]["d"] == "3x4" and back[1]["e"] == 7
    side = {"comparisons": [registry.Comparison("f", "q", 2.0, 2.5, "papers.md 1.4 [CODE]").as_dict()]}
    text = comparison_table([side])
    assert "figure" in text and "+0.5" in text and "papers.md 1.4 [CODE]" in text
    md = comparison_table([side], markdown=True)
    assert md.splitlines()[0].startswith("| figure | quantity | paper | ours | difference")


def test_cli_list_and_unknown_name(capsys, tmp_path):
    from rmt.cli import main

    assert main(["figures", "--list"]) == 0
    out = capsys.readouterr().out
    for name in FIGURES:
        assert name in out
    assert main(["figures", "no_such_figure", "--out", str(tmp_path / "figs")]) == 2
    assert not (tmp_path / "figs").exists()


# ------------------------------------------------------------------------------------------ fast: cheap figures
@pytest.fixture(scope="module")
def loss_figure(tmp_path_factory):
    """loss_vs_theta made once (with its PDF) for the tests below."""
    out = tmp_path_factory.mktemp("loss_vs_theta")
    side = registry.run_figure("loss_vs_theta", FigureContext(out=out, device="cpu", progress=False, pdf=True))
    return out, side


def test_cheap_figure_files(loss_figure):
    out, side = loss_figure
    _check_outputs(out, side)
    assert (out / "loss_vs_theta.pdf").read_bytes()[:5] == b"%PDF-"
    assert "loss_vs_theta.pdf" in side["files"]


def test_esd_trained_layers_files(tmp_path):
    side = registry.run_figure("esd_trained_layers", FigureContext(out=tmp_path, device="cpu", progress=False))
    _check_outputs(tmp_path, side)
    rows = read_csv(tmp_path / "esd_trained_layers.csv")
    summary = {(r["state"], r["layer"]) for r in rows if r["kind"] == "summary"}
    assert {("trained", "classifier.0"), ("initialisation", "classifier.0")} <= summary


def test_loss_vs_theta_data_follow_the_theorem(loss_figure):
    """The figure's data must show what its caption says: the loss grows with theta and stays below the bound."""
    out, _ = loss_figure
    rows = read_csv(out / "loss_vs_theta.csv")
    for d in {r["draw"] for r in rows}:
        rs = sorted((r for r in rows if r["draw"] == d), key=lambda r: r["theta"])
        losses = [r["loss"] for r in rs]
        assert all(b >= a for a, b in zip(losses, losses[1:]))
        assert all(r["loss"] <= r["bound"] + 1e-9 for r in rs)


# ------------------------------------------------------------------------------------------ slow: everything
@pytest.mark.slow
def test_all_figures_quick_gallery_and_compare(tmp_path, capsys):
    """``rmt figures --quick``: every figure, the gallery (one section and image per figure), comparison.csv;
    then ``--compare`` reads the figures back instead of remaking them."""
    from rmt.cli import main

    out = tmp_path / "figs"
    assert main(["figures", "--quick", "--out", str(out), "--no-progress", "--device", "cpu"]) == 0
    gallery = (out / "gallery.md").read_text()
    for name in FIGURES:
        side = json.loads((out / f"{name}.json").read_text())
        _check_outputs(out, side)
        assert f"## {name}" in gallery and f"]({name}.png)" in gallery
        assert side["caption"] in gallery
    comps = read_csv(out / "comparison.csv")
    figures_with_paper = {c["figure"] for c in comps}
    assert {"rank_truncation_accuracy", "fc_pruning_table", "tracy_widom_largest_eigenvalue",
            "bema_edge_alpha_beta", "esd_noise_mp"} <= figures_with_paper
    created = {n: json.loads((out / f"{n}.json").read_text())["created"] for n in FIGURES}
    capsys.readouterr()
    assert main(["figures", "--quick", "--out", str(out), "--compare", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "paper" in printed and "difference" in printed and "rank_truncation_accuracy" in printed
    assert {n: json.loads((out / f"{n}.json").read_text())["created"] for n in FIGURES} == created


@pytest.mark.slow
def test_experiment_figure_runs_the_quick_experiment_without_cache(tmp_path, monkeypatch):
    """With no cached results the figure runs the experiment's quick mode into <out>/cache and says so."""
    monkeypatch.setenv("RMT_RESULTS_DIR", str(tmp_path / "empty_results"))
    out = tmp_path / "figs"
    side = registry.run_figure("rank_truncation_accuracy", FigureContext(out=out, device="cpu", progress=False))
    _check_outputs(out, side)
    assert "computed now (quick scale)" in side["data_source"]
    assert (out / "cache" / "rank_truncation" / "table.csv").is_file()
    again = registry.run_figure("rank_truncation_accuracy", FigureContext(out=out, device="cpu", progress=False))
    assert "a quick run kept in" in again["data_source"]


def test_comparison_verdicts():
    """Every comparison carries a verdict: reproduced within the stated noise, not reproduced (with the trend),
    or not comparable (with why); the verdict reaches the printed table."""
    C = registry.Comparison
    assert C("f", "q", 2.0, 2.4, "s", tolerance=0.5).verdict.startswith("reproduced")
    assert C("f", "q", 2.0, 2.4, "s", tolerance=0.3).verdict.startswith("reproduced") is False
    v = C("f", "q", 2.0, 2.6, "s", tolerance=0.5, trend="gap grows with width").verdict
    assert v.startswith("not reproduced at this scale") and "gap grows with width" in v
    assert C("f", "q", 2.0, 2.0, "s").verdict.startswith("not reproduced")      # no noise stated: no claim
    nc = C("f", "q", 2.0, 2.0, "s", tolerance=1.0, not_comparable="ImageNet vs MNIST")
    assert nc.verdict == "not comparable: ImageNet vs MNIST"
    side = {"comparisons": [C("f", "q", 2.0, 2.4, "s", tolerance=0.5).as_dict()]}
    assert side["comparisons"][0]["verdict"].startswith("reproduced")
    assert "reproduced" in comparison_table([side]) and "verdict" in comparison_table([side], markdown=True)
