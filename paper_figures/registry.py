r"""The list of figures, and the runner that writes each one's files, the gallery and the comparison table.

Every figure module (``paper_figures/<name>.py``) defines

* ``NAME`` (its file stem), ``TITLE``, ``CAPTION`` (one sentence: what the figure demonstrates),
  ``COLUMNS`` (the columns its CSV always has), ``SOURCE`` (the papers.md sections or theorems it shows);
* ``make(ctx: FigureContext) -> FigureResult``: compute (or read a cached experiment), draw.

:func:`run_figure` writes, into ``ctx.out``: ``NAME.csv`` (the data), ``NAME.png`` (and ``NAME.pdf``
with ``pdf=True``) and ``NAME.json`` (mode, seed, time, notes, where the data came from, and the
comparison with the paper's numbers). :func:`write_gallery` writes ``gallery.md``;
:func:`comparison_table` formats the rows "figure, quantity, paper, ours, difference".

The paper's numbers are transcribed in ``paper_figures/reference/*.json`` (:func:`reference`), each
with the papers.md section and its provenance tag.
"""
from __future__ import annotations

import contextlib
import csv
import importlib
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

__all__ = [
    "FIGURES", "FigureContext", "FigureResult", "Comparison", "reference", "figure_module", "run_figure",
    "run_figures", "write_gallery", "comparison_table", "read_sidecar", "results_root", "experiment_results", "run_main",
    "write_csv", "read_csv",
]

#: every figure, in gallery order (theory and simulation first, then the trained networks)
FIGURES: tuple[str, ...] = (
    "esd_noise_mp",
    "tracy_widom_largest_eigenvalue",
    "bema_edge_alpha_beta",
    "bbp_transition",
    "approximation_lemma_error",
    "convergence_in_n",
    "pruning_theorem_tau",
    "loss_vs_theta",
    "randomness_decay",
    "esd_trained_layers",
    "rank_truncation_accuracy",
    "fc_pruning_table",
    "magnitude_after_mp",
    "fashion_cnn_mp_pruning",
    "accuracy_vs_parameters",
    "seb_sparsity",
    "real_checks",
)

_REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


# ----------------------------------------------------------------------------------------- data types
@dataclass(frozen=True)
class FigureContext:
    """What a figure module is asked for.

    quick : small sizes (every figure together in a few minutes on 2 CPU cores) or the paper's sizes.
    out : output folder. pdf : also write a PDF. recompute : rerun long experiments instead of reading
    their cached results. seed : seed of every random draw. device : "auto" (CUDA when present), "cpu", "cuda".
    """

    out: Path
    quick: bool = True
    pdf: bool = False
    recompute: bool = False
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    def cache_dir(self, name: str) -> Path:
        """A folder under ``out`` for results a figure computed itself (a quick experiment run)."""
        d = Path(self.out) / "cache" / name
        d.mkdir(parents=True, exist_ok=True)
        return d


@dataclass
class Comparison:
    """One quantity the paper reports, next to ours: difference = ours - paper."""

    figure: str
    quantity: str
    paper: float
    ours: float
    source: str                 # e.g. "papers.md 1.4 [CODE]"
    note: str = ""
    tolerance: float = math.nan  # the stated noise: |ours - paper| <= tolerance reads "reproduced"
    trend: str = ""             # what the numbers do at the scales run, for "not reproduced at this scale"
    not_comparable: str = ""    # why the two numbers measure different things (then no tolerance applies)

    @property
    def difference(self) -> float:
        return float(self.ours) - float(self.paper)

    @property
    def verdict(self) -> str:
        """"reproduced" (within ``tolerance``), "not reproduced at this scale" (with the trend) or
        "not comparable" (with why)."""
        if self.not_comparable:
            return f"not comparable: {self.not_comparable}"
        if math.isfinite(self.tolerance) and abs(self.difference) <= self.tolerance:
            return f"reproduced (|diff| <= {self.tolerance:.3g})"
        tol = f" (|diff| > {self.tolerance:.3g})" if math.isfinite(self.tolerance) else ""
        return f"not reproduced at this scale{tol}" + (f"; trend: {self.trend}" if self.trend else "")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["difference"] = self.difference
        d["verdict"] = self.verdict
        return d


