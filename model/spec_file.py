"""Reading a spec file: its bytes to a TOML dict, and the one error type of spec files.

:func:`read_toml` refuses, in one line naming the file, anything that is not a small
UTF-8 TOML text (a directory, a device, a huge file, an empty file, a binary or UTF-16
file) and turns a TOML syntax error into one line with its line, column and the key (or
table) on that line, e.g. a key given twice::

    specs/x.toml: invalid TOML at line 7, column 1 (key pages): a key or table defined twice
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

MAX_FILE_BYTES = 1 << 20  # a spec file is a page of TOML; refuse anything far larger


class SpecError(Exception):
    """A scenario file a user got wrong.  ``str()`` is one line: ``path: key: message``."""

    def __init__(self, path: str | Path, key: str | None, message: str) -> None:
        self.path = str(path)
        self.key = key
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.path}: {self.key}: {self.message}" if self.key else f"{self.path}: {self.message}"
        return one_line(text)


def one_line(text: str) -> str:
    """``text`` with control characters (a newline inside a quoted value or key of the
    file) written as escapes, so an error stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def read_toml(path: Path) -> dict[str, Any]:
    """A spec file's TOML as a dict, or :class:`SpecError` saying, in one line, why not:
    not a regular file, too large, empty, not UTF-8 text (binary, UTF-16), or a TOML syntax
    error (with its line and the key on it)."""
    try:
        if not path.is_file():
            why = ("is a directory, not a spec file" if path.is_dir() else
                   "is not a regular file (a device, a pipe?), not a spec file" if path.exists() else
                   "no such file")
            raise SpecError(path, None, why)
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SpecError(path, None, f"is {size} bytes; a spec file is at most {MAX_FILE_BYTES} bytes")
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(path, None, f"cannot read: {exc.strerror or exc}") from None
    return parse_toml(path, raw)


def parse_toml(path: Path, raw: bytes) -> dict[str, Any]:
    """The TOML of ``raw`` (a spec file's bytes; see :func:`read_toml`)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SpecError(path, None, "is UTF-16 text (it starts with a byte order mark); save it as UTF-8")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise SpecError(path, None, f"is a binary file (a NUL byte at offset {nul}), not TOML text")
    if not raw.strip():
        raise SpecError(path, None, "is empty; a spec needs at least one [[devices]] entry "
                                    "(see docs/spec-files.md)")
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start]
        raise SpecError(path, None, f"is not UTF-8 text (byte {exc.start} is 0x{byte:02x})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(path, None, _toml_error_message(exc, text)) from None


def _toml_error_message(exc: tomllib.TOMLDecodeError, text: str) -> str:
    """tomllib's message with the line, the column and the key (or table) on that line."""
    message = str(exc)
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", message)
    if match:
        line = int(match[1])
        lines = text.splitlines()
        key = _key_on(lines[line - 1]) if 0 < line <= len(lines) else None
        on = f" ({key})" if key else ""
        what = message[: match.start()]
        if what == "Cannot overwrite a value" or re.fullmatch(r"Cannot declare .* twice", what):
            what = "a key or table defined twice (TOML allows each once)"
        return f"invalid TOML at line {line}, column {match[2]}{on}: {what}"
    match = re.search(r"\s*\(at end of document\)\s*$", message)
    if match:
        return f"invalid TOML at end of document: {message[: match.start()]}"
    return f"invalid TOML: {message}"


def _key_on(line: str) -> str | None:
    """The key of a ``key = value`` line, or the header of a ``[table]`` line."""
    stripped = line.strip()
    if stripped.startswith("["):
        header = stripped.split("]")[0].lstrip("[").strip()
        return one_line(f"table [{header}]") if header else None
    if "=" in stripped:
        key = stripped.split("=", 1)[0].strip()
        return one_line(f"key {key}") if key else None
    return None
