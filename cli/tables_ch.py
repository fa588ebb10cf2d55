"""``vfio-migcheck tables --vmm cloud-hypervisor``: when cloud-hypervisor refuses a migration.

cloud-hypervisor has one rule set (the code at one commit) and no tracking method to
choose: device writes are tracked by DMA logging in a precopy migration and not at all in
a local or postcopy one.  So its table is one per device count: for every configuration of
the send-migration mode, the vIOMMU and each device's migration v2 and DMA-logging support,
whether it migrates or is refused, and why (:func:`model.cloud_hypervisor.decision.decide`,
enumerated explicitly: every configuration is evaluated).  Rows that differ in one yes/no
column only and agree on the outcome are merged into one with ``·`` there.
"""

from __future__ import annotations

import dataclasses
from itertools import product
from pathlib import Path
from typing import Any

from model.cloud_hypervisor.decision import decide
from model.scenario import CheckConfig, DeviceConfig, HostConfig, MigrationConfig, Scenario, VmConfig
from model.vmm import CH_DEFAULT_PROFILE, CLOUD_HYPERVISOR

ANY = "·"
MODES = {  # as the spec's [migration] keys say it
    "precopy": {},
    "postcopy": {"postcopy": True},
    "local": {"local": True},
    "local+preserve_source": {"local": True, "preserve_source": True},
}
LEGEND = ("Columns: devN.migration = VFIO migration v2 (STOP_COPY); devN.dma-logging = "
          "VFIO_DEVICE_FEATURE_DMA_LOGGING in its driver; viommu = the devices sit behind the "
          f"virtual IOMMU.  '{ANY}' = any value.  Every configuration was evaluated with "
          "cloud-hypervisor's rules (model/cloud_hypervisor/decision.py, read at ae44c2971c83).")


@dataclasses.dataclass(frozen=True)
class ChTable:
    devices: int
    columns: tuple[str, ...]
    rows: tuple[tuple[tuple[str, ...], dict[str, Any]], ...]  # (cells, outcome)
    configurations: int

    def as_json(self) -> dict[str, Any]:
        return {"vmm": CLOUD_HYPERVISOR, "profile": CH_DEFAULT_PROFILE, "devices": self.devices,
                "kind": "refusals", "configurations": self.configurations,
                "columns": list(self.columns),
                "rows": [{"conditions": dict(zip(self.columns, cells, strict=True)), "outcome": out}
                         for cells, out in self.rows]}


def _scenario(mode: str, viommu: bool, devs: tuple[tuple[bool, bool], ...]) -> Scenario:
    devices = tuple(DeviceConfig(name=f"dev{i}", features=frozenset(), dma_logging=log,
                                 dma_pages=(0,), pins=(), p2p_dma=len(devs) > 1, migration=mig)
                    for i, (mig, log) in enumerate(devs))
    return Scenario(path=Path("tables"), name="tables", description="", qemu="master",
                    vm=VmConfig(pages=1, viommu=viommu), host=HostConfig(),
                    devices=devices, migration=MigrationConfig(**MODES[mode]),
                    check=CheckConfig(), mutations=frozenset(),
                    vmm=CLOUD_HYPERVISOR, cloud_hypervisor=CH_DEFAULT_PROFILE)


def _outcome(sc: Scenario) -> dict[str, Any]:
    d = decide(sc)
    stages = sorted({b.stage for b in d.blockers})
    return {"verdict": "refused" if d.blocked else "migrates",
            "refused_at": ", ".join(stages) or "-", "blocked_by": list(d.blocked_by),
            "tracking": d.method or "none"}


def _merge(rows: list[tuple[tuple[str, ...], dict[str, Any]]], binary: range) -> list:
    """Merge pairs of rows that differ in one yes/no column only and agree on the outcome."""
    changed = True
    while changed:
        changed = False
        out: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        used = [False] * len(rows)
        for i, (a, oa) in enumerate(rows):
            if used[i]:
                continue
            for j in range(i + 1, len(rows)):
                b, ob = rows[j]
                if used[j] or oa != ob:
                    continue
                diff = [k for k in range(len(a)) if a[k] != b[k]]
                if len(diff) == 1 and diff[0] in binary and {a[diff[0]], b[diff[0]]} == {"yes", "no"}:
                    cells = list(a)
                    cells[diff[0]] = ANY
                    out.append((tuple(cells), oa))
                    used[i] = used[j] = changed = True
                    break
            if not used[i]:
                out.append((a, oa))
                used[i] = True
        rows = out
    return rows


def refusal_table(devices: int) -> ChTable:
    columns = ["mode", "viommu"]
    for i in range(devices):
        columns += [f"dev{i}.migration", f"dev{i}.dma-logging"]
    rows: list[tuple[tuple[str, ...], dict[str, Any]]] = []
    yn = ("yes", "no")
    for mode in MODES:
        for viommu in (True, False):
            for flags in product((True, False), repeat=2 * devices):
                devs = tuple((flags[2 * i], flags[2 * i + 1]) for i in range(devices))
                cells = (mode, yn[not viommu], *(yn[not f] for f in flags))
                rows.append((cells, _outcome(_scenario(mode, viommu, devs))))
    n = len(rows)
    merged = _merge(rows, range(1, len(columns)))
    return ChTable(devices, tuple(columns), tuple(merged), n)


def ch_tables(devices: int) -> list[ChTable]:
    return [refusal_table(n) for n in range(1, devices + 1)]


def as_markdown(tables: list[ChTable]) -> str:
    lines = [LEGEND, ""]
    for t in tables:
        head = [*t.columns, "verdict", "refused at", "blocked_by", "tracking"]
        lines += [f"### cloud-hypervisor {CH_DEFAULT_PROFILE}, {t.devices} device(s): refusals -- "
                  f"{t.configurations} configurations, {len(t.rows)} rows", "",
                  "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for cells, o in t.rows:
            lines.append("| " + " | ".join([*cells, o["verdict"], o["refused_at"],
                                            ", ".join(o["blocked_by"]) or "-", o["tracking"]]) + " |")
        lines.append("")
    return "\n".join(lines)
