"""Sizes, rates and durations as people write them: the one parser for spec files
(``[vm].ram = "16GiB"``) and command-line flags (``--guest-size 1TiB``, ``--bandwidth
25Gbps``), so that a value means the same wherever it is written.

* Sizes, in bytes: a number (``4096``, ``1.5``) and an optional unit.  ``KiB MiB GiB TiB
  PiB`` and the one-letter ``K M G T P`` (as QEMU's ``-m``) are binary; ``KB MB GB TB PB``
  are decimal (SI); ``B`` is bytes.  Letters in any case.  The value must come to a whole
  number of bytes.
* Rates, in bytes per second: bits per second (``25Gbps``, ``10Gbit/s``, ``100Mb/s``;
  decimal prefixes, a lower-case ``b`` is a bit) or a size per second (``1GiB/s``,
  ``500MB/s``).
* Durations, in seconds: a number with ``us``, ``ms``, ``s``, ``sec`` or ``min``.

Each parser raises :class:`UnitError` with one phrase saying what is allowed; the caller
names the file and key, or the flag.
"""

from __future__ import annotations

import re
from fractions import Fraction

_SIZE_UNITS = {"": 1, "b": 1,
               "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30,
               "gib": 1 << 30, "t": 1 << 40, "tib": 1 << 40, "p": 1 << 50, "pib": 1 << 50,
               "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15}
_BIT_PREFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_SECONDS = {"us": Fraction(1, 10**6), "ms": Fraction(1, 1000), "s": Fraction(1), "sec": Fraction(1),
            "min": Fraction(60)}
_NUMBER = r"\s*(\d+(?:\.\d*)?|\.\d+)\s*"

SIZE_HELP = ("bytes, or a number with KiB, MiB, GiB, TiB, PiB or K, M, G, T (binary) or KB, MB, GB, "
             'TB (decimal), e.g. "16GiB"')
RATE_HELP = ("bits per second (Mbps, Gbps, Gbit/s) or bytes per second (MiB/s, GiB/s, MB/s), "
             "e.g. 25Gbps or 256MiB/s")
DURATION_HELP = "a number with us, ms, s or min, e.g. 300ms"


class UnitError(ValueError):
    """A value that is no size, rate or duration; ``str()`` says what is allowed."""


def parse_size(text: str) -> int:
    """A size in bytes: ``"16GiB"``, ``"16GB"``, ``"4K"``, ``"1.5G"``, ``"4096"``."""
    m = re.fullmatch(_NUMBER + r"([A-Za-z]*)\s*", text)
    unit = _SIZE_UNITS.get(m[2].lower()) if m else None
    if m is None or unit is None:
        raise UnitError(f"cannot read {text!r} as a size; use {SIZE_HELP}")
    value = Fraction(m[1]) * unit
    if value.denominator != 1:
        raise UnitError(f"{text!r} is not a whole number of bytes")
    return int(value)


def parse_rate(text: str) -> float:
    """Bytes per second from bits (``25Gbps``) or bytes (``1GiB/s``) per second."""
    m = re.fullmatch(_NUMBER + r"([A-Za-z/]+)\s*", text)
    if m is not None:
        value, unit = Fraction(m[1]), m[2]
        bits = re.fullmatch(r"([kKmMgGtT]?)(bps|bit/s|b/s)", unit)
        if bits is not None:
            return float(value * _BIT_PREFIX[bits[1].lower()] / 8)
        per = unit[:-2].lower() if unit.endswith("/s") else None
        if per and per in _SIZE_UNITS:
            return float(value * _SIZE_UNITS[per])
    raise UnitError(f"cannot read {text!r} as a rate; use {RATE_HELP}")


def parse_duration(text: str) -> float:
    """Seconds: ``300ms``, ``1.5s``, ``2min``, ``100us`` (a unit is required)."""
    m = re.fullmatch(_NUMBER + r"([A-Za-z]+)\s*", text)
    scale = _SECONDS.get(m[2].lower()) if m else None
    if m is None or scale is None:
        raise UnitError(f"cannot read {text!r} as a duration; use {DURATION_HELP}")
    return float(Fraction(m[1]) * scale)


def format_size(size: int) -> str:
    """Bytes in the largest binary unit that divides them: ``17592186044416`` -> ``16 TiB``."""
    for unit, scale in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30),
                        ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def human_bytes(n: float) -> str:
    """Bytes, rounded to one decimal in the largest binary unit below them."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"
