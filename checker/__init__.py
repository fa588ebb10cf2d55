"""A general explicit-state model checker in the style of TLC, with a numpy hot path.

Nothing in this package knows about VFIO: models are written in its specification
language (:mod:`checker.lang`), and the command line (the top-level ``cli`` package) wires
a model to the checker.
"""

import os as _os

# The checker makes no BLAS call, but numpy's OpenBLAS starts a thread per core when numpy
# is imported, and on a 2-core machine that thread spun on the search's second core for
# the first tenth of a second or so (6% of a TwoPhase-8 run).  One BLAS thread is all the
# checker could use; a user's own setting wins.  (Effective only before numpy is imported,
# which every entry point of this package does after importing it.)
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# glibc fixes how many malloc arenas a process may have when a second thread first
# allocates, so the explorer's allocator settings (one arena for every thread, freed arrays
# kept for reuse: checker/_native.c, keep_freed_memory) are made here, before an entry
# point can start a thread.  (Through importlib: checker.limits' wrapper would import
# numpy with checker, which the commands that do not search never load.)
import importlib as _importlib  # noqa: E402

_importlib.import_module("checker._native").keep_freed_memory()
