r"""One execution layer for independent seeded tasks: serial, local worker processes, or a Dask cluster.

A :class:`Task` is a named call ``fn(seed=seed, **kwargs)`` of a module-level function (so that it pickles by
reference). :func:`seeded_tasks` gives the i-th task of a list the seed of child i of
``numpy.random.SeedSequence(root).spawn(n)`` (:func:`theory.selfcheck.spawn_seeds`); the task draws everything
from that seed (numpy ``default_rng(seed)``, a torch generator seeded with it: :func:`torch_generator`).
:func:`run_tasks` runs the list and returns the results in list order; every backend runs each task with the
same number of torch and BLAS threads (``threads``, default 1), so the results are identical bit for bit whatever
the backend and the number of workers (on one machine, same library builds: different CPUs may pick
different SIMD kernels).

Backends (``scheduler``):

* ``None`` or ``"serial"``: in this process, one task after the other (the default);
* ``"local"``: a ``distributed.LocalCluster`` of ``workers`` processes (one thread each) started for the run;
* ``"tcp://HOST:PORT"`` (any Dask address) or the path of a scheduler file (``dask scheduler
  --scheduler-file PATH``): an existing Dask cluster. ``dask-jobqueue`` starts such clusters on SLURM/PBS.

Local processes go through Dask's ``LocalCluster`` rather than joblib so that one code path serves a laptop and a
cluster: the scheduler, transport, retries (``Client.submit(..., retries=)``), completion order
(``as_completed``) and dashboard are Dask's in both cases; joblib has no per-task retries.

The Dask backends need the optional extra ``distributed`` (``pip install 'rmt-pruning[distributed]'``); without
it they raise :class:`MissingExtraError` (one line, naming the extra). The serial backend needs nothing.

A failed task is retried ``retries`` times by Dask (not in the serial backend: a seeded task fails the same way
again); the tasks still failing are reported by name and seed in :class:`TaskFailed`, after every other task has
finished. With ``cache`` (a folder) each finished task's result is written there at once as JSON, keyed by
the task's name, seed and arguments; a rerun with the same folder reads those and runs only the rest.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from theory.selfcheck import CheckRecord, spawn_seeds

__all__ = ["Task", "TaskFailed", "MissingExtraError", "seeded_tasks", "spawn_seeds", "torch_generator",
           "numpy_generator", "run_tasks", "resolve_scheduler", "defaults", "EXTRA"]

#: the optional dependency group that holds Dask
EXTRA = "distributed"
_DASK_ADDRESS = re.compile(r"^(tcp|tls|ucx|inproc|ws|wss)://")


class MissingExtraError(ImportError, ValueError):
    """A backend needs an optional extra that is not installed (a ValueError too: the CLI prints one line)."""


class TaskFailed(RuntimeError):
    """Some tasks still failed after their retries; ``failures`` lists (name, seed, exception)."""

    def __init__(self, failures: list[tuple[str, int | None, BaseException]]):
        self.failures = failures
        parts = [f"{name} (seed {seed}): {type(exc).__name__}: {' '.join(str(exc).split())}"
                 for name, seed, exc in failures]
        super().__init__(f"{len(failures)} task(s) failed: " + "; ".join(parts))


@dataclass(frozen=True)
class Task:
    """A named, seeded call ``fn(seed=seed, **kwargs)``; ``fn`` must be a module-level function."""

    name: str
    fn: Callable[..., Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None

    def key(self) -> str:
        """A file-name-safe key: the name, the seed and a hash of the function and arguments."""
        blob = repr((self.name, getattr(self.fn, "__module__", ""), getattr(self.fn, "__qualname__", ""),
                     sorted(self.kwargs.items()), self.seed))
        slug = re.sub(r"[^A-Za-z0-9_.=,+-]+", "_", self.name)[:80]
        return f"{slug}-{self.seed}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def seeded_tasks(root: int, specs: Sequence[tuple[str, Callable[..., Any], Mapping[str, Any]]]) -> list[Task]:
    """Tasks from (name, fn, kwargs) triples; task i gets child i of ``SeedSequence(root).spawn(len(specs))``.

    The seed of a task depends only on ``root`` and its position in the list, never on the backend."""
    seeds = spawn_seeds(root, len(specs))
    return [Task(name, fn, dict(kwargs), s) for (name, fn, kwargs), s in zip(specs, seeds)]


def numpy_generator(seed: int) -> np.random.Generator:
    """The task's numpy stream: ``default_rng(seed)``."""
    return np.random.default_rng(seed)


def torch_generator(seed: int, device="cpu"):
    """The task's torch stream: a ``torch.Generator`` on ``device`` seeded with ``seed``."""
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


