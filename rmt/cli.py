"""The ``rmt`` command line: thin subcommands over the packages' public functions.

Each subcommand lives in its own module of :mod:`rmt.commands` and registers itself there.

One error boundary (:func:`main`): the library's input errors (``ValueError`` and ``TypeError``, which include
:class:`prune.errors.ModelFileError` and :class:`prune.errors.DataFileError`, and ``OSError`` for files that cannot
be read or written) become one line on stderr and exit status 2, as argparse's own errors do; Ctrl-C and SIGTERM
become "interrupted; ... unchanged" and exit status 130 (143 for SIGTERM), after every temporary file is removed.
Anything else is a bug and keeps its traceback. ``RMT_DEBUG=1`` shows the traceback of input errors too.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import sys
from contextlib import contextmanager

from . import commands

EXIT_INPUT, EXIT_INTERRUPT, EXIT_TERM = 2, 130, 143
OUTPUT_OPTIONS = ("out", "report", "json")


class Parser(argparse.ArgumentParser):
    """argparse with errors on one line: ``PROG: error: MESSAGE (see 'PROG --help')`` and exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``finally`` / ``except BaseException`` cleanup runs."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rmt", description="Random-matrix-theory pruning: verified core, theorem checks, figures "
                                            "and model pruning.")
    sub = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


@contextmanager
def _sigterm_raises():
    """Within the block SIGTERM raises :class:`Terminated` (main thread only; restored afterwards)."""
    def handler(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def one_line(err: BaseException) -> str:
    """The exception's message on one line (KeyError's quotes dropped; the type when there is no message)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    text = " ".join(text.split())
    return text or type(err).__name__


def _outputs(args: argparse.Namespace) -> list[str]:
    return [v for k in OUTPUT_OPTIONS if isinstance(v := getattr(args, k, None), str) and v]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help (0) or an argparse error (2, already printed on one line)
        return done.code if isinstance(done.code, int) else EXIT_INPUT
    prog = f"rmt {args.command}"
    args.written = []  # commands append each output file once it is complete
    try:
        with _sigterm_raises():
            return args.func(args)
    except KeyboardInterrupt as err:
        done = [p for p in args.written]
        kept = [p for p in _outputs(args) if p not in done]
        parts = ([f"{', '.join(kept)} unchanged"] if kept else []) + ([f"{', '.join(done)} written"] if done else [])
        print(f"{prog}: interrupted; {'; '.join(parts) or 'no file written'}", file=sys.stderr)
        return EXIT_TERM if isinstance(err, Terminated) else EXIT_INTERRUPT
    except (ValueError, TypeError, OSError) as err:
        if os.environ.get("RMT_DEBUG"):
            raise
        print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
