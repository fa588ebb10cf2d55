"""The VFIO config load ordering on ARM (QEMU, [vm].arch = "aarch64"): the destination
loads the interrupt controller's state before any device's config; 10.1's
x-migration-load-config-after-iter (auto: on for ARM) keeps a multifd load thread's config
load after it, 10.0 (and "off") do not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from checker.explore import explore
from checker.lang.layout import View
from checker.trace import render_text
from model.contract import Property
from model.findings import finding
from model.migration.multifd_transfer import load_config_after_iter
from model.migration.phases import Phase
from model.migration.spec import build_spec
from model.scenario import scenario_from_dict
from model.spec_table import SpecError

VF0 = {"name": "vf0", "features": ["p2p", "pre-copy"], "dma_logging": True}
VF1 = {"name": "vf1", "features": ["p2p"], "dma_logging": True}
ORDER = Property.CONFIG_LOAD_AFTER_INTERRUPT_CONTROLLER.value


def _data(qemu: Any = "10.1", arch: str | None = "aarch64", multifd: bool = True,
          props: dict[str, str] | None = None) -> dict[str, Any]:
    vm: dict[str, Any] = {"pages": 1}
    if arch is not None:
        vm["arch"] = arch
    vf0 = dict(VF0, properties=props) if props else dict(VF0)
    return {"qemu": qemu, "vm": vm, "devices": [vf0, dict(VF1)], "migration": {"multifd": multifd}}


def _scenario(**kw: Any):
    return scenario_from_dict(_data(**kw), Path("specs/t.toml"))


def _explore(**kw: Any):
    spec = build_spec(_scenario(**kw))
    return spec, explore(spec)


@pytest.mark.parametrize(("qemu", "arch", "multifd", "prop", "expected"), [
    ("10.1", "aarch64", True, None, (True, True)),  # auto: on for ARM
    ("master", "aarch64", True, None, (True, True)),
    ("10.1", "x86_64", True, None, (False, False)),  # auto: off elsewhere
    ("10.1", "x86_64", True, "on", (True, False)),
    ("10.1", "aarch64", True, "off", (False, True)),
    ("10.1", "aarch64", False, None, (False, False)),  # no multifd transfer: main stream
    ("10.0", "aarch64", True, None, (False, False)),  # no such property yet
])
def test_the_property_takes_effect_with_multifd_transfer_and_auto_means_arm(
        qemu: str, arch: str, multifd: bool, prop: str | None, expected: tuple[bool, ...]) -> None:
    props = {"x-migration-load-config-after-iter": prop} if prop else None
    sc = _scenario(qemu=qemu, arch=arch, multifd=multifd, props=props)
    assert load_config_after_iter(sc, sc.profile) == expected


def test_the_keys_refuse_what_qemu_would_not_take() -> None:
    with pytest.raises(SpecError, match=r"x-migration-load-config-after-iter: property does not "
                                        r"exist in QEMU 10.0 \(added in 10.1, 6380b0a02f\)"):
        _scenario(qemu="10.0", props={"x-migration-load-config-after-iter": "on"})
    with pytest.raises(SpecError, match=r'x-migration-load-config-after-iter: unknown value "yes"'):
        _scenario(props={"x-migration-load-config-after-iter": "yes"})
    with pytest.raises(SpecError, match=r'\[vm\]\.arch: unknown guest architecture "riscv64"; '
                                        r'allowed: "x86_64", "aarch64"'):
        _scenario(arch="riscv64")
    with pytest.raises(SpecError, match=r'\[vm\]\.arch: .*only with vmm = "qemu"'):
        scenario_from_dict({"vmm": "cloud-hypervisor", "vm": {"arch": "aarch64"},
                            "devices": [VF0]}, Path("t.toml"))


def test_x86_64_has_neither_the_step_nor_the_property() -> None:
    spec = build_spec(_scenario(arch=None))
    assert "irqchip_loaded" not in {f.name for f in spec.layout.fields}
    assert ORDER not in spec.invariants
    assert "LoadInterruptController" not in {a.family for a in spec.actions}


def test_auto_on_arm_loads_every_config_after_the_interrupt_controller() -> None:
    spec, res = _explore()
    assert res.outcome == "pass"
    assert ORDER in spec.invariants
    res = explore(spec, keep_graph=True, check_liveness=False)
    g = res.graph_data
    assert g is not None
    v = View(spec.layout, g.rows)
    irq = np.asarray(v.irqchip_loaded)
    for d in (0, 1):
        cfg_loaded = np.asarray(v[f"dst_config[{d}]"]) == 1
        assert cfg_loaded.any() and (irq[cfg_loaded] == 1).all()
        # The thread waits for its device's DEV_CONFIG_LOAD_READY section (LOAD_STATE
        # past the device) or runs in qemu_loadvm_thread_pool_wait.
        ids = [i for i, lab in enumerate(g.labels) if lab == f"LoadThread(dev=vf{d})"]
        src = g.src[np.isin(g.act, ids)]
        pc, cur = np.asarray(v.pc)[src], np.asarray(v.cursor)[src]
        assert len(src) and (((pc == Phase.LOAD_STATE) & (cur > d)) | (pc == Phase.LOAD_THREADS_WAIT)).all()


@pytest.mark.parametrize(("qemu", "props"), [
    ("10.0", None),  # the finding: no property, the thread loads the config at once
    ("10.1", {"x-migration-load-config-after-iter": "off"}),
])
def test_without_the_ordering_a_thread_loads_the_config_before_the_gic(
        qemu: str, props: dict[str, str] | None) -> None:
    spec, res = _explore(qemu=qemu, props=props)
    assert res.outcome == "violation"
    assert res.violation is not None and res.violation.name == ORDER
    labels = [s.action or "" for s in res.violation.trace]
    assert labels[-1] == "LoadThread(dev=vf0)" and "LoadInterruptController" not in labels
    text = render_text(res.violation, spec.layout)
    assert f"{ORDER} reads" in text
    assert "irqchip_loaded = FALSE, dst_config[0] = TRUE" in text


def test_the_main_stream_loads_the_config_in_its_section_after_the_gic() -> None:
    """Without multifd (and before 10.0 with it) the config is the device's non-iterable
    section, which QEMU's priorities place after the GIC's: no violation on 10.0."""
    for qemu, multifd in (("10.0", False), ("9.2", True)):
        spec, res = _explore(qemu=qemu, multifd=multifd)
        assert res.outcome == "pass" and ORDER in spec.invariants


def test_the_fix_as_a_patch_of_10_0_passes_and_the_finding_names_it() -> None:
    f = finding("multifd-10.0-aarch64-config-before-gic")
    assert f.fix_flags == {"has_load_config_after_iter": True}
    _, res = _explore(qemu={"base": "10.0", **f.fix_flags})
    assert res.outcome == "pass"


def test_a_timed_run_names_the_arch_it_does_not_exercise() -> None:
    from model.concrete.plan import unexercised_keys

    assert unexercised_keys(_scenario()) == ["[vm].arch"]
    assert unexercised_keys(_scenario(arch=None)) == []
