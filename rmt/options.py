"""Argument types for the ``rmt`` subcommands: each refuses a bad value with a message naming the option.

argparse calls a type with the option's string and, on ``ArgumentTypeError``, prints
``rmt CMD: error: argument --NAME: MESSAGE`` and exits with status 2 (see :mod:`rmt.cli`).
"""
from __future__ import annotations

import argparse
import math


def _number(text: str, kind):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                         f"got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def seed(text: str) -> int:
    """A seed: an integer in [0, 2**32 - 1] (what numpy and torch both accept)."""
    value = _number(text, int)
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f"must lie in [0, 2**32 - 1], got {value}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1]."""
    value = _number(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in [0, 1], got {value}")
    return value


def open_fraction(text: str) -> float:
    """A number in (0, 1)."""
    value = _number(text, float)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1), got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def path(text: str) -> str:
    """A non-empty path without NUL bytes."""
    if not text or not text.strip():
        raise argparse.ArgumentTypeError("must be a non-empty path")
    if "\0" in text:
        raise argparse.ArgumentTypeError("must not contain NUL bytes")
    return text


def name_list(text: str) -> list[str]:
    """A comma-separated list of at least one non-empty name."""
    names = [s.strip() for s in text.split(",")]
    if not names or any(not n for n in names):
        raise argparse.ArgumentTypeError(f"must be comma-separated non-empty names, got {text!r}")
    return names
