"""simulations: deformed random matrices W = S + R and the seed papers' theorems as executable checks.

Each check is a function ``check_xxx(quick=True, seed=0, device="auto") -> list[CheckRecord]``
(``theory.selfcheck.CheckRecord``); records with ``regime="outside"`` run a statement where one of
its hypotheses is violated on purpose and are reported, not required.

``rmt verify`` runs the core self-checks and these checks as the independent tasks of
:func:`verify_tasks` through :mod:`simulations.parallel` (serial, local processes or a Dask cluster); task i
gets child i of ``numpy.random.SeedSequence(seed).spawn(...)`` as its seed, so the records do not depend on
the backend.
"""
from __future__ import annotations

from .generators import deformed, low_rank, noise, paper_signal, resolve_device


def all_checks() -> tuple:
    """Every theorem check: the spectral ones (1, 2, 3, 7) and the network ones (4, 5, 6)."""
    from .network_checks import NETWORK_CHECKS
    from .spectral_checks import SPECTRAL_CHECKS

    return tuple(SPECTRAL_CHECKS) + tuple(NETWORK_CHECKS)


def _core_record(check_name: str, quick: bool, seed):
    """One core self-check as a task returning a list of records (the module-level entry Dask pickles)."""
    from theory import selfcheck

    return [getattr(selfcheck, check_name)(quick=quick, seed=seed)]


def verify_tasks(quick: bool = True, seed: int = 0, device: str = "auto", core: bool = True,
                 theorems: bool = True) -> list:
    """The tasks of ``rmt verify``: the core self-checks (``theory.selfcheck.CORE_CHECKS``), then the theorem
    checks (:func:`all_checks`); task i of that full list gets child i of ``SeedSequence(seed).spawn``
    (also when ``core`` or ``theorems`` leaves a part out). Each task returns a list of records. The core
    checks' seeds equal those of ``theory.selfcheck.run_core_checks(seed=seed)``."""
    from theory.selfcheck import CORE_CHECKS

    from .parallel import seeded_tasks

    specs = [(f"core:{c.__name__}", _core_record, dict(check_name=c.__name__, quick=quick)) for c in CORE_CHECKS]
    specs += [(f"theorem:{c.__name__}", c, dict(quick=quick, device=device)) for c in all_checks()]
    tasks = seeded_tasks(seed, specs)
    return [t for t in tasks if (core and t.name.startswith("core:")) or (theorems and t.name.startswith("theorem:"))]


def run_checks(quick: bool = True, seed: int = 0, device: str = "auto", progress: bool = True, *,
               core: bool = False, theorems: bool = True, scheduler: str | None = None,
               workers: int | None = None, cache=None) -> list:
    """Run the theorem checks (and, with ``core``, the core self-checks first) as :func:`verify_tasks` on the
    chosen backend and return the records in task order (``simulations.parallel.run_tasks``: ``scheduler``,
    ``workers``, ``cache`` as there)."""
    from .parallel import run_tasks

    tasks = verify_tasks(quick, seed, device, core, theorems)
    out = run_tasks(tasks, scheduler=scheduler, workers=workers, cache=cache, progress=progress,
                    desc="checks")
    return [r for recs in out for r in recs]


__all__ = ["noise", "low_rank", "paper_signal", "deformed", "resolve_device", "all_checks", "verify_tasks",
           "run_checks"]
