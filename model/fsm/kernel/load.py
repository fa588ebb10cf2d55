"""Reading ``vfio_mig_get_next_state()`` from a kernel source file, or naming a built-in."""

from __future__ import annotations

from pathlib import Path

from model.fsm.kernel.builtin import BUILTIN_KERNELS, default_kernel
from model.fsm.kernel.interpreter import Function, Table
from model.fsm.kernel.locate import FunctionDef, find_function
from model.fsm.kernel.names import FLAGS_TABLE, FSM_TABLE, FUNCTION, TABLE_ROLES, KernelSourceError
from model.fsm.kernel.preprocess import Macro
from model.fsm.kernel.resolver import Resolver, Scope
from model.fsm.kernel.step import KernelStepFunction
from model.fsm.kernel.unit import Unit, read_source, translation_unit
from model.fsm.uapi import ALL_FLAGS, NUM_STATES, MigFlag


def parse_kernel_source(text: str, path: str,
                        defines: dict[str, Macro] | None = None) -> KernelStepFunction:
    """Interpret ``vfio_mig_get_next_state()`` of a C source text (``path`` names it), as
    compiled with the macros ``defines`` (``-D`` options; default: none)."""
    try:
        return _parse_kernel_source(translation_unit(text, path, defines))
    except RecursionError:
        raise KernelSourceError(f"{path}: expressions or statements nested too deeply to "
                                "interpret", path) from None


def _roles(found: FunctionDef, unit: Unit) -> dict[str, str]:
    params, line = found.params, unit.toks[found.start - 1].line
    if len(params) != 4:
        raise KernelSourceError.at(unit.path, line, f"{FUNCTION}() has {len(params)} "
                                   "parameters; expected (device, cur_fsm, new_fsm, next_fsm)")
    if not params[3].is_pointer:
        raise KernelSourceError.at(unit.path, line, f"the fourth parameter of {FUNCTION}() "
                                   f"({params[3].name}) is not a pointer")
    return {params[0].name: "dev", params[1].name: "cur", params[2].name: "new",
            params[3].name: "nxt"}


def _parse_kernel_source(unit: Unit) -> KernelStepFunction:
    path, toks = unit.path, unit.toks
    found = find_function(toks, FUNCTION)
    if found is None:
        raise KernelSourceError(f"{path}: no definition of {FUNCTION}() found (expected in "
                                "drivers/vfio/vfio_main.c or drivers/vfio/vfio.c)", path)
    r = Resolver(path, toks, unit.defines)
    scope = Scope(_roles(found, unit), {}, f"{FUNCTION}()")
    body = r.body(toks, found.start, found.end, scope)
    tables = _tables(r, scope, found)
    fsm = tables[FSM_TABLE]
    notes = unit.pre.notes_for(toks[found.start - 1].line, toks[found.end].line)
    missing = int((~fsm.initialised).sum())
    if missing:
        notes.append(f"{missing} cell(s) of {FSM_TABLE} are not initialised; C fills them "
                     "with 0, i.e. ERROR")
    return KernelStepFunction(path, Function(FUNCTION, [], body), tables, r.mentioned, notes)


def _tables(r: Resolver, scope: Scope, found: FunctionDef) -> dict[str, Table]:
    """The tables the function uses, checked for the shape the walk needs."""
    tables = dict(r.tables)
    tables.update(scope.tables)
    if FSM_TABLE not in tables:
        t = r.table(FSM_TABLE, 0, scope)
        if t is None:
            raise KernelSourceError(f"{r.path}: no definition of {FSM_TABLE} "
                                    f"({TABLE_ROLES[FSM_TABLE]}) in {FUNCTION}() or at file "
                                    "scope", r.path)
        tables[FSM_TABLE] = t
    fsm = tables[FSM_TABLE]
    if len(fsm.dims) != 2 or fsm.dims[0] != fsm.dims[1]:
        raise KernelSourceError.at(r.path, fsm.line, f"{FSM_TABLE} has shape {fsm.dims}; "
                                   "expected a square [states][states] table")
    if fsm.dims[0] > NUM_STATES:
        raise KernelSourceError.at(r.path, fsm.line, f"{FSM_TABLE} has {fsm.dims[0]} states; "
                                   f"this model knows the {NUM_STATES} states of uAPI v2")
    if FLAGS_TABLE in tables:
        for v in tables[FLAGS_TABLE].values.ravel():
            if int(v) & ~int(ALL_FLAGS) == 0:
                r.mentioned |= MigFlag(int(v))
    return tables


def load_kernel(path: str | Path, defines: dict[str, Macro] | None = None
                ) -> KernelStepFunction:
    """Read ``vfio_mig_get_next_state()`` from a kernel source file."""
    return parse_kernel_source(read_source(path, "kernel source"), str(Path(path)), defines)


def resolve_kernel(spec: str | Path | None, defines: dict[str, Macro] | None = None
                   ) -> KernelStepFunction:
    """``None``/``"builtin"`` -> :func:`default_kernel`; ``"builtin-fixed"`` ->
    :func:`fixed_kernel`; anything else is a source file path (:func:`load_kernel`)."""
    if spec is None:
        return default_kernel()
    if isinstance(spec, str) and spec in BUILTIN_KERNELS:
        return BUILTIN_KERNELS[spec]()
    return load_kernel(spec, defines)
