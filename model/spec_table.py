"""Validation of one parsed TOML table of a spec file: typed getters that name the file
and the key of anything wrong (:class:`~model.spec_file.SpecError`, one line), and the
small helpers of their messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from checker.lang.spec import name_problem, text_problem
from model.spec_file import SpecError, one_line
from model.units import UnitError, parse_size

MAX_RAM = (1 << 64) - 1  # QEMU's -m is a 64-bit byte count

def describe(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"{type(value).__name__} {value}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def first_duplicate(items: Iterable[Any]) -> Any | None:
    seen: set[Any] = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return None


def quoted(choices: Iterable[str]) -> str:
    return ", ".join(f'"{c}"' for c in choices)


class Table:
    """One TOML table being validated; knows how to name its keys in errors."""

    def __init__(self, path: Path, where: str | None, data: Mapping[str, Any]) -> None:
        self.path = path
        self.where = where  # "vm", "devices.1", "devices.1.properties"; None = top level
        self.data = data

    def key(self, key: str) -> str:
        return f"[{self.where}].{key}" if self.where else key

    def fail(self, key: str, message: str) -> NoReturn:
        raise SpecError(self.path, self.key(key), message)

    def only(self, allowed: tuple[str, ...], what: str = "key") -> None:
        for key in self.data:
            if key not in allowed:
                self.fail(key, f"unknown {what}; allowed: {', '.join(allowed)}"
                               f"{did_you_mean(key, allowed)}")

    def _get(self, key: str, kind: type | tuple[type, ...], expected: str) -> Any:
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are Python ints: never accept one where a number is meant.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            self.fail(key, f"expected {expected}, got {describe(value)}")
        return value

    def table(self, key: str) -> Table:
        where = f"{self.where}.{key}" if self.where else key
        if key not in self.data:
            return Table(self.path, where, {})
        return Table(self.path, where, self._get(key, dict, "a table"))

    def array_of_tables(self, key: str) -> list[Table]:
        if key not in self.data:
            return []
        value = self._get(key, list, "an array of tables ([[devices]])")
        tables = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                self.fail(key, f"entry {index}: expected a table ([[{key}]]), "
                               f"got {describe(item)}")
            tables.append(Table(self.path, f"{key}.{index}", item))
        return tables

    def boolean(self, key: str, default: bool) -> bool:
        if key not in self.data:
            return default
        return bool(self._get(key, bool, "a boolean (true or false)"))

    def string(self, key: str, default: str) -> str:
        if key not in self.data:
            return default
        return str(self._get(key, str, "a string"))

    def name(self, key: str, default: str) -> str:
        """A name (of the spec, of a device): an identifier (checker.lang.spec.name_problem);
        the default comes from the file name."""
        value = self.string(key, default)
        problem = name_problem(value)
        if problem is not None:
            shown = one_line(repr(value))
            if key in self.data:
                self.fail(key, f"{shown} {problem}")
            self.fail(key, f"not given, and the file name {shown} {problem}; set {key} = \"...\"")
        return value

    def text(self, key: str, default: str) -> str:
        """Free text shown on terminals and in reports: no control or bidi characters."""
        value = self.string(key, default)
        problem = text_problem(value)
        if problem is not None:
            self.fail(key, f"{problem}; only printable text, newlines and tabs are allowed")
        return value

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        if key not in self.data:
            return default
        value = int(self._get(key, int, "an integer"))
        if not lo <= value <= hi:
            self.fail(key, f"{value} is out of range {lo}..{hi}")
        return value

    def size(self, key: str, default: int) -> int:
        if key not in self.data:
            return default
        value = self._get(key, (int, str), 'bytes or a size string such as "16GiB"')
        try:
            size = value if isinstance(value, int) else parse_size(value)
        except UnitError as exc:
            self.fail(key, str(exc))
        if size <= 0:
            self.fail(key, f"{size} must be positive")
        if size > MAX_RAM:
            self.fail(key, f"{size} bytes is more than QEMU can address (2^64 - 1 bytes)")
        return size

    def choice(self, key: str, default: str, allowed: tuple[str, ...], what: str = "value",
               suggest: bool = True, hint: str = "") -> str:
        if key not in self.data:
            return default
        value = str(self._get(key, str, f"a string, one of {quoted(allowed)}"))
        if value not in allowed:
            more = did_you_mean(value, allowed) if suggest else ""
            self.fail(key, f'unknown {what} "{value}"; allowed: {quoted(allowed)}{hint}{more}')
        return value

    def string_list(self, key: str) -> list[str]:
        value = self._get(key, list, "an array of strings")
        for item in value:
            if not isinstance(item, str):
                self.fail(key, f"expected an array of strings, got {describe(item)} in it")
        return list(value)

    def string_set(self, key: str, allowed: tuple[str, ...], what: str, hint: str = "",
                   special: Mapping[str, str] | None = None) -> frozenset[str]:
        if key not in self.data:
            return frozenset()
        items = self.string_list(key)
        for item in items:
            if special and item in special:
                self.fail(key, special[item])
            if item not in allowed:
                self.fail(key, f'unknown {what} "{item}"; allowed: {quoted(allowed)}{hint}'
                               f"{did_you_mean(item, allowed)}")
        dup = first_duplicate(items)
        if dup is not None:
            self.fail(key, f'"{dup}" is listed twice')
        return frozenset(items)

    def pages(self, key: str, default: tuple[int, ...], pages: int) -> tuple[int, ...]:
        if key not in self.data:
            return default
        value = self._get(key, list, "an array of page numbers")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int):
                self.fail(key, f"expected an array of page numbers, got {describe(item)} in it")
            if not 0 <= item < pages:
                self.fail(key, f"page {item} is out of range 0..{pages - 1} (vm.pages = {pages})")
        dup = first_duplicate(value)
        if dup is not None:
            self.fail(key, f"page {dup} is listed twice")
        return tuple(sorted(value))
