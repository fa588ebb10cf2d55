"""Which devices send their final state over multifd (QEMU 10.0+, vfio_multifd_setup()).

QEMU copies the decision into the device's migration state at save_setup / load_setup
(hw/vfio/migration-multifd.c vfio_multifd_setup(), 10.0 7c949c53e9, unchanged to master
ece408818d): ``x-migration-multifd-transfer=auto`` (the default, hw/vfio/pci.c) means
"on" exactly when multifd device state is supported, i.e. the multifd capability is on
with neither mapped-ram nor compression (migration/multifd-device-state.c
multifd_device_state_supported()) and the migration property send-switchover-start is
set (default on for 10.0+ machine types; vfio_multifd_transfer_supported()).

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: multifd means the plain multifd capability.                             ║
║                                                                                      ║
║ The spec has no mapped-ram, compression or machine-type keys, so "supported" is      ║
║ ``[migration] multifd`` on a profile that has the path (has_multifd_device_state).   ║
║ "on" without multifd makes vfio_multifd_setup() fail save_setup; the scenario        ║
║ loader refuses that combination instead of modelling the setup failure.              ║
╚══════════════════════════════════════════════════════════════════════════════════════╝

Whether a multifd device's load thread waits for the main stream's non-iterables before it
loads the config: vfio_load_config_after_iter() (hw/vfio/migration-multifd.c, 10.1
f8b2f64e23, 6380b0a02f) reads ``x-migration-load-config-after-iter`` (OnOffAuto, default
auto, hw/vfio/pci.c); auto is on for an ARM target (vfio_arch_wants_loading_config_after_iter(),
hw/vfio/helpers.c, TARGET_ARM at build time in 10.1 and 10.2; target_base_arm() at run time
on master, 78e630fcc4), off elsewhere.

╔══════════════════════════════════════════════════════════════════════════════════════╗
║ Abstraction: the release's own machine type.                                         ║
║                                                                                      ║
║ hw_compat_10_0 (hw/core/machine.c) sets the property "off" for machine types up to   ║
║ 10.0, so that a 10.0 source, which sends no DEV_CONFIG_LOAD_READY, can migrate to   ║
║ a newer destination.  The spec has no machine-type key: auto is the default of the   ║
║ profile's newest machine type; a user of an older one writes "off".                  ║
╚══════════════════════════════════════════════════════════════════════════════════════╝
"""

from __future__ import annotations

from model.profiles import Profile
from model.scenario import Scenario


def multifd_supported(scenario: Scenario, profile: Profile) -> bool:
    """multifd device state transfer is available (vfio_multifd_transfer_supported())."""
    return profile.has_multifd_device_state and scenario.migration.multifd


def multifd_transfer(scenario: Scenario, profile: Profile) -> tuple[bool, ...]:
    """Per device: its STOP_COPY state goes in a save thread over multifd channels."""
    supported = multifd_supported(scenario, profile)
    out = []
    for dev in scenario.devices:
        prop = dev.properties.migration_multifd_transfer
        out.append(supported if prop == "auto" else prop == "on")
    return tuple(out)


def load_config_after_iter(scenario: Scenario, profile: Profile) -> tuple[bool, ...]:
    """Per device: its multifd load thread loads the config only after the main stream's
    iterables, in the non-iterables phase (vfio_load_config_after_iter(), 10.1+)."""
    if not profile.has_load_config_after_iter:
        return tuple(False for _ in scenario.devices)
    arm = scenario.vm.arch == "aarch64"
    out = []
    for on, dev in zip(multifd_transfer(scenario, profile), scenario.devices, strict=True):
        prop = dev.properties.migration_load_config_after_iter
        out.append(on and (arm if prop == "auto" else prop == "on"))
    return tuple(out)