@dataclass
class FigureResult:
    """What ``make`` returns: the data rows (one dict per CSV row), the matplotlib figure, the comparisons
    with the paper, notes for the gallery, and where cached data came from."""

    rows: list[dict]
    figure: Any
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data_source: str = "computed"
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------------------- references
def reference(name: str) -> dict:
    """The paper's numbers transcribed in ``paper_figures/reference/<name>.json`` (with ``source`` and
    ``provenance`` keys naming the papers.md section and its tag)."""
    path = _REFERENCE_DIR / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in _REFERENCE_DIR.glob("*.json"))
        raise ValueError(f"no reference table {name!r}; known: {known}")
    return json.loads(path.read_text())


def ref_source(ref: dict) -> str:
    """'papers.md 1.4 [CODE]' for a reference table."""
    return f"{ref['source']} {ref['provenance']}"


# ----------------------------------------------------------------------------------------- cached results
def results_root() -> Path:
    """Where long experiments keep their results: ``$RMT_RESULTS_DIR``, else the repository's ``results/``
    (next to this package), else ``./results``."""
    env = os.environ.get("RMT_RESULTS_DIR")
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parent.parent / "results"
    return repo if repo.is_dir() else Path("results")


def repo_root() -> Path:
    """The repository root (parent of this package) when it holds ``benchmarks/``, else the working directory."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "benchmarks").is_dir() else Path(".")


def experiment_results(ctx: FigureContext, experiment: str, required: tuple[str, ...] = ("table.csv",),
                       extra_argv=()) -> tuple[Path, str, dict]:
    """The folder holding ``experiment``'s results, where they came from, and its JSON sidecar.

    Order: the cached ``results/<experiment>/`` (unless ``ctx.recompute``); then, in quick mode, a quick
    run this command made earlier under ``<out>/cache/<experiment>/``; otherwise the experiment is run
    through its public entry point ``simulations.experiments.<experiment>.main``: ``--quick --seeds 1`` into
    ``<out>/cache/`` in quick mode, ``--paper`` into ``results/<experiment>/`` (the cache) in full mode.
    ``extra_argv`` (a tuple, or a callable returning one, called only when the experiment is run) is
    appended to its arguments.
    """
    cached = results_root() / experiment
    have = lambda d: all((d / f).is_file() for f in required)  # noqa: E731
    if not ctx.recompute and have(cached):
        meta = _sidecar(cached / f"{experiment}.json")
        return cached, _describe(f"results/{experiment}/", meta), meta
    own = Path(ctx.out) / "cache" / experiment
    if ctx.quick and not ctx.recompute and have(own):
        meta = _sidecar(own / f"{experiment}.json")
        return own, _describe(f"a quick run kept in {own}", meta), meta
    mod = importlib.import_module(f"simulations.experiments.{experiment}")
    if ctx.quick:
        target, argv = own, ["--quick", "--seeds", "1", "--out", str(own)]
    else:
        target, argv = cached, ["--paper"]
    extra = extra_argv() if callable(extra_argv) else extra_argv
    argv += ["--device", ctx.device] + ([] if ctx.progress else ["--no-progress"]) + list(extra)
    run_main(mod.main, argv, f"simulations.experiments.{experiment}")
    if not have(target):
        raise RuntimeError(f"simulations.experiments.{experiment} {' '.join(argv)} did not write {required} in {target}")
    meta = _sidecar(target / f"{experiment}.json")
    return target, _describe(f"computed now ({'quick' if ctx.quick else 'paper'} scale) into {target}", meta), meta


def run_main(main, argv: list[str], what: str) -> None:
    """Call a script's ``main(argv)``; its argparse exit (SystemExit) or a non-zero return becomes a RuntimeError,
    so that one figure failing does not end the whole ``rmt figures`` run."""
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    if rc not in (0, None):
        raise RuntimeError(f"{what} {' '.join(argv)} exited with status {rc}")


def _sidecar(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _describe(where: str, meta: dict) -> str:
    scale = meta.get("scale", {})
    name = scale.get("name") or scale.get("source_scale", {}).get("name", "?")
    bits = [f"scale {name}"] if scale else []
    if meta.get("seeds") is not None:
        bits.append(f"seeds {meta['seeds']}")
    if meta.get("finished_utc"):
        bits.append(f"finished {meta['finished_utc']}")
    return where + (f" ({', '.join(bits)})" if bits else "")


def write_csv(path: Path, rows: list[dict]) -> Path:
    """Rows (dicts) as CSV; the header is the union of the keys in first-seen order."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(r.get(k, "")) for k in cols})
    return Path(path)