# --------------------------------------------------------------------------- defaults (rmt figures)
_DEFAULTS: dict[str, Any] = {"scheduler": None, "workers": None}


@contextlib.contextmanager
def defaults(scheduler: str | None = None, workers: int | None = None) -> Iterator[None]:
    """Within the block, :func:`run_tasks` calls that name no scheduler use these (``rmt figures --scheduler``)."""
    old = dict(_DEFAULTS)
    _DEFAULTS.update(scheduler=scheduler, workers=workers)
    try:
        yield
    finally:
        _DEFAULTS.update(old)


def resolve_scheduler(scheduler: str | None, workers: int | None) -> tuple[str, Any]:
    """``(kind, target)`` with kind "serial", "local" (target: the worker count), "address" or "file".

    ``--workers K`` alone means a local cluster of K processes; ``--workers`` with an address or a scheduler
    file is refused (the cluster has its own workers)."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer))
                                or workers < 1):
        raise ValueError(f"--workers must be an integer >= 1, got {workers!r}")
    if scheduler in (None, "", "serial"):
        return ("local", int(workers)) if workers is not None and scheduler is None else ("serial", None)
    if not isinstance(scheduler, str):
        raise TypeError(f"--scheduler must be a string, got {type(scheduler).__name__}")
    if scheduler == "local":
        return "local", int(workers) if workers is not None else min(2, os.cpu_count() or 1)
    if workers is not None:
        raise ValueError(f"--workers {workers} applies to --scheduler local only; the cluster at {scheduler!r} "
                         "has its own workers")
    if _DASK_ADDRESS.match(scheduler):
        return "address", scheduler
    path = Path(scheduler).expanduser()
    if path.is_file():
        return "file", str(path)
    raise ValueError(f"--scheduler must be 'serial', 'local', a Dask address (tcp://HOST:PORT) or an existing "
                     f"scheduler file, got {scheduler!r}")


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise MissingExtraError(f"a Dask scheduler needs the optional extra '{EXTRA}': pip install "
                                f"'rmt-pruning[{EXTRA}]'", name="distributed") from exc
    return distributed


@contextlib.contextmanager
def _client(kind: str, target):
    distributed = _import_distributed()
    if kind == "local":
        import logging

        with distributed.LocalCluster(n_workers=target, threads_per_worker=1, processes=True,
                                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
                distributed.Client(cluster) as client:
            yield client
    elif kind == "address":
        with distributed.Client(target, timeout="30s") as client:
            yield client
    else:
        with distributed.Client(scheduler_file=target, timeout="30s") as client:
            yield client


# --------------------------------------------------------------------------- running one task
@contextlib.contextmanager
def _pinned_threads(n: int):
    """torch and BLAS/OpenMP pools at ``n`` threads within the block (restored afterwards)."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        limits = contextlib.nullcontext()
    else:
        limits = threadpool_limits(limits=n)
    try:
        with limits:
            yield
    finally:
        torch.set_num_threads(old)


def execute(fn: Callable[..., Any], kwargs: Mapping[str, Any], seed: int | None, threads: int = 1,
            quiet: bool = False):
    """Run one task as every backend does: ``fn(seed=seed, **kwargs)`` with ``threads`` torch/BLAS threads;
    ``quiet`` drops what the task writes to stderr (the progress bars of a worker process)."""
    with _pinned_threads(threads), (contextlib.redirect_stderr(io.StringIO()) if quiet
                                    else contextlib.nullcontext()):
        return fn(seed=seed, **kwargs)


