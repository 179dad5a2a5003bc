"""simulations.parallel: the same records serially, on a local cluster and on a cluster by address; seeds from
SeedSequence spawning; retries, failures by name and seed, resuming from the cache; the missing extra."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from simulations import parallel, verify_tasks
from simulations.parallel import MissingExtraError, Task, TaskFailed, run_tasks, seeded_tasks
from simulations.scaling import entrywise_task, key_lemma_task, spectral_task
from theory import selfcheck

distributed = pytest.importorskip("distributed")

#: cheap verify tasks (one core check with a seed, one without, two theorem checks)
CHEAP = ("core:tw_moments", "core:edge_pvalue_uniform", "theorem:check_esd_mp", "theorem:check_bbp")


def flaky(seed: int, marker: str) -> int:
    """Fails on its first call (leaves a marker file), succeeds afterwards: a transient failure."""
    p = Path(marker)
    if not p.exists():
        p.write_text("tried")
        raise RuntimeError("transient failure")
    return seed


def _comparable(records) -> list[dict]:
    """Records as dicts, compared field by field with nothing masked (records hold no wall times)."""
    return [r.as_dict() if hasattr(r, "as_dict") else dict(r) for r in records]


def _small_tasks(root: int = 3):
    specs = [(n, spectral_task, dict(N=40, draws=2)) for n in ("spec#0", "spec#1")]
    specs += [("entry", entrywise_task, dict(N=40, draws=3)), ("key", key_lemma_task, dict(N=40, draws=2, net_seed=1))]
    return seeded_tasks(root, specs)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=50) as c:
        yield c


def test_spawned_seeds_depend_on_root_and_position_only():
    assert selfcheck.spawn_seeds(7, 4) == selfcheck.spawn_seeds(7, 9)[:4]
    assert selfcheck.spawn_seeds(7, 4) != selfcheck.spawn_seeds(8, 4)
    ref = [int(c.generate_state(1, dtype=np.uint32)[0]) for c in np.random.SeedSequence(7).spawn(3)]
    assert selfcheck.spawn_seeds(7, 3) == ref
    # the core checks get the same seeds in rmt verify's task list and in run_core_checks
    tasks = verify_tasks(quick=True, seed=5)
    assert [t.seed for t in tasks[:len(selfcheck.CORE_CHECKS)]] == selfcheck.spawn_seeds(5, len(selfcheck.CORE_CHECKS))
    assert [t.seed for t in verify_tasks(quick=True, seed=5, core=False)] == [t.seed for t in tasks
                                                                             if t.name.startswith("theorem:")]
    with pytest.raises(ValueError, match="root seed"):
        selfcheck.spawn_seeds(-1, 2)


def test_same_results_serial_local_and_by_address(cluster):
    tasks = [t for t in verify_tasks(quick=True, seed=0, device="cpu") if t.name in CHEAP] + _small_tasks()
    serial = run_tasks(tasks, progress=False)
    by_address = run_tasks(tasks, scheduler=cluster.scheduler_address, progress=False)
    k = len(CHEAP)
    assert [_comparable(r) for r in by_address[:k]] == [_comparable(r) for r in serial[:k]]
    assert by_address[k:] == serial[k:]  # floats compared exactly (the local cluster: the CLI test below)
    # the records carry the task's spawned seed (tw_moments draws nothing: None)
    assert serial[0][0].seed is None and serial[1][0].seed == tasks[1].seed


def test_cli_records_identical_on_every_backend(cluster, tmp_path, monkeypatch, capsys):
    """rmt verify --quick (on a subset of the checks) writes the same JSON serially, on --scheduler local
    --workers 2 and on --scheduler tcp://... ."""
    import simulations
    from rmt.cli import main
    from simulations.spectral_checks import check_esd_mp

    monkeypatch.setattr(selfcheck, "CORE_CHECKS", (selfcheck.tw_moments, selfcheck.edge_pvalue_uniform))
    monkeypatch.setattr(simulations, "all_checks", lambda: (check_esd_mp,))
    runs = {"serial": [], "local": ["--scheduler", "local", "--workers", "2"],
            "address": ["--scheduler", cluster.scheduler_address]}
    out = {}
    for name, extra in runs.items():
        path = tmp_path / f"{name}.json"
        assert main(["verify", "--quick", "--no-progress", "--device", "cpu", "--json", str(path), *extra]) == 0
        out[name] = json.loads(path.read_text())
    assert out["serial"] == out["local"] == out["address"]
    assert len(out["serial"]) == 2 + 3 * 3
    assert "local worker processes" in capsys.readouterr().out


