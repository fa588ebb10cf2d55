"""What the ``fsm`` commands share: kernel and feature options, ``-D`` macros, errors.

A user error is one line on stderr and exit code 2 (:class:`cli.errors.UserError`); under
``--json`` the same error is also printed on stdout as ``{"version": 1, "error": MESSAGE,
"file": FILE | null, "line": LINE | null}``, so a script reading stdout always gets JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import click
from rich.console import Console

from cli.errors import UserError
from model.fsm.kernel.load import resolve_kernel
from model.fsm.kernel.names import KernelSourceError
from model.fsm.kernel.preprocess import Macro, parse_defines
from model.fsm.kernel.step import KernelStepFunction
from model.fsm.uapi import FeatureError, MigFlag, feature_label, parse_features

KERNEL_HELP = ("kernel source file with vfio_mig_get_next_state() (drivers/vfio/vfio_main.c, "
               "or vfio.c of 5.18), or 'builtin' (Linux 6.2-7.1, default) / 'builtin-fixed'")
FEATURES_HELP = ("optional migration features, comma-separated: p2p, pre-copy (stop-copy is "
                 "always implied); default: all features the kernel source knows")
DEFINE_HELP = ("define a macro for the C preprocessor (NAME alone means 1); repeatable. "
               "Without it nothing is defined, as a kernel built without the option")

F = TypeVar("F", bound=Callable[..., Any])


class SourceError(UserError):
    """A source file the reader refuses, with the place for JSON output."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.file, self.line = file, line


def source_error(e: KernelSourceError) -> SourceError:
    return SourceError(str(e), e.path, e.line)


def define_option(f: F) -> F:
    return click.option("-D", "defines", metavar="NAME[=VALUE]", multiple=True,
                        help=DEFINE_HELP)(f)


def json_errors(f: F) -> F:
    """Under ``--json`` (the ``as_json`` parameter), a user error is printed as JSON too."""

    @wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except UserError as e:
            if kwargs.get("as_json"):
                click.echo(json.dumps({"version": 1, "error": e.format_message(),
                                       "file": getattr(e, "file", None),
                                       "line": getattr(e, "line", None)}, indent=2))
            raise

    return wrapper  # type: ignore[return-value]


def macros(options: tuple[str, ...]) -> dict[str, Macro]:
    try:
        return parse_defines(list(options))
    except ValueError as e:
        raise UserError(str(e)) from None


@contextmanager
def reading() -> Iterator[None]:
    """Turn the reader's refusals into user errors."""
    try:
        yield
    except KernelSourceError as e:
        raise source_error(e) from None


def load_kernel_option(spec: str | None, defines: tuple[str, ...] = ()) -> KernelStepFunction:
    with reading():
        return resolve_kernel(spec, macros(defines))


def require_feature_sets(kernel: KernelStepFunction) -> None:
    if not kernel.flag_sets:
        raise UserError(f"{kernel.source}: its tables cover {len(kernel.states)} states, not "
                        "all states of any uAPI feature set")


def features_option(kernel: KernelStepFunction, text: str | None) -> MigFlag:
    require_feature_sets(kernel)
    if text is None:
        return max(kernel.flag_sets, key=lambda f: (bin(int(f)).count("1"), int(f)))
    try:
        flags = parse_features(text)
    except FeatureError as e:
        raise UserError(f"--features: {e}") from None
    if flags not in kernel.flag_sets:
        known = ", ".join(feature_label(f) for f in kernel.flag_sets)
        raise UserError(f"--features {text!r} means {feature_label(flags)}, which "
                        f"{kernel.source} does not know; it knows: {known}")
    return flags


def console() -> Console:
    out = Console(highlight=False)
    if not out.is_terminal:  # files and pipes: wide enough for the details
        out = Console(highlight=False, width=140)
    return out
