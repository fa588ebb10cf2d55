"""A report site as a set of files (path -> bytes): written to a directory or compared
with one byte for byte (``report --check``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from checker.report.doc import Page
from checker.report.render import CSS, FOOTER, INDEX, STYLESHEET, page_file, to_html, to_markdown


@dataclass
class Site:
    title: str
    pages: list[Page] = field(default_factory=list)
    assets: dict[str, bytes] = field(default_factory=dict)  # root-relative path -> content
    nav: list[tuple[str, str]] = field(default_factory=lambda: [("Index", f"@{INDEX}")])

    def add_asset(self, path: str, content: str | bytes) -> str:
        data = content.encode() if isinstance(content, str) else content
        if path in self.assets and self.assets[path] != data:
            raise ValueError(f"two different assets would be written to {path}")
        self.assets[path] = data
        return path

    def files(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {STYLESHEET: CSS.encode()}
        for page in self.pages:
            for fmt, text in (
                ("html", to_html(page, self.nav, self.title)),
                ("md", to_markdown(page, self.nav)),
            ):
                name = page_file(page.path, fmt)
                if name in out:
                    raise ValueError(f"two pages would be written to {name}")
                out[name] = text.encode()
        for path, data in self.assets.items():
            if path in out:
                raise ValueError(f"an asset and a page would both be written to {path}")
            out[path] = data
        return dict(sorted(out.items()))


def _existing(root: Path) -> set[str]:
    if not root.is_dir():
        return set()
    found = set()
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            found.add((Path(dirpath) / f).relative_to(root).as_posix())
    return found


def _is_previous_report(root: Path) -> bool:
    index = root / page_file(INDEX, "html")
    try:
        return FOOTER in index.read_text(errors="replace")
    except OSError:
        return False


class OutsideRoot(ValueError):
    """A file of the site would be written (or removed) outside the output directory."""


def inside(root: Path, rel: str) -> Path:
    """``root / rel``, refusing any ``rel`` that leaves ``root`` (an absolute path, ``..``,
    or a symbolic link inside ``root`` that points elsewhere)."""
    base = root.resolve()
    path = (root / rel).resolve()
    if Path(rel).is_absolute() or ".." in Path(rel).parts or not path.is_relative_to(base):
        raise OutsideRoot(f"refusing to write {rel!r}: it lies outside {root}")
    return root / rel


def write_site(files: Mapping[str, bytes], root: Path) -> list[str]:
    """Write ``files`` under ``root`` and nowhere else (:func:`inside`, checked for every file
    before any is written); files of a previous report that are no longer generated are
    removed (only when ``root`` holds a report written by this tool).  Returns the removed
    paths."""
    paths = {rel: inside(root, rel) for rel in files}
    removed: list[str] = []
    if _is_previous_report(root):
        for rel in sorted(_existing(root) - set(files)):
            inside(root, rel).unlink()
            removed.append(rel)
        for dirpath, dirs, filenames in sorted(os.walk(root), reverse=True):
            if not dirs and not filenames and Path(dirpath) != root:
                Path(dirpath).rmdir()
    for rel, data in files.items():
        path = paths[rel]
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
    return removed


@dataclass
class Staleness:
    changed: list[str]
    missing: list[str]
    extra: list[str]

    @property
    def stale(self) -> bool:
        return bool(self.changed or self.missing or self.extra)

    def lines(self) -> Sequence[str]:
        return (
            [f"changed: {p}" for p in self.changed]
            + [f"missing: {p}" for p in self.missing]
            + [f"not generated any more: {p}" for p in self.extra]
        )


def compare_site(files: Mapping[str, bytes], root: Path) -> Staleness:
    """How the files under ``root`` differ from ``files``."""
    have = _existing(root)
    changed = sorted(p for p in files if p in have and (root / p).read_bytes() != files[p])
    missing = sorted(p for p in files if p not in have)
    extra = sorted(have - set(files))
    return Staleness(changed, missing, extra)