def _cell(v):
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    if isinstance(v, (tuple, list)):
        return "x".join(str(x) for x in v) if all(isinstance(x, int) for x in v) else json.dumps(v)
    return v


def read_csv(path: Path) -> list[dict]:
    """CSV rows as dicts, numbers converted to int / float where they parse."""
    with open(path, newline="") as fh:
        return [{k: _num(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _num(v: str):
    if v is None:
        return v
    for typ in (int, float):
        try:
            return typ(v)
        except ValueError:
            pass
    return v


# ----------------------------------------------------------------------------------------- runner
def figure_module(name: str):
    """The module of figure ``name`` (ValueError naming the known figures otherwise)."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; known: {', '.join(FIGURES)}")
    return importlib.import_module(f"{__package__}.{name}")


def _versions() -> dict:
    import numpy
    import torch

    return {"python": platform.python_version(), "numpy": numpy.__version__, "torch": torch.__version__}


def run_figure(name: str, ctx: FigureContext) -> dict:
    """Make figure ``name`` and write NAME.csv, NAME.png (NAME.pdf) and the NAME.json sidecar into ``ctx.out``.

    Returns the sidecar as a dict (keys name, title, caption, mode, seed, seconds, files, columns,
    data_source, notes, comparisons, ...).
    """
    from . import style

    mod = figure_module(name)
    out = Path(ctx.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with style.style(), _cpu_threads(1 if ctx.quick else None):
        res: FigureResult = mod.make(ctx)
        missing = [c for c in mod.COLUMNS if not res.rows or c not in res.rows[0]]
        if missing:
            raise RuntimeError(f"figure {name}: data rows lack the declared columns {missing}")
        files = [write_csv(out / f"{name}.csv", res.rows)]
        files += style.save(res.figure, out / name, pdf=ctx.pdf)
    side = {
        "name": name, "title": mod.TITLE, "caption": mod.CAPTION, "source": mod.SOURCE, "mode": ctx.mode,
        "seed": ctx.seed, "device": ctx.device, "seconds": round(time.perf_counter() - t0, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "files": [p.name for p in files],
        "columns": list(res.rows[0].keys()), "rows": len(res.rows), "data_source": res.data_source,
        "notes": res.notes, "comparisons": [c.as_dict() for c in res.comparisons], "versions": _versions(),
        **({"extra": res.extra} if res.extra else {}),
    }
    (out / f"{name}.json").write_text(json.dumps(side, indent=2, default=_json_default))
    return side


@contextlib.contextmanager
def _cpu_threads(n: int | None):
    """Run with ``n`` torch CPU threads (restored afterwards): quick sizes use small matrices, for which one
    thread is fastest on a shared 2-core machine; None keeps torch's setting."""
    import torch

    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _json_default(o):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def read_sidecar(name: str, out: Path) -> dict | None:
    """The NAME.json sidecar in ``out`` if it and the figure's PNG exist, else None."""
    side, png = Path(out) / f"{name}.json", Path(out) / f"{name}.png"
    if not (side.is_file() and png.is_file()):
        return None
    return json.loads(side.read_text())


def run_figures(names: Iterable[str] | None, ctx: FigureContext, reuse_existing: bool = False,
                log=print) -> list[dict]:
    """Run the figures ``names`` (default: all, in gallery order), write gallery.md and comparison.csv.

    With ``reuse_existing`` a figure whose sidecar in ``ctx.out`` has the requested mode is read, not
    remade (used by ``rmt figures --compare``). A figure that fails is reported in its sidecar-like
    entry (key ``error``) and the others still run.
    """
    names = list(names) if names else list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:  # before anything runs
        raise ValueError(f"unknown figure(s) {', '.join(map(repr, unknown))}; known: {', '.join(FIGURES)}")
    sides = []
    for n in names:
        old = read_sidecar(n, ctx.out) if reuse_existing and not ctx.recompute else None
        if old is not None and old.get("mode") == ctx.mode:
            log(f"[{n}] read from {Path(ctx.out) / (n + '.json')} (made {old.get('created')})")
            sides.append(old)
            continue
        t0 = time.perf_counter()
        try:
            side = run_figure(n, ctx)
        except Exception as exc:  # noqa: BLE001 -- one failing figure must not hide the others
            import traceback

            log(f"[{n}] FAILED after {time.perf_counter() - t0:.1f} s: {type(exc).__name__}: {exc}")
            traceback.print_exc()
            sides.append({"name": n, "error": f"{type(exc).__name__}: {exc}", "mode": ctx.mode})
            continue
        log(f"[{n}] {side['seconds']:.1f} s, {side['rows']} rows, data: {side['data_source']}")
        sides.append(side)
    write_gallery(sides, ctx)
    write_csv(Path(ctx.out) / "comparison.csv", [c for s in sides for c in s.get("comparisons", [])] or
              [{"figure": "", "quantity": "", "paper": "", "ours": "", "difference": "", "source": "", "note": ""}])
    return sides


# ----------------------------------------------------------------------------------------- gallery, table
def _fmt(v) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)
        return f"{v:.6g}"
    return str(v)


def comparison_rows(sides: Iterable[dict]) -> list[dict]:
    return [c for s in sides for c in s.get("comparisons", [])]


def comparison_table(sides: Iterable[dict], markdown: bool = False) -> str:
    """The comparison of the paper's numbers with ours: figure, quantity, paper, ours, difference, source."""
    head = ("figure", "quantity", "paper", "ours", "difference", "verdict", "source", "note")
    rows = [(c["figure"], c["quantity"], _fmt(c["paper"]), _fmt(c["ours"]), f"{c['difference']:+.4g}",
             c.get("verdict", ""), c["source"], c.get("note", "")) for c in comparison_rows(sides)]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(str(x).replace("|", "/") for x in r) + " |" for r in rows]
        return "\n".join(lines)
    if not rows:
        return "(no figure with numbers reported by the papers was made)"
    w = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head) - 1)]
    out = ["  ".join(str(x).ljust(wi) for x, wi in zip(head[:-1], w)) + "  " + head[-1]]
    out.append("-" * (sum(w) + 2 * len(w) + 4))
    out += ["  ".join(str(x).ljust(wi) for x, wi in zip(r[:-1], w)) + "  " + r[-1] for r in rows]
    return "\n".join(out)


