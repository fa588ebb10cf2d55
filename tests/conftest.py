"""Session set-up shared by every test module."""

from __future__ import annotations

import os
import shutil
import tempfile

# Compiled actions (checker/compiled.py) built by the tests go to a cache of this session,
# not the user's, and at -O0: the specs under test are too small to tell, and the compile
# takes a fifth of -O2's time.  Subprocesses (the CLI tests) inherit both.
_CACHE = tempfile.mkdtemp(prefix="vfio-migcheck-test-cache-")
os.environ["VFIO_MIGCHECK_CACHE"] = _CACHE
os.environ.setdefault("VFIO_MIGCHECK_CC_OPT", "-O0")


def pytest_unconfigure(config: object) -> None:
    shutil.rmtree(_CACHE, ignore_errors=True)
