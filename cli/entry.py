"""The ``vfio-migcheck`` console script: Ctrl-C handled from its first instruction.

Importing the command line (click, rich, numpy, the model) takes a noticeable time; a
Ctrl-C during it has nothing to save, so until :func:`cli.interrupts.install` takes over
(in the wrapper, ``cli.main``) it ends the process at once with exit code 130 and one line,
instead of a ``KeyboardInterrupt`` traceback out of some import.  This module imports
only the standard library's ``os``, ``signal`` and ``sys`` before that.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType


def _interrupted_at_start_up(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write("\ninterrupted\n")
    sys.stderr.flush()
    os._exit(130)


def main() -> None:
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _interrupted_at_start_up)
    from cli.main import main as command_line

    command_line()