def test_scheduler_file_and_bad_scheduler(cluster, tmp_path):
    sched = tmp_path / "scheduler.json"
    sched.write_text(json.dumps({"address": cluster.scheduler_address, "type": "Scheduler"}))
    tasks = _small_tasks()[2:]
    assert run_tasks(tasks, scheduler=str(sched), progress=False) == run_tasks(tasks, progress=False)
    with pytest.raises(ValueError, match="--scheduler"):
        run_tasks(tasks, scheduler="no-such-file.json", progress=False)
    with pytest.raises(ValueError, match="--workers 2 applies to --scheduler local only"):
        run_tasks(tasks, scheduler=cluster.scheduler_address, workers=2, progress=False)
    with pytest.raises(ValueError, match="unique"):
        run_tasks(tasks + tasks, progress=False)


def test_dask_retries_a_transient_failure_then_reports_by_name_and_seed(cluster, tmp_path):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    try:
        ok = seeded_tasks(11, [("flaky-once", flaky, dict(marker=str(tmp_path / "a")))])
        assert run_tasks(ok, client=distributed.Client(cluster), retries=1, progress=False) == [ok[0].seed]
        bad = seeded_tasks(12, [("flaky-no-retry", flaky, dict(marker=str(tmp_path / "b")))])
        with pytest.raises(TaskFailed, match=rf"flaky-no-retry \(seed {bad[0].seed}\): RuntimeError: transient"):
            run_tasks(bad, scheduler=cluster.scheduler_address, retries=0, progress=False)
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_failure_keeps_the_other_results_and_a_rerun_resumes(tmp_path):
    good = _small_tasks()
    broken = Task("entry-broken", entrywise_task, dict(N=-3, draws=1), seed=99)
    with pytest.raises(TaskFailed, match=r"entry-broken \(seed 99\): ValueError") as info:
        run_tasks(good[:2] + [broken] + good[2:], cache=tmp_path, progress=False)
    assert [f[0] for f in info.value.failures] == ["entry-broken"]
    assert len(list(tmp_path.glob("*.json"))) == len(good)  # every finished task was kept
    with mock.patch.object(parallel, "execute", wraps=parallel.execute) as ex:
        resumed = run_tasks(good, cache=tmp_path, progress=False)
    assert ex.call_count == 0
    assert resumed == run_tasks(good, progress=False)  # bit for bit through the JSON cache
    # records round-trip through the cache too; a corrupted cache file is recomputed with a warning
    rec_task = [t for t in verify_tasks(quick=True, seed=0) if t.name == "core:tw_moments"]
    first = run_tasks(rec_task, cache=tmp_path, progress=False)
    assert run_tasks(rec_task, cache=tmp_path, progress=False) == first
    (tmp_path / f"{rec_task[0].key()}.json").write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable cached result"):
        assert run_tasks(rec_task, cache=tmp_path, progress=False) == first


def test_missing_extra_is_one_line_naming_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(MissingExtraError, match=r"optional extra 'distributed'.*rmt-pruning\[distributed\]"):
        run_tasks(_small_tasks()[2:], scheduler="local", workers=2, progress=False)
    assert run_tasks(_small_tasks()[2:], progress=False)  # serial needs nothing
    from rmt.cli import main

    assert main(["verify", "--quick", "--core-only", "--scheduler", "local", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'distributed'" in err and err.startswith("rmt verify: error:")


def test_workers_option_type_and_defaults(capsys):
    from rmt.cli import main

    assert main(["verify", "--workers", "0"]) == 2
    capsys.readouterr()
    # an experiment whose seeds are not independent tasks refuses the options with one line, before any training
    assert main(["experiment", "rank_truncation", "--quick", "--scheduler", "local"]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not run its seeds as independent tasks" in err
    assert len(err.splitlines()) == 1 and "rank_truncation" in err
    assert parallel.resolve_scheduler(None, None) == ("serial", None)
    assert parallel.resolve_scheduler(None, 3) == ("local", 3)
    with parallel.defaults("local", 2):
        assert parallel._DEFAULTS == {"scheduler": "local", "workers": 2}
    assert parallel._DEFAULTS == {"scheduler": None, "workers": None}


def test_experiment_seeds_identical_serially_and_on_a_cluster(cluster, tmp_path):
    """rmt experiment fc_table --quick: the runs (every rule of every seed) are the same numbers serially and with
    one task per seed on a cluster by address; only the wall times differ."""
    import csv

    from simulations.experiments import fc_table

    def runs(out, extra):
        fc_table.main(["--quick", "--seeds", "2", "--out", str(out), "--no-progress", "--rules", "none,mp", *extra])
        with open(out / "runs.csv") as f:
            return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(f)]

    serial = runs(tmp_path / "serial", [])
    assert [(r["rule"], r["seed"]) for r in serial] == [("none", "0"), ("mp", "0"), ("none", "1"), ("mp", "1")]
    assert runs(tmp_path / "cluster", ["--scheduler", cluster.scheduler_address]) == serial

