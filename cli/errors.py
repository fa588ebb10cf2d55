"""Errors a user can cause, reported as one line with exit code 2 (never a traceback)."""

from __future__ import annotations

import click


class UserError(click.ClickException):
    """A bad spec file, an unknown name or an impossible bound: one line, exit 2."""

    exit_code = 2

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(f"error: {self.format_message()}", err=True)