def write_gallery(sides: list[dict], ctx: FigureContext) -> Path:
    """gallery.md in ``ctx.out``: every figure with its one-sentence caption, notes and files; then the
    comparison table."""
    out = Path(ctx.out)
    lines = ["# Figures and tables of the seed papers, regenerated", "",
             f"Made by `rmt figures --{ctx.mode}` (seed {ctx.seed}) on "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Each figure's data is in its CSV; its "
             "JSON sidecar records the mode, timing, the data source and the comparison with the paper. "
             "References to `papers.md` are to the project's transcription of the seed papers "
             "(`shared/spec/papers.md`).", ""]
    lines += ["| figure | what it shows | data |", "|---|---|---|"]
    for s in sides:
        title = s.get("title", s["name"])
        data = "FAILED" if "error" in s else s.get("data_source", "").split(" (")[0]
        lines.append(f"| [{s['name']}](#{s['name']}) | {title} | {data} |")
    lines.append("")
    for s in sides:
        lines += [f"## {s['name']}", ""]
        if "error" in s:
            lines += [f"**Not made:** {s['error']}", ""]
            continue
        lines += [f"**{s['title']}.** {s['caption']}", "", f"![{s['title']}]({s['name']}.png)", ""]
        files = ", ".join(f"[{f}]({f})" for f in s["files"] + [f"{s['name']}.json"])
        lines += [f"Source: {s['source']}. Data: {s['data_source']}. Files: {files}. "
                  f"Made in {s['seconds']:.1f} s ({s['mode']}).", ""]
        for note in s.get("notes", []):
            lines.append(f"- {note}")
        if s.get("notes"):
            lines.append("")
        if s.get("comparisons"):
            lines += [comparison_table([s], markdown=True), ""]
    lines += ["## The paper's numbers against ours", "", comparison_table(sides, markdown=True), ""]
    path = out / "gallery.md"
    path.write_text("\n".join(lines))
    return path
