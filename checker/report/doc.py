"""A small document model that renders to both HTML and Markdown.

Report pages are built from these blocks rather than from HTML strings, so the same
content reads well in a browser and on a git forge.  Inline text is a ``str`` or a
:class:`Span` (code, emphasis, a link, a highlighted value, a status badge), or a tuple of
those.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

# Span kinds.  "ok"/"bad"/"warn"/"muted" are status badges (green/red/amber/grey).
SPAN_KINDS = ("text", "code", "strong", "em", "link", "mark", "ok", "bad", "warn", "muted")


@dataclass(frozen=True)
class Span:
    text: str
    kind: str = "text"
    href: str | None = None  # for kind "link"; relative to the page that shows it

    def __post_init__(self) -> None:
        if self.kind not in SPAN_KINDS:
            raise ValueError(f"unknown span kind {self.kind!r}")
        if (self.kind == "link") != (self.href is not None):
            raise ValueError("a link span needs href, and only a link span has one")


Inline = str | Span
Rich = Inline | tuple[Inline, ...]


def code(text: object) -> Span:
    return Span(str(text), "code")


def strong(text: object) -> Span:
    return Span(str(text), "strong")


def em(text: object) -> Span:
    return Span(str(text), "em")


def link(text: object, href: str) -> Span:
    return Span(str(text), "link", href)


def mark(text: object) -> Span:
    return Span(str(text), "mark")


def badge(text: object, kind: str) -> Span:
    return Span(str(text), kind)


def inlines(value: Rich) -> tuple[Inline, ...]:
    if isinstance(value, tuple):
        return value
    return (value,)


def plain(value: Rich) -> str:
    """The text of inline content without markup (for alt texts and tests)."""
    return "".join(s if isinstance(s, str) else s.text for s in inlines(value))


@dataclass(frozen=True)
class Para:
    content: Rich
    kind: str = "p"  # "p" | "note" (muted) | "warn" (a boxed caveat)


@dataclass(frozen=True)
class Bullets:
    items: Sequence[Rich]


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[Rich]]
    caption: str | None = None
    numeric: frozenset[int] = frozenset()  # right-aligned column indices
    row_kinds: Sequence[str] | None = None  # per-row CSS class: "", "loop", "bad", ...
    nowrap: frozenset[int] = frozenset()  # columns whose cells do not wrap (HTML)
    marked: frozenset[int] = frozenset()  # columns to draw the eye to (shaded; bold header in Markdown)


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Image:
    src: str  # relative to the page
    alt: str
    caption: Rich | None = None


@dataclass(frozen=True)
class Details:
    summary: str
    blocks: Sequence[Block]


@dataclass(frozen=True)
class Section:
    title: str
    blocks: Sequence[Block]
    anchor: str | None = None

    @property
    def id(self) -> str:
        return self.anchor or slug(self.title)


Block = Para | Bullets | Table | Code | Image | Details | Section


@dataclass
class Page:
    """One page of the site: written as ``<path>.html`` and ``<path>.md``."""

    path: str  # without extension, relative to the site root, "/"-separated
    title: str
    blocks: list[Block] = field(default_factory=list)
    intro: Rich | None = None

    @property
    def depth(self) -> int:
        return self.path.count("/")

    def rel(self, target: str) -> str:
        """``target`` (a site-root-relative path) as seen from this page."""
        return "../" * self.depth + target


def slug(text: str) -> str:
    """An anchor id from a title (lower case, ASCII letters, digits and dashes)."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s or "section"
