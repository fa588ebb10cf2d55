"""What the reader knows before it reads a source: the function and table names, errno
values and the uAPI's constants, and its two kinds of failure (a source it cannot read, a
call that does not return)."""

from __future__ import annotations

from model.fsm.kernel.ctype import INT, CType
from model.fsm.uapi import NUM_STATES, DeviceState, MigFlag

FUNCTION = "vfio_mig_get_next_state"
FSM_TABLE = "vfio_from_fsm_table"
FLAGS_TABLE = "state_flags_table"

EINVAL = 22
# errno values a return statement may name (include/uapi/asm-generic/errno-base.h, errno.h)
ERRNO: dict[str, int] = {
    "EPERM": 1, "ENOENT": 2, "EIO": 5, "ENOMEM": 12, "EFAULT": 14, "EBUSY": 16,
    "ENODEV": 19, "EINVAL": 22, "ENOTTY": 25, "ERANGE": 34, "EOPNOTSUPP": 95,
}

TABLE_ROLES = {FSM_TABLE: "the next-step table", FLAGS_TABLE: "the flags each state needs"}


class KernelSourceError(ValueError):
    """A kernel source could not be read or interpreted; the message names file and cause.

    ``path`` and ``line`` repeat the place for machine-readable output (None where the
    message names no line)."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        super().__init__(message)
        self.path, self.line = path, line

    @classmethod
    def at(cls, path: str, line: int, msg: str) -> KernelSourceError:
        return cls(f"{path}:{line}: {msg}", path, line)


class StepError(RuntimeError):
    """A call of the step function that does not return a value."""


class NonTerminatingStep(StepError):
    """The call never returns: a loop comes back to a state it was in before."""


class UndefinedStep(StepError):
    """The call has undefined behaviour in C (index outside a table, unset variable, ...)."""


def _uapi_constants() -> dict[str, tuple[int, CType]]:
    consts: dict[str, tuple[int, CType]] = {}
    for s in DeviceState:  # include/uapi/linux/vfio.h enum vfio_device_mig_state
        consts[f"VFIO_DEVICE_STATE_{s.name}"] = (int(s), INT)
    consts["VFIO_DEVICE_STATE_NR"] = (NUM_STATES, INT)  # sentinel added by 7.1
    for f in MigFlag:  # struct vfio_device_feature_migration flags
        consts[f"VFIO_MIGRATION_{f.name}"] = (int(f), INT)
    for name, v in ERRNO.items():
        consts[name] = (v, INT)
    consts["true"] = (1, INT)
    consts["false"] = (0, INT)
    return consts


UAPI_CONSTANTS = _uapi_constants()

