"""The page bit sets every flow declares, and their names in traces.

Pages are interchangeable (docs/design.md#migration-model), so each flow holds a few of
them as bits: ``stale`` (the destination's copy differs from the source's: ground truth,
read only by properties), ``bitmap`` (the pages the VMM still has to send), ``kvm_dirty``
(KVM's dirty log) and per device ``dma_log`` (its DMA-logging bitmap, by IOVA).
"""

from __future__ import annotations

from checker.lang.layout import Layout


def page_names(pages: int) -> tuple[str, ...]:
    """Names of the modelled guest pages, as bit sets show them in traces."""
    return tuple(f"p{i}" for i in range(pages))


def iova_names(pages: int) -> tuple[str, ...]:
    """Names of the IOVAs a device may use (one per page-sized IOVA slot)."""
    return tuple(f"iova{i}" for i in range(pages))


def declare_pages(lay: Layout, pages: int, *, bitmap: str) -> None:
    """The page bit sets every flow has, with the same meaning (``bitmap``: what the
    VMM's set of pages still to send is, in its words)."""
    names = page_names(pages)
    lay.var("stale", flags=names, doc="pages whose destination copy is stale (ground truth)")
    lay.var("bitmap", flags=names, doc=bitmap)
    lay.var("kvm_dirty", flags=names, doc="KVM dirty log (vCPU writes)")
