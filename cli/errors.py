"""Errors a user can cause, reported as one line with exit code 2 (never a traceback)."""

from __future__ import annotations

import click


def one_line(text: str) -> str:
    """``text`` with line breaks and other control or bidi characters written as escapes,
    so that what a user wrote (a file name, a value) can neither break nor forge a line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class UserError(click.ClickException):
    """A bad spec file, an unknown name or an impossible bound: one line, exit 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(f"error: {one_line(self.format_message())}", err=True)