# --------------------------------------------------------------------------- the result cache
def _encode(obj):
    if isinstance(obj, CheckRecord):
        return {"__record__": {k: _encode(v) for k, v in obj.as_dict().items()}}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError("only dicts with string keys can be cached")
        return {"__dict__": {k: _encode(v) for k, v in obj.items()}}
    if isinstance(obj, (list, tuple)):
        return [_encode(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": [_encode(v) for v in obj.tolist()], "dtype": str(obj.dtype)}
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else {"__float__": repr(v)}
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"a task result of type {type(obj).__name__} cannot be cached")


def _decode(obj):
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if isinstance(obj, dict):
        if "__record__" in obj:
            return CheckRecord(**{k: _decode(v) for k, v in obj["__record__"].items()})
        if "__dict__" in obj:
            return {k: _decode(v) for k, v in obj["__dict__"].items()}
        if "__ndarray__" in obj:
            return np.array(_decode(obj["__ndarray__"]), dtype=obj["dtype"])
        if "__float__" in obj:
            return float(obj["__float__"])
        raise ValueError(f"unknown cached object {sorted(obj)}")
    return obj


def _cache_read(cache: Path, task: Task):
    path = cache / f"{task.key()}.json"
    if not path.is_file():
        return False, None
    try:
        blob = json.loads(path.read_text())
        if blob.get("name") != task.name or blob.get("seed") != task.seed:
            raise ValueError("name or seed differ")
        return True, _decode(blob["result"])
    except (ValueError, KeyError, TypeError, OSError) as exc:
        warnings.warn(f"{path}: unreadable cached result ({exc}); task {task.name} runs again", stacklevel=3)
        return False, None


def _cache_write(cache: Path, task: Task, result) -> None:
    try:
        text = json.dumps({"name": task.name, "seed": task.seed, "kwargs": repr(dict(task.kwargs)),
                           "result": _encode(result)})
    except TypeError as exc:
        warnings.warn(f"task {task.name}: result not cached ({exc})", stacklevel=3)
        return
    path = cache / f"{task.key()}.json"
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- the map
def run_tasks(tasks: Sequence[Task], *, scheduler: str | None = None, workers: int | None = None,
              cache: str | os.PathLike | None = None, retries: int = 2, threads: int = 1, progress: bool = True,
              desc: str = "tasks", client=None) -> list:
    """Run independent tasks and return their results in the order of ``tasks``.

    Parameters
    ----------
    tasks : Task list (names unique); each runs as ``fn(seed=seed, **kwargs)``.
    scheduler : None / "serial" (this process), "local" (a LocalCluster of ``workers`` processes), a Dask
        address ("tcp://HOST:PORT") or a scheduler file. None falls back to :func:`defaults`.
    workers : processes of the local cluster (alone: implies "local").
    cache : folder for finished results (created); tasks found there are not run again.
    retries : Dask retries of a failed task (the serial backend does not retry).
    threads : torch and BLAS threads of every task in every backend (equal thread counts give equal bits).
    progress : a tqdm bar over finished tasks.
    client : an existing ``distributed.Client`` (overrides ``scheduler``).

    Raises
    ------
    TaskFailed : after all other tasks finished (and were cached), naming each failed task and its seed.
    MissingExtraError : a Dask backend without the ``distributed`` extra.
    """
    from tqdm.auto import tqdm

    tasks = list(tasks)
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"task names must be unique, got duplicates {dup}")
    if not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    if scheduler is None and workers is None and client is None:
        scheduler, workers = _DEFAULTS["scheduler"], _DEFAULTS["workers"]
    kind, target = ("client", client) if client is not None else resolve_scheduler(scheduler, workers)
    cache_dir = None
    if cache is not None:
        cache_dir = Path(cache).expanduser()
        cache_dir.mkdir(parents=True, exist_ok=True)
    results: list = [None] * len(tasks)
    todo = []
    for i, t in enumerate(tasks):
        hit, value = _cache_read(cache_dir, t) if cache_dir is not None else (False, None)
        if hit:
            results[i] = value
        else:
            todo.append(i)
    failures: list[tuple[int, BaseException]] = []
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=desc, unit="task", disable=not progress,
               leave=False)

    def done(i: int, value) -> None:
        results[i] = value
        if cache_dir is not None:
            _cache_write(cache_dir, tasks[i], value)
        bar.set_postfix_str(tasks[i].name[:40], refresh=False)
        bar.update(1)

    try:
        if kind == "serial":
            for i in todo:
                t = tasks[i]
                try:
                    value = execute(t.fn, t.kwargs, t.seed, threads)
                except Exception as exc:  # reported with its name and seed once the rest has run
                    failures.append((i, exc))
                    bar.update(1)
                    continue
                done(i, value)
        elif todo:
            with (contextlib.nullcontext(target) if kind == "client" else _client(kind, target)) as cl:
                distributed = _import_distributed()
                run = uuid.uuid4().hex[:8]
                futures = {cl.submit(execute, tasks[i].fn, dict(tasks[i].kwargs), tasks[i].seed, threads, True,
                                     key=f"{tasks[i].key()}-{run}", pure=False, retries=retries): i for i in todo}
                for fut in distributed.as_completed(futures):
                    i = futures[fut]
                    if fut.status == "error":
                        failures.append((i, fut.exception()))
                        bar.update(1)
                    else:
                        done(i, fut.result())
    finally:
        bar.close()
    if failures:
        failures.sort(key=lambda f: f[0])
        err = TaskFailed([(tasks[i].name, tasks[i].seed, exc) for i, exc in failures])
        raise err from failures[0][1]
    return results
