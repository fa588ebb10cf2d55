"""Ctrl-C for every command: exit 130, never a traceback, never a hang.

:func:`install` (called once by the top-level wrapper, ``cli.main``, for a real process)
replaces Python's SIGINT handler:

* The first Ctrl-C is a request (:data:`checker.interrupt.INTERRUPT`).  A loop that polls it
  (the explorer, between chunks) stops by itself and its command writes what it has
  (partial statistics, partial JSON); anywhere else the handler raises
  ``KeyboardInterrupt``, which each command turns into its partial output and the wrapper
  into exit code 130.
* A thread wakes on the signal even while the main thread is inside C code that does not
  return to Python (z3's solver): it interrupts z3's context, so the solver returns
  ``unknown`` and the handler runs.  z3 would otherwise take SIGINT itself and carry on
  (its ``ctrl_c`` parameter); :func:`z3_interruptible` switches that off.
* A second Ctrl-C, or a process still running :data:`GRACE_SECONDS` after the first, ends
  the process at once with exit code 130 (the bound on "never a hang").
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from types import FrameType
from typing import Any

from checker.interrupt import INTERRUPT

GRACE_SECONDS = 10.0
EXIT_INTERRUPTED = 130


class _State:
    signals = 0
    installed = False
    settled = False  # the command has taken the first Ctrl-C in hand (see settle())
    sockets: tuple[socket.socket, socket.socket] | None = None  # kept open for the process


def _handler(signum: int, frame: FrameType | None) -> None:
    _State.signals += 1
    if _State.signals > 1:
        _hard_exit("interrupted again")
    INTERRUPT.request()
    if INTERRUPT.polled or _State.settled:
        return
    if _must_defer(frame):
        # Two places where an exception must not land:
        # * inside __del__ (z3 frees its terms there, all the time): it is printed as
        #   "Exception ignored" and lost, and the command would go on;
        # * inside z3's Python API: a constructor cut between object creation and its
        #   first attribute leaves a half-built term whose finaliser then fails
        #   ("'BoolSortRef' object has no attribute 'ctx'", seen in CI).
        # Raise it at the next Python call made outside both instead.
        sys.settrace(_raise_when_safe)
        return
    raise KeyboardInterrupt


def _must_defer(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_name == "__del__" or _in_library(frame):
            return True
        frame = frame.f_back
    return False


def _in_library(frame: FrameType) -> bool:
    name = frame.f_globals.get("__name__", "")
    return isinstance(name, str) and (name == "z3" or name.startswith("z3."))


def _raise_when_safe(frame: FrameType, event: str, arg: object) -> None:
    # not in a call of this module's either: caused_by_ctrl_c() is how a command says it
    # has the Ctrl-C in hand, and a KeyboardInterrupt raised by that call would defeat it
    if event == "call" and not _must_defer(frame) and frame.f_globals.get("__name__") != __name__:
        sys.settrace(None)
        raise KeyboardInterrupt


def _unraisable(info: Any) -> None:
    """After a Ctrl-C, what finalisers raise is its consequence, not news: a Ctrl-C that
    still ended inside one (raised by a call it made) is raised again outside, silently,
    and a finaliser failing on an object whose constructor the Ctrl-C cut short (an
    ``AttributeError``: a field never set) is dropped.  Anything else goes to Python's own
    hook."""
    if isinstance(info.exc_value, KeyboardInterrupt):
        sys.settrace(_raise_when_safe)
        return
    if _State.signals and isinstance(info.exc_value, AttributeError):
        return
    sys.__unraisablehook__(info)


def _hard_exit(why: str) -> None:
    try:
        sys.stderr.write(f"\nvfio-migcheck: {why}; exiting now (exit code {EXIT_INTERRUPTED})\n")
        sys.stderr.flush()
    finally:
        os._exit(EXIT_INTERRUPTED)


def _interrupt_z3() -> None:
    z3 = sys.modules.get("z3")
    if z3 is not None:
        try:
            z3.main_ctx().interrupt()
        except Exception:  # noqa: BLE001 - best effort: the handler still raises
            pass


def _watch(sock: socket.socket, grace: float) -> None:
    while True:
        try:
            data = sock.recv(16)
        except OSError:
            return
        if not data or signal.SIGINT not in data:
            continue
        # The request is made here, before z3 is woken (a hook of INTERRUPT's): what z3
        # raises or answers once woken is then known for the Ctrl-C's doing when the main
        # thread meets it, even where the handler has not run there yet.
        INTERRUPT.request()
        threading.Thread(target=_deadline, args=(grace,), daemon=True).start()


def _deadline(grace: float) -> None:
    time.sleep(grace)
    _hard_exit(f"did not stop {grace:g} s after Ctrl-C")


def install(grace: float = GRACE_SECONDS) -> None:
    """Take over SIGINT for this process (main thread only; idempotent)."""
    if _State.installed or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return  # started with Ctrl-C ignored (a background job): keep it so
    _State.installed = True
    INTERRUPT.on_request(_interrupt_z3)
    sys.unraisablehook = _unraisable
    reader, writer = socket.socketpair()
    _State.sockets = (reader, writer)
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    threading.Thread(target=_watch, args=(reader, grace), daemon=True, name="ctrl-c").start()
    signal.signal(signal.SIGINT, _handler)  # last: until here the start-up handler ends the process


def ignore_from_now_on() -> None:
    """Ignore SIGINT for the rest of the process (its work is done; a request already
    noted still counts).  Python does not put an ignored SIGINT back to its default
    when it shuts down, as it does with a handler."""
    if _State.installed:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def settle() -> None:
    """The command has taken the Ctrl-C in hand and goes on to write its partial output:
    no ``KeyboardInterrupt`` of that same Ctrl-C may land in the middle of it, neither one
    deferred out of z3 (see :func:`_handler`) nor one whose handler has yet to run.  A
    second Ctrl-C still ends the process at once."""
    _State.settled = True
    if sys.gettrace() is _raise_when_safe:
        sys.settrace(None)


def caused_by_ctrl_c(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C or what one broke on its way: z3's context interrupted
    raises (``Z3Exception: canceled``) or answers ``unknown`` (a ``TimeoutError`` of
    :mod:`model.decision.solver`).  When it is, the Ctrl-C is settled (:func:`settle`)."""
    # First of all, and by C calls only (they make no trace event): a KeyboardInterrupt
    # still deferred out of z3 must not land in the rest of this function.
    deferred = sys.gettrace() is _raise_when_safe
    if deferred:
        sys.settrace(None)
    if deferred or isinstance(exc, KeyboardInterrupt) or INTERRUPT.requested:
        settle()
        return True
    return False


def z3_interruptible() -> None:
    """Leave SIGINT to this module while z3 solves (call after importing z3)."""
    import z3

    z3.set_param("ctrl_c", False)
