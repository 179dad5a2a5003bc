"""simulations: deformed random matrices W = S + R and the seed papers' theorems as executable checks.

Each check is a function ``check_xxx(quick=True, seed=0, device="auto") -> list[CheckRecord]``
(``theory.selfcheck.CheckRecord``); records with ``regime="outside"`` run a statement where one of
its hypotheses is violated on purpose and are reported, not required.
"""
from __future__ import annotations

from .generators import deformed, low_rank, noise, paper_signal, resolve_device


def all_checks() -> tuple:
    """Every theorem check: the spectral ones (1, 2, 3, 7) and the network ones (4, 5, 6)."""
    from .network_checks import NETWORK_CHECKS
    from .spectral_checks import SPECTRAL_CHECKS

    return tuple(SPECTRAL_CHECKS) + tuple(NETWORK_CHECKS)


def run_checks(quick: bool = True, seed: int = 0, device: str = "auto", progress: bool = True) -> list:
    """Run every theorem check and return the records (a progress bar per check)."""
    from tqdm.auto import tqdm

    records = []
    for check in tqdm(all_checks(), desc="theorem checks", disable=not progress, leave=False):
        records.extend(check(quick=quick, seed=seed, device=device))
    return records


__all__ = ["noise", "low_rank", "paper_signal", "deformed", "resolve_device", "all_checks", "run_checks"]
