"""The input errors that the command line turns into one line and exit status 2.

Both are :class:`ValueError` subclasses, so code that catches ``ValueError`` keeps working. Their message names
the file and what is wrong with it; anything else raised from the library is a bug and keeps its traceback.
"""
from __future__ import annotations

from pathlib import Path


class InputFileError(ValueError):
    """A file given by the user cannot be used; ``path`` is the file, ``problem`` what is wrong."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ModelFileError(InputFileError):
    """A model file (checkpoint, state dict, pruned model, recipe, masks) is unreadable, corrupt or inconsistent."""


class DataFileError(InputFileError):
    """A data file (IDX, CIFAR batch) is unreadable, corrupt or holds values outside its format."""


def describe(path) -> str:
    """The path as shown in messages (never a temporary file's name)."""
    return str(Path(path))
