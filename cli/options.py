"""Command-line values checked before any work starts: finite numbers and writable outputs.

A number flag that is ``nan`` or ``inf`` (which Python's ``float()`` reads) is refused, and
so is an output file whose directory does not exist or cannot be written, before any
exploration, so that a long run never ends in a crash that loses its results.  Errors are
one line naming the option, exit code 2.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import click

from cli.errors import UserError


class FiniteFloat(click.ParamType):
    """A finite float, optionally above ``min`` (``min_open``: strictly)."""

    name = "float"

    def __init__(self, min: float | None = None, min_open: bool = False) -> None:  # noqa: A002 - as click
        self.min = min
        self.min_open = min_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.min is not None and (number < self.min or (self.min_open and number == self.min)):
            self.fail(f"{value!r} must be {'>' if self.min_open else '>='} {self.min:g}", param, ctx)
        return number


def writable_file(path: str | Path | None, option: str) -> None:
    """``path`` (None or ``-``: stdout) can be written as a file; else a :class:`UserError`."""
    if path is None or str(path) == "-":
        return
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{option} {p}: is a directory; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"{option} {p}: directory {parent} does not exist")
    if p.exists() and not os.access(p, os.W_OK):
        raise UserError(f"{option} {p}: the file is not writable")
    if not p.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{option} {p}: cannot create a file in {parent}")


def writable_dir(path: Path, option: str) -> None:
    """``path`` is, or can be created as, a writable directory; else a :class:`UserError`."""
    p = path
    if p.exists() and not p.is_dir():
        raise UserError(f"{option} {p}: exists and is not a directory")
    probe = p
    while not probe.exists():
        probe = probe.parent if probe != probe.parent else Path(".")
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{option} {p}: cannot write in {probe}")


def write_text(path: str | Path, text: str, option: str) -> None:
    """Write an output file; a failure (disk full, removed directory) is one line, exit 2."""
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"{option} {path}: cannot write: {exc.strerror or exc}") from None
