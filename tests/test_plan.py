"""model.concrete.plan: the one scenario -> executor mapping, as its two callers use it.

``vfio-migcheck simulate`` (``build_plan`` -> :func:`~model.concrete.plan.timed_config`) and
the conformance test (:func:`~model.concrete.plan.stepped_config`) are run over every
shipped spec and every conformance scenario, with ``build_plan`` sized so that one
executor page is one model page, and compared on everything that maps the scenario (not
on the workload rates and the link, which only ``simulate`` has).  They agree except in
the mutations: a timed run makes one attempt, so ``retry_keeps_cleared_bits`` (which needs
a retry) is applied only when stepping.  (Before plan.py, simulate also took type1's
pinned scope from QEMU's decision, mutation included, and the conformance test said "no
pinned scope" on a non-type1 host; :func:`~model.concrete.plan.pinned_scope` decides it
once.)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from cli.simulate import Options, build_plan
from model.concrete.executor import RunConfig
from model.concrete.plan import pinned_scope, stepped_config
from model.contract import PAGE_SIZE, Mutation
from model.decision.tracking import decide
from model.scenario import Scenario, load_scenario, scenario_from_dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_conformance  # noqa: E402  (the conformance scenarios)

SPECS = Path(__file__).resolve().parent.parent / "specs"


def _mapping(cfg: RunConfig) -> dict[str, Any]:
    """What a configuration says about the scenario (not the load or the link)."""
    return {
        "method": cfg.method,
        "guest_pages": cfg.guest_pages,
        "type1_pinned_scope": cfg.type1_pinned_scope,
        "mutations": frozenset(cfg.mutations),
        "devices": [(d.name, d.pages, d.pins, d.dma_logging, d.iommu_dirty, d.kernel_access,
                     d.precopy_dirty_tracking) for d in cfg.workload.devices],
    }


def _simulate_config(sc: Scenario, method: str | None = None) -> RunConfig:
    """``build_plan`` for ``sc``, one executor page per model page."""
    opts = Options(guest_size=sc.vm.pages * PAGE_SIZE, cpu_dirty_rate=0.0, hot_set=PAGE_SIZE,
                   dma_rate=0.0, dma_set=PAGE_SIZE, stop_copy_size=0, bandwidth=1e9,
                   downtime_limit=0.3, max_rounds=30, step=0.1, stop_latency=0.005, seed=0)
    ((_, cfg),) = build_plan(sc, opts, [method] if method else []).configs
    return cfg


def _difference(sc: Scenario, method: str | None = None) -> dict[str, tuple[Any, Any]]:
    a = _mapping(_simulate_config(sc, method))
    b = _mapping(stepped_config(sc))
    if method is not None:
        b["method"] = method
    return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


def _expected(sc: Scenario) -> dict[str, tuple[Any, Any]]:
    """Where the two differ, by rule (see the module doc)."""
    out: dict[str, tuple[Any, Any]] = {}
    if Mutation.RETRY_KEEPS_CLEARED_BITS in sc.mutations:
        both = frozenset(sc.mutations) & {Mutation.NO_FINAL_SYNC,
                                          Mutation.SYNC_BEFORE_DEVICES_STOP,
                                          Mutation.TYPE1_IGNORES_UNPINNED_GROUPS,
                                          Mutation.DEVICE_LOGGING_FOR_MIXED_CONTAINER}
        out["mutations"] = (both, both | {Mutation.RETRY_KEEPS_CLEARED_BITS})
    return out


CASES = ([(p.name, lambda p=p: load_scenario(p)) for p in sorted(SPECS.glob("*.toml"))]
         + [(f"conformance:{n}", lambda n=n: test_conformance.scenario(n))
            for n in sorted(test_conformance.SCENARIOS)])


@pytest.mark.parametrize(("name", "make"), CASES, ids=[n for n, _ in CASES])
def test_simulate_and_conformance_map_a_scenario_alike(name: str, make: Any) -> None:
    sc = make()
    assert _difference(sc) == _expected(sc), name


def test_where_the_two_mappings_differ_in_the_shipped_specs() -> None:
    """The shipped specs that show a difference, and which."""
    differ = {p.name: sorted(_difference(load_scenario(p)))
              for p in sorted(SPECS.glob("*.toml"))}
    assert {k: v for k, v in differ.items() if v} == {
        "mutation-retry-keeps-cleared-bits.toml": ["mutations"],
    }


def test_pinned_scope_on_an_iommufd_host_run_as_type1() -> None:
    """``simulate --method type1`` on an iommufd host whose devices pin: both say pinned
    scope, the kernel's rule (no shipped spec has pins on iommufd)."""
    sc = scenario_from_dict({"qemu": "9.1", "host": {"iommu": "iommufd", "iommu_dirty_tracking": True},
                             "devices": [{"name": "vf0", "pins": [0]}]}, "specs/pins-on-iommufd.toml")
    assert _difference(sc, method="type1") == {} == _expected(sc)
    assert stepped_config(sc).type1_pinned_scope


def test_pinned_scope_is_the_kernels_not_the_mutation() -> None:
    """type1_ignores_unpinned_groups makes QEMU's decision claim pinned scope; the executor
    gets the kernel's scope and the mutation itself, so either side can be mutated alone."""
    sc = load_scenario(SPECS / "mutation-type1-ignores-unpinned-groups.toml")
    assert decide(sc).type1_pinned_scope and not pinned_scope(sc)
    for cfg in (stepped_config(sc), _simulate_config(sc)):
        assert not cfg.type1_pinned_scope
        assert Mutation.TYPE1_IGNORES_UNPINNED_GROUPS in cfg.mutations
    assert not stepped_config(sc, mutations=frozenset()).mutations
