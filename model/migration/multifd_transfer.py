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
